"""ACR normalization (pure): what a registry's ARM JSON and data-plane tag list become,
and what an `acr` target entry of regguard.yaml may say."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from audits.collectors.acr_facts import (
    RegistryView,
    RepositoryListing,
    logging_facts,
    network_exposure,
    tag_locks,
    token_credentials,
)
from audits.config import ConfigError, parse_config

SUB = "8f3c2a1e-4b5d-4c6e-9f70-1a2b3c4d5e6f"


def _view(**properties: Any) -> RegistryView:
    return RegistryView(resource={"name": "r1", "location": "westeurope", "properties": properties})


@pytest.mark.parametrize(
    ("properties", "reachable"),
    [
        ({"publicNetworkAccess": "Disabled", "networkRuleBypassOptions": "None"}, False),
        (
            {
                "publicNetworkAccess": "Enabled",
                "networkRuleSet": {"defaultAction": "Deny"},
                "networkRuleBypassOptions": "None",
            },
            False,
        ),
        (
            {
                "publicNetworkAccess": "Enabled",
                "networkRuleSet": {"defaultAction": "Allow"},
                "networkRuleBypassOptions": "None",
            },
            True,
        ),
        # trusted Azure services of any tenant bypass the rules
        ({"publicNetworkAccess": "Disabled", "networkRuleBypassOptions": "AzureServices"}, True),
        ({}, True),  # Azure's defaults: public, allow, bypass
    ],
)
def test_network_exposure_follows_public_access_rules_and_bypass(properties: dict[str, Any], reachable: bool) -> None:
    assert network_exposure(_view(**properties)).publicly_reachable is reachable


def test_logging_needs_both_categories_or_a_covering_group_and_a_destination() -> None:
    one = {"properties": {"workspaceId": "w", "logs": [{"category": "ContainerRegistryLoginEvents", "enabled": True}]}}
    group = {"properties": {"workspaceId": "w", "logs": [{"categoryGroup": "allLogs", "enabled": True}]}}
    nowhere = {"properties": {"logs": [{"categoryGroup": "audit", "enabled": True}]}}
    assert not logging_facts(RegistryView({"name": "r"}, diagnostic_settings=[one])).enabled
    assert logging_facts(RegistryView({"name": "r"}, diagnostic_settings=[group])).enabled
    assert not logging_facts(RegistryView({"name": "r"}, diagnostic_settings=[nowhere])).enabled


def test_each_token_password_is_a_credential_and_push_comes_from_the_scope_map() -> None:
    scope = {"id": "/x/scopeMaps/ci", "properties": {"actions": ["repositories/app/content/write"]}}
    token = {
        "name": "ci",
        "properties": {
            "scopeMapId": "/X/SCOPEMAPS/CI",
            "credentials": {
                "passwords": [
                    {"name": "password1", "creationTime": "2026-11-01T00:00:00Z", "expiry": "2026-12-01T00:00:00Z"},
                    {"name": "password2", "creationTime": "2026-11-01T00:00:00Z"},
                ]
            },
        },
    }
    disabled = {"name": "old", "properties": {"status": "disabled", "credentials": {"passwords": [{"name": "p"}]}}}
    creds = token_credentials(RegistryView({"name": "r1"}, tokens=[token, disabled], scope_maps=[scope]))
    assert [c.id for c in creds] == ["r1/tokens/ci/password1", "r1/tokens/ci/password2"]
    assert creds[0].can_push and creds[0].expires_at is not None and creds[1].expires_at is None


def test_tag_locks_ignore_signature_artifacts() -> None:
    sig = "sha256-" + "a" * 64 + ".sig"
    locked = {"writeEnabled": False, "deleteEnabled": False}
    tags = [{"name": "1.0.0", "changeableAttributes": locked}, {"name": sig, "changeableAttributes": {}}]
    assert tag_locks(RepositoryListing("r1", "app", tags)).immutable
    tags.append({"name": "latest", "changeableAttributes": {"writeEnabled": True}})
    setting = tag_locks(RepositoryListing("r1", "app", tags))
    assert not setting.immutable and "latest" in setting.detail


def _config(entry: dict[str, Any]) -> Any:
    return parse_config({"targets": [{"name": "a", "kind": "acr", "subscription_id": SUB, **entry}]}, Path("r.yaml"))


def test_an_inline_client_secret_is_refused_with_the_acr_hint() -> None:
    with pytest.raises(ConfigError, match="client_secret_env"):
        _config({"client_secret": "s3cr3t"})


def test_an_acr_target_needs_a_uuid_subscription_and_https_endpoints() -> None:
    assert _config({"registries": ["contosoprod"]}).targets[0].registries == ["contosoprod"]
    with pytest.raises(ConfigError, match="subscription_id"):
        parse_config({"targets": [{"name": "a", "kind": "acr", "subscription_id": "nope"}]}, Path("r.yaml"))
    with pytest.raises(ConfigError, match="endpoint_url"):
        _config({"endpoint_url": "http://127.0.0.1:1"})
