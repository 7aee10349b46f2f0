"""The policy pack on declared Distribution VMs: the stacks' VMs pass, a
security group opened to the internet is reported by RG-NET-001 on its URN
(mandatory in production, advisory elsewhere, silent under the explicit
opt-out), and a raw security group is reported as unmanaged."""

from __future__ import annotations

from typing import Any

import pytest

from policy.declared import from_policy_resources
from policy.declared_distribution import SECURITY_GROUP, declare
from tests.policy.conftest import (
    ProgramRun,
    Violation,
    policy_resources,
    replace_resources,
    validate_all,
    with_inputs,
)
from tests.pulumi.mocks import RegisteredResource


def _group(run: ProgramRun) -> RegisteredResource:
    (group,) = [r for r in run.resources if r.type == SECURITY_GROUP]
    return group


def _opened(group: RegisteredResource, *, opt_out: bool = False, env: str | None = None) -> RegisteredResource:
    ingress = [dict(rule, cidrBlocks=[*rule["cidrBlocks"], "0.0.0.0/0"]) for rule in group.inputs["ingress"]]
    tags = dict(group.inputs["tags"])
    if opt_out:
        tags["regguard:opt-out:allowed_cidrs"] = "public"
    if env is not None:
        tags["regguard:environment"] = env
    return with_inputs(group, ingress=ingress, tags=tags)


def _net(violations: list[Violation]) -> list[Violation]:
    return [v for v in violations if v.policy.startswith("rg-net-001")]


@pytest.mark.parametrize("env", ["prod", "airgapped"])
def test_the_stacks_vms_pass_the_pack(env: str, stack_runs: Any) -> None:
    run = stack_runs(env)
    assert validate_all(run.resources) == []
    declared = declare(from_policy_resources(policy_resources(run.resources)))
    assert declared is not None and declared.facts.facts["network_exposure"].value.publicly_reachable is False


def test_an_open_prod_security_group_is_mandatory_on_its_urn(stack_runs: Any) -> None:
    run = stack_runs("prod")
    group = _group(run)
    (violation,) = _net(validate_all(replace_resources(run.resources, {group.urn: _opened(group)})))
    assert (violation.policy, violation.level, violation.urn) == ("rg-net-001", "mandatory", group.urn)
    assert "admits 0.0.0.0/0" in violation.message


def test_outside_prod_it_is_advisory_and_the_opt_out_silences_it(stack_runs: Any) -> None:
    run = stack_runs("prod")
    group = _group(run)
    (violation,) = _net(validate_all(replace_resources(run.resources, {group.urn: _opened(group, env="staging")})))
    assert violation.level == "advisory"
    opted = _opened(group, env="staging", opt_out=True)
    assert _net(validate_all(replace_resources(run.resources, {group.urn: opted}))) == []


def test_a_raw_security_group_is_reported_as_unmanaged() -> None:
    raw = RegisteredResource(
        SECURITY_GROUP, "open", f"urn:pulumi:prod::regguard::{SECURITY_GROUP}::open", "",
        {"ingress": [{"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["0.0.0.0/0"]}]}, True,
    )
    found = validate_all([raw])
    assert [(v.policy, v.urn) for v in found] == [("regguard-unmanaged-distribution", raw.urn)]
