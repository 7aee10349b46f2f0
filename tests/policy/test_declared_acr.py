"""The policy pack on declared ACR state: the hardened component passes the same
rules the live audit applies, a weakened registry is reported by rule id on its
URN, preview unknowns stay quiet."""

from __future__ import annotations

import pytest
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from audits.engine import judge
from audits.model import Status
from audits.rules.registry import catalog
from components.acr import AcrRegistry
from policy.declared import DeclaredResource
from policy.declared_acr import DECLARED_STATE_RULES, REGISTRY, declare
from tests.policy.conftest import replace_resources, validate_all, with_inputs
from tests.pulumi.mocks import ProgramRun, RegisteredResource, run_program
from tests.pulumi.test_acr import _prod

DIAGNOSTICS = "azure-native:monitor:DiagnosticSetting"


def _declared(resources: list[RegisteredResource]) -> list[DeclaredResource]:
    return [DeclaredResource(r.type, r.name, r.urn, r.parent_urn, r.inputs) for r in resources]


@pytest.fixture
def prod_run() -> ProgramRun:
    return run_program(lambda: AcrRegistry("prod", _prod()), {}, stack="prod")


def test_the_hardened_registry_passes_every_declared_rule(prod_run: ProgramRun) -> None:
    stack = declare(_declared(prod_run.resources))
    assert stack is not None
    findings = judge(stack.facts, stack.context, catalog())
    declared = {f.rule: f.status for f in findings if f.rule in DECLARED_STATE_RULES}
    assert set(declared) == set(DECLARED_STATE_RULES)
    assert {r: s for r, s in declared.items() if s is not Status.PASS and s is not Status.NOT_APPLICABLE} == {}
    assert not [f for f in findings if f.status is Status.ERROR]
    assert validate_all(prod_run.resources) == []


def test_a_weakened_registry_is_reported_by_rule_id_on_its_urn(prod_run: ProgramRun) -> None:
    registry = prod_run.one(REGISTRY)
    weak = with_inputs(
        registry,
        adminUserEnabled=True,
        anonymousPullEnabled=True,
        publicNetworkAccess="Enabled",
        networkRuleSet={"defaultAction": "Allow"},
        encryption={"status": "disabled"},
        policies={"retentionPolicy": {"status": "disabled"}},
    )
    edits: dict[str, RegisteredResource | None] = {registry.urn: weak, prod_run.one(DIAGNOSTICS).urn: None}
    found = validate_all(replace_resources(prod_run.resources, edits))
    reported = {(v.policy, v.urn) for v in found}
    for rule in ("RG-AUTH-001", "RG-AUTH-003", "RG-NET-001", "RG-MON-001", "RG-ENC-001", "RG-RET-001"):
        assert (rule.lower(), registry.urn) in reported, rule


def test_a_value_unknown_at_preview_stays_quiet(prod_run: ProgramRun) -> None:
    registry = prod_run.one(REGISTRY)
    unknown = with_inputs(registry, networkRuleSet={"defaultAction": UNKNOWN_STRING_VALUE})
    resources = replace_resources(prod_run.resources, {registry.urn: unknown})
    stack = declare(_declared(resources))
    assert stack is not None
    statuses = {f.rule: f.status for f in judge(stack.facts, stack.context, catalog())}
    assert statuses["RG-NET-001"] is Status.MANUAL
    assert validate_all(resources) == []


def test_no_registry_means_nothing_to_report() -> None:
    bucket = RegisteredResource("azure-native:storage:StorageAccount", "logs", "urn:pulumi:p::p::x::logs", "", {}, True)
    assert declare(_declared([bucket])) is None
