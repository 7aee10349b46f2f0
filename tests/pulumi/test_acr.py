"""ACR components: argument checks (plain) and registered resources (Pulumi mocks)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from components.acr import LOG_CATEGORIES, AcrRegistry, AcrRegistryArgs, AcrTokenArgs, parse_registry
from components.baseline import Baseline
from components.stack_config import StackConfigError, StackContext
from tests.pulumi.mocks import ProgramRun

REGISTRY = "azure-native:containerregistry:Registry"
REPLICATION = "azure-native:containerregistry:Replication"
TOKEN = "azure-native:containerregistry:Token"
SCOPE_MAP = "azure-native:containerregistry:ScopeMap"
ENDPOINT = "azure-native:network:PrivateEndpoint"
DIAGNOSTICS = "azure-native:monitor:DiagnosticSetting"

SUB = "8f3c2a1e-4b5d-4c6e-9f70-1a2b3c4d5e6f"
SUBNET = f"/subscriptions/{SUB}/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/v/subnets/pe"
WORKSPACE = f"/subscriptions/{SUB}/resourceGroups/rg-mon/providers/Microsoft.OperationalInsights/workspaces/logs"
IDENTITY = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/cmk"
KEY = "https://kv.vault.azure.net/keys/acr"
PROD = Baseline.for_environment("prod", {"replicate_to": ["northeurope"]})


def _expiry(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _prod(**overrides: Any) -> AcrRegistryArgs:
    args: dict[str, Any] = {
        "name": "contosoprod",
        "resource_group_name": "rg",
        "location": "westeurope",
        "environment": "prod",
        "baseline": PROD,
        "private_endpoint_subnet_id": SUBNET,
        "log_analytics_workspace_id": WORKSPACE,
        "key_vault_key_id": KEY,
        "identity_id": IDENTITY,
        "identity_client_id": "00000000-0000-0000-0000-000000000001",
        "tokens": (AcrTokenArgs("ci-push", ("payments/api",), _expiry(30)),),
    }
    return AcrRegistryArgs(**{**args, **overrides})


def test_prod_registry_is_premium_private_locked_down_and_logged(mocked: Callable[..., ProgramRun]) -> None:
    run = mocked(lambda: AcrRegistry("prod", _prod()), {"azure-native:location": "westeurope"})
    registry = run.one(REGISTRY).inputs
    assert registry["sku"] == {"name": "Premium"}
    assert registry["adminUserEnabled"] is False and registry["anonymousPullEnabled"] is False
    assert registry["publicNetworkAccess"] == "Disabled" and registry["networkRuleBypassOptions"] == "None"
    assert registry["networkRuleSet"]["defaultAction"] == "Deny"
    assert registry["zoneRedundancy"] == "Enabled"
    policies = registry["policies"]
    assert policies["exportPolicy"] == {"status": "disabled"}
    assert policies["retentionPolicy"] == {"days": PROD.expire_untagged_days, "status": "enabled"}
    assert policies["softDeletePolicy"]["status"] == "enabled"
    assert "trustPolicy" not in policies  # content trust is retired on ACR
    assert registry["encryption"]["keyVaultProperties"]["keyIdentifier"] == KEY
    assert IDENTITY in registry["identity"]["userAssignedIdentities"]
    assert run.one(REPLICATION).inputs["location"] == "northeurope"
    assert run.one(ENDPOINT).inputs["privateLinkServiceConnections"][0]["groupIds"] == ["registry"]
    logs = run.one(DIAGNOSTICS).inputs["logs"]
    assert [entry["category"] for entry in logs] == list(LOG_CATEGORIES) and all(e["enabled"] for e in logs)
    token = run.one(TOKEN).inputs
    assert token["credentials"]["passwords"][0]["expiry"]
    assert run.one(SCOPE_MAP).inputs["actions"] == [
        "repositories/payments/api/content/read",
        "repositories/payments/api/metadata/read",
        "repositories/payments/api/content/write",
    ]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"sku": "Standard"}, "Premium"),
        ({"admin_user_enabled": True}, "admin_user_enabled"),
        ({"anonymous_pull_enabled": True}, "baseline.public"),
        ({"private_endpoint_subnet_id": None}, "private endpoint"),
        ({"public_network_access": True}, "allowed_ip_ranges"),
        ({"key_vault_key_id": None}, "only at creation"),
        ({"log_analytics_workspace_id": None}, "log_analytics_workspace_id"),
        ({"soft_delete_days": 0}, "soft_delete_days"),
    ],
)
def test_prod_registry_args_refuse_anything_weaker(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _prod(**overrides)


def test_public_access_is_deny_by_default_with_listed_ranges(mocked: Callable[..., ProgramRun]) -> None:
    args = _prod(public_network_access=True, allowed_ip_ranges=("203.0.113.0/24",), private_endpoint_subnet_id=None)
    run = mocked(lambda: AcrRegistry("edge", args), {})
    registry = run.one(REGISTRY).inputs
    assert registry["publicNetworkAccess"] == "Enabled"
    rules = registry["networkRuleSet"]
    assert rules["defaultAction"] == "Deny" and rules["ipRules"][0]["iPAddressOrRange"] == "203.0.113.0/24"
    assert registry["tags"]["regguard:opt-out:public_network_access"]
    assert run.of_type(ENDPOINT) == []


@pytest.mark.parametrize(
    ("expiry", "message"),
    [("", "ISO 8601"), ("2027-01-01T00:00:00", "time zone"), (None, "more than 90 days")],
)
def test_a_token_password_always_expires_within_90_days(expiry: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AcrTokenArgs("ci-push", ("payments/api",), _expiry(400) if expiry is None else expiry)


def _stack(env: str = "prod") -> StackContext:
    values = {"azure-native:subscriptionId": SUB, "azure-native:location": "westeurope"}
    return StackContext(environment=env, provider=lambda key: values.get(key))


def test_a_stack_entry_becomes_the_registry_and_its_audit_target() -> None:
    entry = {
        "name": "payments-acr",
        "kind": "acr",
        "resource_group": "rg-registries",
        "baseline": {"replicate_to": ["northeurope"]},
        "private_endpoint_subnet_id": SUBNET,
        "log_analytics_workspace_id": WORKSPACE,
        "key_vault_key_id": KEY,
        "identity_id": IDENTITY,
        "identity_client_id": "00000000-0000-0000-0000-000000000001",
        "tokens": [{"name": "ci-push", "repositories": ["payments/api"], "password_expiry": _expiry(30)}],
    }
    spec = parse_registry(entry, _stack(), "regguard:registries[1]")
    assert spec.registry.name == "paymentsacr" and spec.registry.location == "westeurope"
    assert spec.audit_targets() == [
        {
            "name": "payments-acr",
            "kind": "acr",
            "subscription_id": SUB,
            "resource_group": "rg-registries",
            "registries": ["paymentsacr"],
        }
    ]


def test_a_stack_token_without_expiry_is_refused_naming_the_key() -> None:
    entry = {
        "name": "dev-acr",
        "kind": "acr",
        "resource_group": "rg",
        "private_endpoint_subnet_id": SUBNET,
        "baseline": {"customer_managed_key": False},
        "tokens": [{"name": "ci-push", "repositories": ["payments/api"]}],
    }
    with pytest.raises(StackConfigError, match=r"tokens\[0\]\.password_expiry"):
        parse_registry(entry, _stack("dev"), "regguard:registries[1]")
