"""ECR components: policy documents (pure) and registered resources (mocks)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pulumi
import pytest

from components.baseline import Baseline
from components.ecr import (
    PULL_ACTIONS,
    PUSH_ACTIONS,
    SUPPORTS_TAG_EXCLUSIONS,
    EcrRegistry,
    EcrRegistryArgs,
    EcrRepository,
    EcrRepositoryArgs,
    PullThroughCache,
    lifecycle_policy_document,
    registry_policy_document,
    repository_policy_document,
)
from tests.pulumi.mocks import ProgramRun

REPO = "aws:ecr/repository:Repository"
KEY = "aws:kms/key:Key"
ALIAS = "aws:kms/alias:Alias"
LIFECYCLE = "aws:ecr/lifecyclePolicy:LifecyclePolicy"
REPO_POLICY = "aws:ecr/repositoryPolicy:RepositoryPolicy"
SCANNING = "aws:ecr/registryScanningConfiguration:RegistryScanningConfiguration"
REPLICATION = "aws:ecr/replicationConfiguration:ReplicationConfiguration"
REGISTRY_POLICY = "aws:ecr/registryPolicy:RegistryPolicy"
CACHE = "aws:ecr/pullThroughCacheRule:PullThroughCacheRule"

CI = "arn:aws:iam::123456789012:role/ci"
NODES = "arn:aws:iam::123456789012:role/eks-nodes"
PROD = Baseline.for_environment("prod", {"replicate_to": ["us-west-2"]})


# ------------------------------------------------------------------ documents


def test_lifecycle_document_has_both_rules_in_ecr_shape() -> None:
    doc = json.loads(lifecycle_policy_document(Baseline(keep_last=25, expire_untagged_days=5)))
    untagged, tagged = sorted(doc["rules"], key=lambda r: r["rulePriority"])
    assert [untagged["rulePriority"], tagged["rulePriority"]] == [1, 2]
    assert untagged["selection"] == {
        "tagStatus": "untagged",
        "countType": "sinceImagePushed",
        "countUnit": "days",
        "countNumber": 5,
    }
    assert tagged["selection"] == {
        "tagStatus": "tagged",
        "tagPatternList": ["*"],
        "countType": "imageCountMoreThan",
        "countNumber": 25,
    }
    assert untagged["action"] == tagged["action"] == {"type": "expire"}


def test_repository_policy_is_least_privilege() -> None:
    doc = json.loads(repository_policy_document([NODES], [CI]) or "")
    pull, push = doc["Statement"]
    assert pull["Principal"] == {"AWS": [NODES]} and pull["Action"] == sorted(PULL_ACTIONS)
    assert push["Principal"] == {"AWS": [CI]} and push["Action"] == sorted(PUSH_ACTIONS)
    assert not any("*" in a for s in doc["Statement"] for a in s["Action"])
    assert repository_policy_document([], []) is None


def test_registry_policy_scopes_replication_to_named_accounts() -> None:
    doc = json.loads(registry_policy_document(["210987654321"], "us-east-1", "123456789012"))
    (statement,) = doc["Statement"]
    assert statement["Principal"] == {"AWS": ["arn:aws:iam::210987654321:root"]}
    assert statement["Action"] == ["ecr:CreateRepository", "ecr:ReplicateImage"]
    assert statement["Resource"] == "arn:aws:ecr:us-east-1:123456789012:repository/*"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pull_principals": ("*",)}, "pull_principals[0]: '*' refused"),
        ({"push_principals": ("*",)}, "push_principals[0]: '*' refused: push is never anonymous"),
        ({"push_principals": (CI, "123456789012")}, "push_principals[1]: expected an IAM role"),
        ({"pull_principals": ("arn:aws:iam::123456789012:role/*",)}, "pull_principals[0]"),
        ({"name": "Payments/API"}, "name: 'Payments/API' is not a valid ECR repository name"),
        ({"tags": {"regguard:managed": "false"}}, "tags: 'regguard:managed'"),
        (
            {"kms_key_arn": "arn:aws:kms:us-east-1:123456789012:key/x",
             "baseline": Baseline(customer_managed_key=False)},
            "kms_key_arn",
        ),
    ],
)
def test_repository_args_refuse_unsafe_input(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"name": "payments/api", "baseline": PROD, "environment": "prod"}
    args.update(kwargs)
    with pytest.raises(ValueError) as info:
        EcrRepositoryArgs(**args)
    assert message in str(info.value)


def test_public_repository_gets_anonymous_pull_only() -> None:
    public = Baseline(public=True, replicate_to=("us-west-2",))
    args = EcrRepositoryArgs(
        name="oss/tool", baseline=public, environment="prod", push_principals=(CI,)
    )
    doc = json.loads(repository_policy_document(args.effective_pull_principals(), args.push_principals) or "")
    pull, push = doc["Statement"]
    assert pull["Principal"] == "*" and pull["Action"] == sorted(PULL_ACTIONS)
    assert push["Principal"] == {"AWS": [CI]}
    with pytest.raises(ValueError, match="push is never anonymous"):
        EcrRepositoryArgs(name="oss/tool", baseline=public, environment="prod", push_principals=("*",))


@pytest.mark.parametrize(
    ("cache", "message"),
    [
        (("docker-hub", "registry-1.docker.io", None), "credential_arn: registry-1.docker.io needs"),
        (("quay", "https://quay.io", None), "upstream_registry_url"),
        (("Quay", "quay.io", None), "ecr_repository_prefix"),
        (("ghcr", "ghcr.io", "arn:aws:secretsmanager:us-east-1:123456789012:secret:gh"), "credential_arn"),
    ],
)
def test_pull_through_cache_validation(cache: tuple[str, str, str | None], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PullThroughCache(*cache)


def test_pull_through_cache_with_secret_is_accepted() -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/ghcr-AbCd"
    assert PullThroughCache("ghcr", "ghcr.io", arn).credential_arn == arn


def test_registry_args_refuse_bad_accounts_and_own_region() -> None:
    with pytest.raises(ValueError, match=r"replication_source_accounts\[0\]"):
        EcrRegistryArgs(baseline=PROD, region="us-east-1", replication_source_accounts=("*",))
    with pytest.raises(ValueError, match="baseline.replicate_to: us-west-2 is the registry's own"):
        EcrRegistryArgs(baseline=PROD, region="us-west-2")


# ------------------------------------------------------------------ components under mocks


def _repository(
    mocked: Callable[..., ProgramRun], args: EcrRepositoryArgs
) -> tuple[ProgramRun, dict[str, Any]]:
    def program() -> None:
        repo = EcrRepository("app", args)
        pulumi.export("url", repo.repository_url)
        pulumi.export("arn", repo.arn)
        pulumi.export("name", repo.name)

    run = mocked(program, {"aws:region": "us-east-1"})
    return run, run.one(REPO).inputs


def test_repository_children_have_the_component_as_parent(mocked: Callable[..., ProgramRun]) -> None:
    run, _ = _repository(
        mocked, EcrRepositoryArgs("payments/api", PROD, "prod", (NODES,), (CI,))
    )
    component = run.one("regguard:ecr:EcrRepository")
    children = run.children_of(component)
    assert sorted(c.type for c in children) == sorted([KEY, ALIAS, REPO, LIFECYCLE, REPO_POLICY])
    assert all(r.parent_urn == component.urn for r in run.resources if r.custom)
    assert run.exports == {
        "url": "123456789012.dkr.ecr.us-east-1.amazonaws.com/payments/api",
        "arn": "arn:aws:ecr:us-east-1:123456789012:repository/payments/api",
        "name": "payments/api",
    }


def test_prod_repository_is_immutable_and_encrypted_with_a_rotated_key(
    mocked: Callable[..., ProgramRun],
) -> None:
    run, repo = _repository(mocked, EcrRepositoryArgs("payments/api", PROD, "prod", (NODES,), (CI,)))
    key = run.one(KEY).inputs
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert key["enableKeyRotation"] is True
    assert repo["encryptionConfigurations"] == [
        {"encryptionType": "KMS", "kmsKey": "arn:aws:kms:us-east-1:123456789012:key/app-key-id"}
    ]
    assert run.one(ALIAS).inputs["targetKeyId"] == "app-key-id"
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repo["forceDelete"] is False
    assert repo["tags"] == {"regguard:environment": "prod", "regguard:managed": "true"}
    lifecycle = json.loads(run.one(LIFECYCLE).inputs["policy"])
    assert {r["selection"]["tagStatus"] for r in lifecycle["rules"]} == {"untagged", "tagged"}
    policy = json.loads(run.one(REPO_POLICY).inputs["policy"])
    assert all(s["Principal"] != "*" for s in policy["Statement"])


def test_given_key_is_used_and_no_key_is_created(mocked: Callable[..., ProgramRun]) -> None:
    given = "arn:aws:kms:us-east-1:123456789012:key/shared"
    run, repo = _repository(
        mocked, EcrRepositoryArgs("payments/api", PROD, "prod", kms_key_arn=given)
    )
    assert run.of_type(KEY) == [] and run.of_type(ALIAS) == []
    assert repo["encryptionConfigurations"][0]["kmsKey"] == given
    assert run.of_type(REPO_POLICY) == []  # nobody named: no policy at all


def test_dev_opt_outs_are_visible_in_tags(mocked: Callable[..., ProgramRun]) -> None:
    dev = Baseline.for_environment("dev", {"immutable_tags": False})
    run, repo = _repository(mocked, EcrRepositoryArgs("exp/scratch", dev, "dev"))
    assert repo["imageTagMutability"] == "MUTABLE"
    assert repo["encryptionConfigurations"] == [{"encryptionType": "AES256"}]
    assert run.of_type(KEY) == []
    assert repo["tags"]["regguard:opt-out:immutable_tags"] == "false"
    assert repo["tags"]["regguard:opt-out:customer_managed_key"] == "false"
    assert repo["tags"]["regguard:opt-out:scan_mode"] == "scan_on_push"


def test_tag_exclusions_follow_the_sdk(mocked: Callable[..., ProgramRun]) -> None:
    dev = Baseline.for_environment("dev")
    _, repo = _repository(mocked, EcrRepositoryArgs("payments/api", dev, "dev"))
    assert SUPPORTS_TAG_EXCLUSIONS, "the locked pulumi-aws (7.x) supports exclusion filters"
    assert repo["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
    filters = {f["filter"] for f in repo["imageTagMutabilityExclusionFilters"]}
    assert filters and all(f["filterType"] == "WILDCARD" for f in repo["imageTagMutabilityExclusionFilters"])
    assert "dev-*" in filters
    assert repo["tags"]["regguard:opt-out:immutable_tag_exclusions"] == "dev-..."


def test_registry_scans_every_repository_and_replicates(mocked: Callable[..., ProgramRun]) -> None:
    args = EcrRegistryArgs(
        baseline=PROD,
        region="us-east-1",
        replication_source_accounts=("210987654321",),
        pull_through_caches=(PullThroughCache("ecr-public", "public.ecr.aws"),),
    )
    run = mocked(lambda: EcrRegistry("core", args), {"aws:region": "us-east-1"})
    component = run.one("regguard:ecr:EcrRegistry")
    assert {c.type for c in run.children_of(component)} == {
        SCANNING, REPLICATION, REGISTRY_POLICY, CACHE
    }
    scanning = run.one(SCANNING).inputs
    assert scanning["scanType"] == "ENHANCED"
    assert scanning["rules"] == [
        {"scanFrequency": "CONTINUOUS_SCAN",
         "repositoryFilters": [{"filter": "*", "filterType": "WILDCARD"}]}
    ]
    (rule,) = run.one(REPLICATION).inputs["replicationConfiguration"]["rules"]
    assert rule["destinations"] == [{"region": "us-west-2", "registryId": "123456789012"}]
    policy = json.loads(run.one(REGISTRY_POLICY).inputs["policy"])
    assert policy["Statement"][0]["Principal"] == {"AWS": ["arn:aws:iam::210987654321:root"]}
    assert run.one(CACHE).inputs == {
        "ecrRepositoryPrefix": "ecr-public", "upstreamRegistryUrl": "public.ecr.aws"
    }


def test_dev_registry_scans_on_push_without_replication(mocked: Callable[..., ProgramRun]) -> None:
    args = EcrRegistryArgs(baseline=Baseline.for_environment("dev"), region="eu-west-1")
    run = mocked(lambda: EcrRegistry("sandbox", args), {"aws:region": "eu-west-1"})
    assert run.one(SCANNING).inputs["rules"][0]["scanFrequency"] == "SCAN_ON_PUSH"
    assert run.of_type(REPLICATION) == [] and run.of_type(REGISTRY_POLICY) == []
