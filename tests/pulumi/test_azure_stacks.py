"""The Azure sibling stacks (stacks/Pulumi.azure-*.yaml) through the real program
under mocks: hardened registries, a valid `auditConfig` with an acr target, and
the policy pack quiet on them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from audits.config import parse_config
from audits.targets import AcrTarget
from tests.policy.conftest import validate_all
from tests.pulumi.mocks import ProgramRun
from tests.pulumi.test_acr import DIAGNOSTICS, ENDPOINT, REGISTRY, REPLICATION, TOKEN

AZURE_STACKS = ("azure-dev", "azure-staging", "azure-prod")


@pytest.mark.parametrize("stack", AZURE_STACKS)
def test_azure_stack_declares_a_hardened_registry_and_exports_its_audit_target(
    stack: str, run_stack: Callable[..., ProgramRun]
) -> None:
    run = run_stack(stack)
    registry = run.one(REGISTRY).inputs
    assert registry["adminUserEnabled"] is False and registry["publicNetworkAccess"] == "Disabled"
    assert registry["networkRuleBypassOptions"] == "None"
    assert registry["policies"]["exportPolicy"] == {"status": "disabled"}
    assert run.of_type(ENDPOINT) and run.one(TOKEN).inputs["credentials"]["passwords"][0]["expiry"]
    audit = run.exports["auditConfig"]
    (target,) = parse_config(audit, Path(f"stacks/Pulumi.{stack}.yaml")).targets
    assert isinstance(target, AcrTarget) and target.registries == [registry["registryName"]]
    assert validate_all(run.resources) == []


def test_azure_prod_is_zone_redundant_replicated_customer_keyed_and_logged(
    run_stack: Callable[..., ProgramRun],
) -> None:
    run = run_stack("azure-prod")
    registry = run.one(REGISTRY).inputs
    assert registry["zoneRedundancy"] == "Enabled" and registry["encryption"]["status"] == "enabled"
    assert run.one(REPLICATION).inputs["location"] == "northeurope"
    assert run.of_type(DIAGNOSTICS)
    assert not any(k.startswith("regguard:opt-out:") for k in registry["tags"])


def test_azure_dev_shows_its_relaxations_as_opt_out_tags(run_stack: Callable[..., ProgramRun]) -> None:
    tags = run_stack("azure-dev").one(REGISTRY).inputs["tags"]
    assert tags["regguard:opt-out:customer_managed_key"] == "false"
    assert tags["regguard:opt-out:replicate_to"] == "none"
