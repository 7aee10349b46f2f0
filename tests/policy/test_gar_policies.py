"""The policy pack on declared GAR state: the gcp-* stacks pass, a weakened
declared repository is reported by rule id on its URN, the same rules as the
live audit judge it."""

from __future__ import annotations

from typing import Any

import pytest

from audits.engine import judge
from audits.model import Status
from audits.rules.registry import catalog
from policy.declared import DeclaredResource
from policy.declared_gar import DECLARED_STATE_RULES, declare
from tests.policy.conftest import replace_resources, validate_all, with_inputs
from tests.pulumi.mocks import ProgramRun, RegisteredResource

REPO = "gcp:artifactregistry/repository:Repository"
MEMBER = "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember"
GCP_STACKS = ("gcp-dev", "gcp-staging", "gcp-prod")


def _declared(resources: list[RegisteredResource]) -> list[DeclaredResource]:
    return [DeclaredResource(r.type, r.name, r.urn, r.parent_urn, r.inputs) for r in resources]


def _repo(run: ProgramRun, repository_id: str) -> RegisteredResource:
    (found,) = [r for r in run.of_type(REPO) if r.inputs["repositoryId"] == repository_id]
    return found


@pytest.mark.parametrize("env", GCP_STACKS)
def test_every_gcp_stack_passes_the_pack(env: str, stack_runs: Any) -> None:
    assert validate_all(stack_runs(env).resources) == []


@pytest.mark.parametrize("env", GCP_STACKS)
def test_declared_gar_facts_never_make_the_catalog_error(env: str, stack_runs: Any) -> None:
    stack = declare(_declared(stack_runs(env).resources))
    assert stack is not None
    findings = judge(stack.facts, stack.context, catalog())
    assert not [f.message for f in findings if f.status is Status.ERROR]
    declared = [f for f in findings if f.rule in DECLARED_STATE_RULES]
    assert declared and all(f.status is not Status.MANUAL for f in declared)


def test_weakened_prod_repository_is_reported_by_rule_id_on_its_urn(stack_runs: Any) -> None:
    run = stack_runs("gcp-prod")
    repo = _repo(run, "payments")
    weak = with_inputs(
        repo, dockerConfig={"immutableTags": False}, kmsKeyName=None, cleanupPolicies=None,
        vulnerabilityScanningConfig={"enablementConfig": "DISABLED"},
    )  # fmt: skip
    (reader,) = [m for m in run.of_type(MEMBER) if m.parent_urn == repo.parent_urn and "reader" in m.inputs["role"]]
    open_reader = with_inputs(reader, member="allUsers")
    found = validate_all(replace_resources(run.resources, {repo.urn: weak, reader.urn: open_reader}))
    assert {v.policy for v in found} == {"rg-tag-002", "rg-enc-001", "rg-ret-001", "rg-scan-001", "rg-auth-001"}
    for violation in found:
        assert violation.urn == repo.urn and violation.level == "mandatory"
        assert violation.message.startswith(violation.policy.upper() + ": ")


def test_a_dev_opt_out_is_not_mandatory(stack_runs: Any) -> None:
    found = validate_all(stack_runs("gcp-dev").resources)
    assert [v for v in found if v.level == "mandatory"] == []


def test_no_gar_repository_means_nothing_to_declare() -> None:
    bucket = RegisteredResource("gcp:storage/bucket:Bucket", "b", "urn:pulumi:p::p::gcp:storage/bucket:Bucket::b", "",
                                {}, True)  # fmt: skip
    assert declare(_declared([bucket])) is None


def test_a_raw_repository_outside_the_component_is_reported_unmanaged(stack_runs: Any) -> None:
    repo = _repo(stack_runs("gcp-staging"), "apps")
    urn = f"urn:pulumi:gcp-staging::regguard::{REPO}::raw"
    raw = RegisteredResource(repo.type, "raw", urn, "", dict(repo.inputs), True)
    found = [v for v in validate_all([raw]) if v.policy == "regguard-unmanaged-gar"]
    assert found and "not created through a regguard component" in found[0].message and found[0].urn == urn
