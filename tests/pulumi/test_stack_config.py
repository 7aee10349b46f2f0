"""Stack config parsing without the engine: one keyed message per problem."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from audits.config import parse_config
from audits.targets import EcrTarget
from components.stack_config import StackConfigError, parse_stack_config

NODES = "arn:aws:iam::123456789012:role/eks-nodes"
CI = "arn:aws:iam::123456789012:role/ci"


def _registry(**extra: Any) -> dict[str, Any]:
    registry: dict[str, Any] = {
        "name": "core",
        "kind": "ecr",
        "baseline": {"replicate_to": ["us-west-2"]},
        "pull_principals": [NODES],
        "push_principals": [CI],
        "repositories": ["payments/api", {"name": "payments/worker", "baseline": {"keep_last": 9}}],
    }
    registry.update(extra)
    return registry


def _parse(registries: Any, region: str | None = "us-east-1", **kwargs: Any) -> Any:
    values: dict[str, Any] = {"environment": "prod", "registries": registries}
    values.update(kwargs)
    return parse_stack_config(provider={"aws:region": region}.get, **values)


def test_valid_config_builds_args_and_merges_overrides() -> None:
    stack = _parse([_registry()])
    (spec,) = stack.registries
    api, worker = spec.repositories
    assert spec.registry.baseline.replicate_to == ("us-west-2",)
    assert api.baseline.keep_last == 100 and worker.baseline.keep_last == 9
    assert worker.baseline.replicate_to == ("us-west-2",)
    assert api.pull_principals == (NODES,) and api.push_principals == (CI,)


def test_audit_config_matches_the_auditors_model() -> None:
    stack = _parse([_registry()], frameworks=["soc2", "fedramp-moderate"])
    audit = stack.audit_config()
    model = parse_config(audit, Path("stacks/Pulumi.prod.yaml"))
    (target,) = model.targets
    assert isinstance(target, EcrTarget)
    assert (target.name, target.region) == ("core", "us-east-1")
    assert target.repositories == ["payments/api", "payments/worker"]
    assert model.environment == "prod" and model.frameworks == ["soc2", "fedramp-moderate"]


def test_public_repository_is_declared_to_the_auditor() -> None:
    registry = _registry(repositories=[{"name": "oss/tool", "baseline": {"public": True}}])
    audit = _parse([registry]).audit_config()
    assert audit["targets"][0]["public_repositories"] == ["oss/tool"]


def _with(path: str, value: Any) -> list[dict[str, Any]]:
    """A valid registry list with one value changed at a dotted path."""
    registries = [_registry()]
    node: Any = registries
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    last = parts[-1]
    if last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return registries


@pytest.mark.parametrize(
    ("registries", "message"),
    [
        (_with("0.baseline.keep_last", 0),
         "regguard:registries[0].baseline.keep_last: expected a positive integer"),
        (_with("0.baseline.keep_last", "ten"),
         "regguard:registries[0].baseline.keep_last: expected a positive integer"),
        (_with("0.baseline.colour", "blue"), "regguard:registries[0].baseline.colour: unknown baseline key"),
        (_with("0.kind", "gcr"), "regguard:registries[0].kind: 'gcr' is not provisioned"),
        (_with("0.repos", []), "regguard:registries[0].repos: unknown key"),
        (_with("0.repositories", []), "regguard:registries[0].repositories: expected a non-empty list"),
        (_with("0.repositories.1.baseline.scan_mode", "scan_on_push"),
         "regguard:registries[0].repositories[1].baseline.scan_mode: registry-wide setting"),
        (_with("0.repositories.1.baseline.keep_last", -1),
         "regguard:registries[0].repositories[1].baseline.keep_last: expected a positive integer"),
        (_with("0.repositories.1.push_principals", ["*"]),
         "regguard:registries[0].repositories[1].push_principals[0]: '*' refused"),
        (_with("0.pull_principals", [NODES, "*"]),
         "regguard:registries[0].pull_principals[1]: '*' refused"),
        (_with("0.repositories.0", "Bad Name"),
         "regguard:registries[0].repositories[0].name: 'Bad Name' is not a valid ECR"),
        (_with("0.repositories.1.name", "payments/api"),
         "regguard:registries[0].repositories[1].name: 'payments/api' is used twice"),
        (_with("0.baseline.replicate_to", ["us-east-1"]),
         "regguard:registries[0].baseline.replicate_to: us-east-1 is the registry's own region"),
        (_with("0.pull_through_caches", [{"ecr_repository_prefix": "hub",
                                          "upstream_registry_url": "registry-1.docker.io"}]),
         "regguard:registries[0].pull_through_caches[0].credential_arn"),
        (_with("0.baseline", {}), "regguard:registries[0].baseline.replicate_to: prod needs"),
        ([], "regguard:registries: expected a non-empty list"),
        (None, "regguard:registries: expected a non-empty list"),
        ([_registry(), {**_registry(), "name": "second", "baseline": {"keep_last": 0}}],
         "regguard:registries[1].baseline.keep_last: expected a positive integer"),
        ([_registry(), {**_registry(), "name": "second"}],
         "regguard:registries[1]: one ecr registry per stack"),
    ],
)
def test_bad_registries_fail_with_one_keyed_message(registries: Any, message: str) -> None:
    with pytest.raises(StackConfigError) as info:
        _parse(copy.deepcopy(registries))
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"environment": None}, "regguard:environment: required"),
        ({"region": None}, "aws:region: required"),
        ({"frameworks": ["iso27001"]}, "regguard:frameworks[0]: 'iso27001' is unknown"),
        ({"use_cases": "enterprise-internal"}, "regguard:use_cases: expected a list of strings"),
    ],
)
def test_bad_top_level_values_name_the_key(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(StackConfigError, match="^" + message.replace("[", r"\[").replace("]", r"\]")):
        _parse([_registry()], **kwargs)
