"""GAR components under Pulumi mocks, and the gcp-* sibling stacks through the program."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from audits.config import parse_config
from audits.targets import GarTarget
from components.artifact_registry import (
    ArtifactRegistryRepository,
    ArtifactRegistryRepositoryArgs,
    RemoteUpstream,
    cleanup_policies,
)
from components.baseline import Baseline
from components.stack_config import StackConfigError, parse_stack_config
from tests.pulumi.conftest import STACKS
from tests.pulumi.mocks import ProgramRun

REPO = "gcp:artifactregistry/repository:Repository"
MEMBER = "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember"
KEY = "gcp:kms/cryptoKey:CryptoKey"
KEY_GRANT = "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember"
AUDIT = "gcp:projects/iAMAuditConfig:IAMAuditConfig"
PROD = Baseline.for_environment("prod", {"replicate_to": []})
RunStack = Callable[..., ProgramRun]


def args(**extra: Any) -> ArtifactRegistryRepositoryArgs:
    base: dict[str, Any] = {
        "repository_id": "payments", "location": "europe", "project": "acme-prod", "baseline": PROD,
        "environment": "prod", "create_kms_key": True, "project_number": "123",
        "readers": ("group:deployers@acme.example",),
        "writers": ("serviceAccount:ci@acme-prod.iam.gserviceaccount.com",),
    }  # fmt: skip
    return ArtifactRegistryRepositoryArgs(**{**base, **extra})


def test_a_prod_repository_is_hardened(mocked: Callable[..., ProgramRun]) -> None:
    run = mocked(lambda: ArtifactRegistryRepository("pay", args()), {})
    repo = run.one(REPO)
    assert repo.inputs["dockerConfig"] == {"immutableTags": True}
    assert repo.inputs["cleanupPolicyDryRun"] is False
    assert {p["id"] for p in repo.inputs["cleanupPolicies"]} == {"keep-recent", "delete-untagged"}
    assert repo.inputs["vulnerabilityScanningConfig"] == {"enablementConfig": "INHERITED"}
    assert repo.inputs["kmsKeyName"] == f"{run.one(KEY).name}-id"  # the key created beside it
    assert run.one(KEY).inputs["rotationPeriod"] == "7776000s"
    assert "gcp-sa-artifactregistry" in run.one(KEY_GRANT).inputs["member"]
    members = {m.inputs["member"]: m.inputs["role"] for m in run.of_type(MEMBER)}
    assert members == {"group:deployers@acme.example": "roles/artifactregistry.reader",
                       "serviceAccount:ci@acme-prod.iam.gserviceaccount.com": "roles/artifactregistry.writer"}
    assert not any(k.startswith("regguard-opt-out") for k in repo.inputs["labels"])
    component = run.one("regguard:artifact_registry:ArtifactRegistryRepository")
    assert all(r.parent_urn == component.urn for r in run.resources if r.custom)


@pytest.mark.parametrize(("change", "message"), [
    ({"readers": ("allUsers",)}, "would make the repository public"),
    ({"writers": ("allAuthenticatedUsers",)}, "would make the repository public"),
    ({"create_kms_key": False}, "cannot add one later"),
    ({"cleanup_dry_run": True}, "prod cleanup policies must delete"),
    ({"project_number": None}, "project_number"),
])
def test_weak_prod_settings_are_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        args(**change)


def test_cleanup_policies_follow_the_baseline() -> None:
    keep, delete = cleanup_policies(Baseline(keep_last=25, expire_untagged_days=5))
    assert keep["most_recent_versions"] == {"keep_count": 25}
    assert delete["condition"] == {"tag_state": "UNTAGGED", "older_than": "432000s"}


def test_remote_and_gcr_repositories(mocked: Callable[..., ProgramRun]) -> None:
    remote = RemoteUpstream("bot", "projects/acme-prod/secrets/hub/versions/3")
    run = mocked(lambda: [ArtifactRegistryRepository("hub", args(repository_id="hub", remote=remote)),
                          ArtifactRegistryRepository("gcr", args(location="us", gcr_domain=True))], {})  # fmt: skip
    hub, gcr = run.one(REPO, "hub"), run.one(REPO, "gcr")
    assert hub.inputs["mode"] == "REMOTE_REPOSITORY"
    credential = hub.inputs["remoteRepositoryConfig"]["upstreamCredentials"]["usernamePasswordCredentials"]
    assert credential == {"username": "bot", "passwordSecretVersion": "projects/acme-prod/secrets/hub/versions/3"}
    assert gcr.inputs["repositoryId"] == "us.gcr.io"


def test_an_opt_out_is_labelled(mocked: Callable[..., ProgramRun]) -> None:
    dev = Baseline.for_environment("dev", {"customer_managed_key": False, "immutable_tags": False})
    run = mocked(lambda: ArtifactRegistryRepository("d", args(baseline=dev, environment="dev",
                                                              create_kms_key=False, cleanup_dry_run=True)), {})
    labels = run.one(REPO).inputs["labels"]
    assert labels["regguard-opt-out-customer_managed_key"] == "false"
    assert labels["regguard-opt-out-immutable_tags"] == "false"
    assert labels["regguard-opt-out-cleanup_dry_run"] == "true"


@pytest.mark.parametrize("env", ["gcp-dev", "gcp-staging", "gcp-prod"])
def test_gcp_stacks_export_an_audit_config_the_auditor_accepts(env: str, run_stack: RunStack) -> None:
    run = run_stack(env)
    config = parse_config(run.exports["auditConfig"], STACKS / f"Pulumi.{env}.yaml")
    [target] = config.targets
    assert isinstance(target, GarTarget) and target.repositories
    for repo in run.of_type(REPO):
        assert repo.inputs.get("dockerConfig", {"immutableTags": True})["immutableTags"] is True


def test_gcp_prod_turns_on_data_access_logs_and_creates_keys(run_stack: RunStack) -> None:
    run = run_stack("gcp-prod")
    [audit] = run.of_type(AUDIT)
    assert audit.inputs["service"] == "artifactregistry.googleapis.com"
    assert {c["logType"] for c in audit.inputs["auditLogConfigs"]} == {"DATA_READ", "DATA_WRITE"}
    assert len(run.of_type(KEY)) == len(run.of_type(REPO)) == 4


def test_a_stack_error_names_the_key() -> None:
    registry = {
        "name": "g", "kind": "gar", "project": "acme-prod", "project_number": "1", "location": "europe",
        "baseline": {"replicate_to": []}, "readers": ["allUsers"],
        "repositories": [{"id": "x", "create_kms_key": True}],
    }  # fmt: skip
    with pytest.raises(StackConfigError, match=r"regguard:registries\[0\]\.repositories\[0\]\.readers: allUsers"):
        parse_stack_config(environment="prod", provider=lambda key: None, registries=[registry])
