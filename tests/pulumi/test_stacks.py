"""Each stacks/Pulumi.<env>.yaml run through `__main__.main()` under mocks."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pytest

from audits.config import parse_config
from audits.targets import EcrTarget
from audits.vocabulary import matches_release_tag
from tests.pulumi.mocks import ProgramRun, RegisteredResource

ENVS = ("dev", "staging", "prod")
RunStack = Callable[..., ProgramRun]

REPO = "aws:ecr/repository:Repository"
KEY = "aws:kms/key:Key"
LIFECYCLE = "aws:ecr/lifecyclePolicy:LifecyclePolicy"
REPO_POLICY = "aws:ecr/repositoryPolicy:RepositoryPolicy"
SCANNING = "aws:ecr/registryScanningConfiguration:RegistryScanningConfiguration"
REPLICATION = "aws:ecr/replicationConfiguration:ReplicationConfiguration"
REGISTRY_POLICY = "aws:ecr/registryPolicy:RegistryPolicy"


def _component_of(run: ProgramRun, resource: RegisteredResource) -> RegisteredResource:
    return run.by_urn(resource.parent_urn)


def _principals(policy: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for statement in policy["Statement"]:
        principal = statement["Principal"]
        found += [principal] if isinstance(principal, str) else list(principal["AWS"])
    return found


@pytest.mark.parametrize("env", ENVS)
def test_stack_registers_compliant_resources(env: str, run_stack: RunStack) -> None:
    run = run_stack(env)
    repos = run.of_type(REPO)
    assert len(repos) >= 3
    for repo in repos:
        component = _component_of(run, repo)
        assert component.type == "regguard:ecr:EcrRepository"
        assert repo.inputs["imageTagMutability"] in {"IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION"}
        for exclusion in repo.inputs.get("imageTagMutabilityExclusionFilters") or []:
            assert not matches_release_tag(exclusion["filter"]), exclusion  # release tags stay immutable
        assert repo.inputs["tags"]["regguard:environment"] == env
        assert repo.inputs["tags"]["regguard:managed"] == "true"
        assert "regguard:opt-out:public" not in repo.inputs["tags"]
    for lifecycle in run.of_type(LIFECYCLE):
        rules = json.loads(lifecycle.inputs["policy"])["rules"]
        assert sorted(r["rulePriority"] for r in rules) == [1, 2]
        assert {r["selection"]["tagStatus"] for r in rules} == {"untagged", "tagged"}
    assert len(run.of_type(LIFECYCLE)) == len(repos)
    for policy in run.of_type(REPO_POLICY) + run.of_type(REGISTRY_POLICY):
        assert "*" not in _principals(json.loads(policy.inputs["policy"]))
    (scanning,) = run.of_type(SCANNING)
    assert _component_of(run, scanning).type == "regguard:ecr:EcrRegistry"
    filters = [f for rule in scanning.inputs["rules"] for f in rule["repositoryFilters"]]
    assert {"filter": "*", "filterType": "WILDCARD"} in filters
    for resource in run.resources:
        if resource.custom:  # every provider resource lives inside a regguard component
            assert _component_of(run, resource).type.startswith("regguard:")


def test_prod_is_strict(run_stack: RunStack) -> None:
    run = run_stack("prod")
    repos = run.of_type(REPO)
    keys = [k for k in run.of_type(KEY) if _component_of(run, k).type == "regguard:ecr:EcrRepository"]
    assert len(keys) == len(repos) and all(k.inputs["enableKeyRotation"] is True for k in keys)
    for repo in repos:
        (encryption,) = repo.inputs["encryptionConfigurations"]
        assert encryption["encryptionType"] == "KMS" and encryption["kmsKey"].startswith("arn:aws:kms:")
        assert not any(k.startswith("regguard:opt-out:") for k in repo.inputs["tags"])
    assert run.one(SCANNING).inputs["rules"][0]["scanFrequency"] == "CONTINUOUS_SCAN"
    destinations = run.one(REPLICATION).inputs["replicationConfiguration"]["rules"][0]["destinations"]
    assert [d["region"] for d in destinations] == ["us-west-2"]
    assert run.of_type(REGISTRY_POLICY)


def test_dev_is_relaxed_visibly(run_stack: RunStack) -> None:
    run = run_stack("dev")
    assert run.one(SCANNING).inputs["rules"][0]["scanFrequency"] == "SCAN_ON_PUSH"
    assert run.of_type(REPLICATION) == [] and run.of_type(KEY) == []
    for repo in run.of_type(REPO):
        tags = repo.inputs["tags"]
        assert tags["regguard:opt-out:customer_managed_key"] == "false"
        assert tags["regguard:opt-out:immutable_tag_exclusions"] == "dev-... sha-..."
        assert tags["regguard:opt-out:replicate_to"] == "none"
    for lifecycle in run.of_type(LIFECYCLE):
        tagged = [r for r in json.loads(lifecycle.inputs["policy"])["rules"]
                  if r["selection"]["tagStatus"] == "tagged"]
        assert tagged[0]["selection"]["countNumber"] > 1  # never latest-only


def test_mutable_dev_opt_out_shows_in_tags(run_stack: RunStack) -> None:
    def mutable(config: dict[str, Any]) -> None:
        config["regguard:registries"][0]["baseline"] = {"immutable_tags": False}

    run = run_stack("dev", mutable)
    for repo in run.of_type(REPO):
        assert repo.inputs["imageTagMutability"] == "MUTABLE"
        assert repo.inputs["tags"]["regguard:opt-out:immutable_tags"] == "false"


@pytest.mark.parametrize("env", ENVS)
def test_audit_config_export_is_a_valid_regguard_yaml(env: str, run_stack: RunStack) -> None:
    run = run_stack(env)
    audit = run.exports["auditConfig"]
    model = parse_config(audit, Path(f"stacks/Pulumi.{env}.yaml"))
    assert model.environment == env
    assert model.use_cases  # every stack declares what the registry is for (RG-FIT-001)
    (target,) = [t for t in model.targets if isinstance(t, EcrTarget)]
    created = sorted(r.inputs["name"] for r in run.of_type(REPO))
    assert sorted(target.repositories) == created
    assert set(run.exports["repositoryUrls"]) - {t.name for t in model.targets if t.kind != "ecr"} == set(created)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["regguard:registries"][0]["baseline"].update(keep_last=0),
         "regguard:registries[0].baseline.keep_last: expected a positive integer"),
        (lambda c: c["regguard:registries"].append({"name": "x", "kind": "ecr", "baseline": {"keep_last": "5"}}),
         "regguard:registries[2].baseline.keep_last: expected a positive integer"),
        (lambda c: c.pop("regguard:environment"), "regguard:environment: required"),
        (lambda c: c.__setitem__("regguard:use_cases", ["quantum"]),
         "regguard:use_cases: unknown use case 'quantum'"),
        (lambda c: c.__setitem__("regguard:registries", "core"),
         "regguard:registries: expected a list or mapping"),
        (lambda c: c["regguard:registries"][0]["push_principals"].append("*"),
         "regguard:registries[0].push_principals[1]: '*' refused"),
    ],
)
def test_wrong_config_fails_with_one_keyed_message(
    edit: Callable[[dict[str, Any]], Any], message: str, run_stack: RunStack
) -> None:
    with pytest.raises(pulumi.RunError) as info:
        run_stack("prod", edit)
    assert str(info.value).startswith(message), str(info.value)
