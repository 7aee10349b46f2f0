"""The policy pack on declared Harbor projects and robot accounts (the
airgapped stack): they pass as declared; a never-expiring robot, a public
project, an immutable rule that misses release tags and a project without
scan on push are reported by the rule that says so, on the resource's URN."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from policy.declared import from_policy_resources
from policy.declared_harbor import IMMUTABLE_RULE, PROJECT, ROBOT, declare
from tests.policy.conftest import ProgramRun, Violation, policy_resources, replace_resources, validate_all, with_inputs
from tests.pulumi.mocks import RegisteredResource


def _one(run: ProgramRun, type_token: str, name: str) -> RegisteredResource:
    (found,) = [r for r in run.resources if r.type == type_token and r.name == name]
    return found


def _reported(run: ProgramRun, resource: RegisteredResource, **changes: Any) -> dict[str, list[Violation]]:
    edited = replace_resources(run.resources, {resource.urn: with_inputs(resource, **changes)})
    found: dict[str, list[Violation]] = {}
    for violation in validate_all(edited):
        found.setdefault(violation.policy, []).append(violation)
    return found


def test_declared_projects_and_robots_are_judged_and_pass(stack_runs: Callable[[str], ProgramRun]) -> None:
    run = stack_runs("airgapped")
    declared = declare(from_policy_resources(policy_resources(run.resources)))
    assert declared is not None and declared.context.environment == "prod"
    robots = declared.facts.facts["credentials"].value
    assert {r.id for r in robots} == {"robot:ci-publisher", "robot:k8s-puller", "robot:regguard-auditor"}
    assert all(r.expires_at is not None for r in robots)
    assert validate_all(run.resources) == []


def test_a_never_expiring_robot_fails_rg_cred_001_on_its_urn(stack_runs: Callable[[str], ProgramRun]) -> None:
    run = stack_runs("airgapped")
    robot = _one(run, ROBOT, "site-harbor-platform-robot-k8s-puller")
    found = _reported(run, robot, duration=-1)
    assert set(found) == {"rg-cred-001"}
    (violation,) = found["rg-cred-001"]
    assert (violation.level, violation.urn) == ("mandatory", robot.urn) and "never expires" in violation.message


@pytest.mark.parametrize(("type_token", "name", "changes", "policy", "wanted"), [
    (PROJECT, "site-harbor-apps-project", {"public": True}, "rg-auth-001", "(apps)"),
    (IMMUTABLE_RULE, "site-harbor-apps-immutable", {"tagMatching": "dev-*"}, "rg-tag-002", "release tags mutable"),
    (PROJECT, "site-harbor-apps-project", {"vulnerabilityScanning": False}, "rg-scan-001", "apps"),
])
def test_a_weakened_project_fails_the_rule_that_says_so(
    type_token: str, name: str, changes: dict[str, Any], policy: str, wanted: str,
    stack_runs: Callable[[str], ProgramRun],
) -> None:
    run = stack_runs("airgapped")
    resource = _one(run, type_token, name)
    found = _reported(run, resource, **changes)
    assert set(found) == {policy}, found
    (violation,) = found[policy]
    assert violation.level == "mandatory" and wanted in violation.message
    project = _one(run, PROJECT, "site-harbor-apps-project")
    assert violation.urn == project.urn


def test_a_raw_harbor_project_is_reported_as_unmanaged() -> None:
    raw = RegisteredResource(PROJECT, "raw", f"urn:pulumi:prod::regguard::{PROJECT}::raw", "",
                             {"name": "raw", "public": False}, True)
    assert ("regguard-unmanaged-harbor", raw.urn) in [(v.policy, v.urn) for v in validate_all([raw])]
