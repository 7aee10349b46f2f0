"""Fixtures for the policy-pack tests: the real stacks run under Pulumi mocks,
their registered resources turned into the `PolicyResource`s CrossGuard
would hand a stack policy, and a runner that calls every policy's
`validate` and collects what it reports."""

from __future__ import annotations

import copy
import importlib.util
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pulumi
import pytest
from pulumi_policy import PolicyCustomTimeouts, PolicyResource, PolicyResourceOptions, StackValidationArgs
from pulumi_policy.proxy import unknown_checking_proxy

from policy.policies import build_policies
from tests.pulumi.mocks import ProgramRun, RegisteredResource, run_program, stack_config

ROOT = Path(__file__).resolve().parents[2]
STACKS = ROOT / "stacks"
ENVS = ("dev", "staging", "prod")


@dataclass(frozen=True)
class Violation:
    policy: str
    level: str  # "mandatory" / "advisory"
    message: str
    urn: str | None


def policy_resources(resources: Sequence[RegisteredResource]) -> list[PolicyResource]:
    """What CrossGuard's AnalyzeStack builds: props behind the SDK's
    unknown-checking proxy, `parent` linked to the parent's PolicyResource."""
    built = {
        r.urn: PolicyResource(
            r.type,
            unknown_checking_proxy(copy.deepcopy(r.inputs)),
            r.urn,
            r.name,
            PolicyResourceOptions(False, [], False, [], PolicyCustomTimeouts(0, 0, 0), [], r.parent_urn or None),
            None,
            None,
            [],
            {},
        )
        for r in resources
    }
    for r in resources:
        built[r.urn].parent = built.get(r.parent_urn)
    return list(built.values())


def validate_all(resources: Sequence[RegisteredResource], policies: Sequence[Any] | None = None) -> list[Violation]:
    """Call every policy's validate with real StackValidationArgs; collect
    each report_violation call."""
    found: list[Violation] = []
    args = StackValidationArgs(policy_resources(resources))
    for policy in policies if policies is not None else build_policies():
        level = policy.enforcement_level.value

        def report(message: str, urn: str | None = None, _p: str = policy.name, _l: str = level) -> None:
            found.append(Violation(_p, _l, message, urn))

        policy.validate(args, report)
    return found


def with_inputs(resource: RegisteredResource, **changes: Any) -> RegisteredResource:
    """A copy of `resource` with some inputs replaced (None removes one)."""
    inputs = copy.deepcopy(resource.inputs)
    for key, value in changes.items():
        if value is None:
            inputs.pop(key, None)
        else:
            inputs[key] = value
    return RegisteredResource(resource.type, resource.name, resource.urn, resource.parent_urn, inputs, resource.custom)


def replace_resources(
    resources: Sequence[RegisteredResource], edit: Mapping[str, RegisteredResource | None]
) -> list[RegisteredResource]:
    """`resources` with the ones whose URN is in `edit` replaced (None drops it)."""
    out: list[RegisteredResource] = []
    for r in resources:
        if r.urn not in edit:
            out.append(r)
        elif (replacement := edit[r.urn]) is not None:
            out.append(replacement)
    return out


@pytest.fixture(scope="session")
def program() -> ModuleType:
    """`__main__.py` imported under another name, so `main()` does not run on import."""
    spec = importlib.util.spec_from_file_location("regguard_program_policy", ROOT / "__main__.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def stack_runs(program: ModuleType) -> Iterator[Callable[[str], ProgramRun]]:
    """Each stack file run once through the real program under mocks (the
    runs are plain data afterwards; tests copy before changing them)."""
    cache: dict[str, ProgramRun] = {}

    def get(env: str) -> ProgramRun:
        if env not in cache:
            cache[env] = run_program(program.main, stack_config(STACKS / f"Pulumi.{env}.yaml"), stack=env)
        return cache[env]

    try:
        yield get
    finally:
        pulumi.runtime.settings.set_root_resource(None)


