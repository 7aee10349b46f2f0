"""The policy pack on declared state: every stack's components pass, weakened
resources are reported by rule id on the right resource and at the right
enforcement level, preview unknowns stay quiet."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pulumi_policy import EnforcementLevel
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from audits.engine import judge
from audits.model import ENCRYPTION, RETENTION, TAG_IMMUTABILITY, FactState, Status
from audits.rules.registry import catalog
from policy.declared_distribution import DECLARED_STATE_RULES as DISTRIBUTION_RULES
from policy.declared_ecr import (
    DECLARED_STATE_RULES,
    DeclaredResource,
    declare,
)
from policy.policies import UNMANAGED_POLICY, build_policies, declared_state_rules, declarers
from tests.policy.conftest import ENVS, STACKS, Violation, replace_resources, validate_all, with_inputs
from tests.pulumi.mocks import ProgramRun, RegisteredResource, run_program, stack_config

REPO = "aws:ecr/repository:Repository"
LIFECYCLE = "aws:ecr/lifecyclePolicy:LifecyclePolicy"
REPO_POLICY = "aws:ecr/repositoryPolicy:RepositoryPolicy"
REPLICATION = "aws:ecr/replicationConfiguration:ReplicationConfiguration"
OPEN_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Open",
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            }
        ],
    }
)


def _declared(run: ProgramRun | list[RegisteredResource]) -> list[DeclaredResource]:
    resources = run.resources if isinstance(run, ProgramRun) else run
    return [DeclaredResource(r.type, r.name, r.urn, r.parent_urn, r.inputs) for r in resources]


def _child(run: ProgramRun, repo: RegisteredResource, type_token: str) -> RegisteredResource:
    (found,) = [r for r in run.of_type(type_token) if r.parent_urn == repo.parent_urn]
    return found


def _repo(run: ProgramRun, name: str) -> RegisteredResource:
    (found,) = [r for r in run.of_type(REPO) if r.inputs["name"] == name]
    return found


def _weakened(run: ProgramRun, name: str) -> tuple[list[RegisteredResource], RegisteredResource]:
    """`name` made MUTABLE, AES256, without lifecycle policy, with a `*`
    repository policy; its tags (and so its environment) unchanged."""
    repo = _repo(run, name)
    weak = with_inputs(repo, imageTagMutability="MUTABLE", encryptionConfigurations=[{"encryptionType": "AES256"}])
    edits: dict[str, RegisteredResource | None] = {
        repo.urn: weak,
        _child(run, repo, LIFECYCLE).urn: None,
        _child(run, repo, REPO_POLICY).urn: with_inputs(_child(run, repo, REPO_POLICY), policy=OPEN_POLICY),
    }
    return replace_resources(run.resources, edits), repo


def _by_policy(found: list[Violation]) -> dict[str, list[Violation]]:
    out: dict[str, list[Violation]] = {}
    for v in found:
        out.setdefault(v.policy, []).append(v)
    return out


# ------------------------------------------------------------------ the pack itself


def test_two_policies_per_declared_rule_named_after_it() -> None:
    policies = build_policies()
    rules = catalog()
    by_name = {p.name: p for p in policies}
    every_declared = declared_state_rules()  # each kind's declarer adds its rules and one unmanaged check
    assert set(DECLARED_STATE_RULES) <= set(every_declared) and set(DISTRIBUTION_RULES) <= set(every_declared)
    assert len(by_name) == len(policies) == 2 * len(every_declared) + len(declarers())
    for rule_id in every_declared:
        mandatory, advisory = by_name[rule_id.lower()], by_name[f"{rule_id.lower()}-advisory"]
        assert mandatory.enforcement_level is EnforcementLevel.MANDATORY
        assert advisory.enforcement_level is EnforcementLevel.ADVISORY
        assert mandatory.description == advisory.description == rules[rule_id].meta.title
    assert by_name[UNMANAGED_POLICY].enforcement_level is EnforcementLevel.ADVISORY



def test_no_ecr_repository_means_nothing_to_report() -> None:
    bucket = RegisteredResource(
        "aws:s3/bucket:Bucket", "logs", "urn:pulumi:prod::p::aws:s3/bucket:Bucket::logs", "", {}, True
    )
    assert declare(_declared([bucket])) is None
    assert validate_all([bucket]) == []


# ------------------------------------------------------------------ (b) our stacks pass


@pytest.mark.parametrize("env", ENVS)
def test_every_stack_passes_the_pack(env: str, stack_runs: Any) -> None:
    assert validate_all(stack_runs(env).resources) == []


@pytest.mark.parametrize("env", ENVS)
def test_declared_facts_never_make_the_catalog_error(env: str, stack_runs: Any) -> None:
    """Even rules outside the declared-state set only become manual /
    not_applicable on declared facts: nothing a preview would call an error."""
    stack = declare(_declared(stack_runs(env)))
    assert stack is not None
    findings = judge(stack.facts, stack.context, catalog())
    assert not [f for f in findings if f.status is Status.ERROR]
    declared = [f for f in findings if f.rule in DECLARED_STATE_RULES]
    assert declared and all(f.status is not Status.MANUAL for f in declared)


# ------------------------------------------------------------------ (c) weakened repository


def test_weakened_prod_repository_is_reported_by_rule_id_on_its_urn(stack_runs: Any) -> None:
    resources, repo = _weakened(stack_runs("prod"), "payments/api")
    found = _by_policy(validate_all(resources))
    assert set(found) == {"rg-tag-002", "rg-ret-001", "rg-auth-001", "rg-enc-001"}
    for policy, violations in found.items():
        (violation,) = violations
        assert violation.level == "mandatory"
        assert violation.urn == repo.urn
        assert violation.message.startswith(policy.upper() + ": ")
    assert "tags are mutable" in found["rg-tag-002"][0].message
    assert "(payments/api)" in found["rg-auth-001"][0].message
    assert "AES256" in found["rg-enc-001"][0].message
    assert "payments/api" in found["rg-ret-001"][0].message


def test_release_tag_exclusion_fails_and_harmless_exclusion_passes(stack_runs: Any) -> None:
    run = stack_runs("prod")
    repo = _repo(run, "payments/api")

    def with_exclusions(*filters: str) -> list[Violation]:
        changed = with_inputs(
            repo,
            imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
            imageTagMutabilityExclusionFilters=[{"filter": f, "filterType": "WILDCARD"} for f in filters],
        )
        return validate_all(replace_resources(run.resources, {repo.urn: changed}))

    assert with_exclusions("dev-*", "sha-*") == []
    (violation,) = with_exclusions("v*")
    assert violation.policy == "rg-tag-002" and "release tags mutable" in violation.message


def test_scanning_gap_and_missing_replication_land_on_the_registry_settings(stack_runs: Any) -> None:
    run = stack_runs("prod")
    scanning = run.one("aws:ecr/registryScanningConfiguration:RegistryScanningConfiguration")
    narrowed = with_inputs(
        scanning,
        rules=[
            {
                "scanFrequency": "CONTINUOUS_SCAN",
                "repositoryFilters": [{"filter": "platform/*", "filterType": "WILDCARD"}],
            }
        ],
        scanType="ENHANCED",
    )
    repos = {r.inputs["name"]: r.urn for r in run.of_type(REPO)}
    found = _by_policy(
        validate_all(replace_resources(run.resources, {scanning.urn: narrowed, run.one(REPLICATION).urn: None}))
    )
    assert set(found) == {"rg-scan-001", "rg-rep-001"}
    assert {v.urn for v in found["rg-scan-001"]} == {repos["payments/api"], repos["payments/worker"]}
    (rep,) = found["rg-rep-001"]
    assert rep.urn == run.one("regguard:ecr:EcrRegistry").urn and "not replicated" in rep.message


# ------------------------------------------------------------------ (d) environment -> enforcement


def test_weakened_dev_repository_is_advisory_only(stack_runs: Any) -> None:
    resources, repo = _weakened(stack_runs("dev"), "payments/api")
    found = _by_policy(validate_all(resources))
    # dev's AWS-owned encryption is its profile, opted out explicitly in the tags: not reported.
    assert set(found) == {"rg-tag-002-advisory", "rg-ret-001-advisory", "rg-auth-001-advisory"}
    assert all(v.level == "advisory" and v.urn == repo.urn for vs in found.values() for v in vs)


def test_staging_without_customer_key_and_without_opt_out_is_advisory(stack_runs: Any) -> None:
    run = stack_runs("staging")
    repo = _repo(run, "payments/worker")
    weak = with_inputs(repo, encryptionConfigurations=[{"encryptionType": "KMS"}])  # the AWS-managed aws/ecr key
    (violation,) = validate_all(replace_resources(run.resources, {repo.urn: weak}))
    assert (violation.policy, violation.urn) == ("rg-enc-001-advisory", repo.urn)
    assert "aws/ecr" in violation.message


def test_prod_opt_out_is_advisory_not_mandatory(program: Any) -> None:
    """`replicate_to: []` is prod's explicit, tagged opt-out: shown, never blocking."""
    config = stack_config(STACKS / "Pulumi.prod.yaml")
    registries = json.loads(config["regguard:registries"])
    registries[0]["baseline"]["replicate_to"] = []
    config["regguard:registries"] = json.dumps(registries)
    run = run_program(program.main, config, stack="prod")
    (violation,) = validate_all(run.resources)
    assert (violation.policy, violation.level) == ("rg-rep-001-advisory", "advisory")
    assert violation.urn == run.one("regguard:ecr:EcrRegistry").urn


def test_untagged_raw_repository_inherits_the_stack_environment_and_is_flagged(stack_runs: Any) -> None:
    run = stack_runs("prod")
    stack_urn = run.one("regguard:ecr:EcrRegistry").parent_urn
    raw = RegisteredResource(
        REPO,
        "handmade",
        "urn:pulumi:prod::regguard::aws:ecr/repository:Repository::handmade",
        stack_urn,
        {"name": "handmade", "imageTagMutability": "IMMUTABLE"},
        True,
    )
    found = _by_policy(validate_all([*run.resources, raw]))
    assert {v.urn for vs in found.values() for v in vs} == {raw.urn}
    assert set(found) == {UNMANAGED_POLICY, "rg-ret-001", "rg-enc-001"}  # mandatory: the stack is prod
    assert "not created through a regguard component" in found[UNMANAGED_POLICY][0].message


# ------------------------------------------------------------------ preview: unknown values


def test_preview_unknowns_do_not_produce_violations(stack_runs: Any) -> None:
    """At preview the key ARN, the lifecycle's `repository` and a policy
    document may be unknown: lifecycle is linked by component, the declared
    key is credited, the unknown policy is judged at `pulumi up`."""
    run = stack_runs("prod")
    edits: dict[str, RegisteredResource | None] = {}
    for repo in run.of_type(REPO):
        edits[repo.urn] = with_inputs(
            repo, encryptionConfigurations=[{"encryptionType": "KMS", "kmsKey": UNKNOWN_STRING_VALUE}]
        )
        lifecycle = _child(run, repo, LIFECYCLE)
        edits[lifecycle.urn] = with_inputs(lifecycle, repository=UNKNOWN_STRING_VALUE)
        policy = _child(run, repo, REPO_POLICY)
        edits[policy.urn] = with_inputs(policy, policy=UNKNOWN_STRING_VALUE, repository=UNKNOWN_STRING_VALUE)
    resources = replace_resources(run.resources, edits)
    assert validate_all(resources) == []
    stack = declare(_declared(resources))
    assert stack is not None
    assert set(stack.facts.facts[RETENTION].value.by_repository) == {r.inputs["name"] for r in run.of_type(REPO)}


def test_unknown_mutability_is_manual_not_an_error(stack_runs: Any) -> None:
    run = stack_runs("prod")
    repo = _repo(run, "payments/api")
    resources = replace_resources(run.resources, {repo.urn: with_inputs(repo, imageTagMutability=UNKNOWN_STRING_VALUE)})
    stack = declare(_declared(resources))
    assert stack is not None and stack.facts.facts[TAG_IMMUTABILITY].state is FactState.NOT_OBSERVABLE
    (finding,) = judge(stack.facts, stack.context, {"RG-TAG-002": catalog()["RG-TAG-002"]})
    assert finding.status is Status.MANUAL
    assert validate_all(resources) == []


def test_unknown_key_without_a_declared_key_is_not_credited(stack_runs: Any) -> None:
    run = stack_runs("prod")
    repo = _repo(run, "payments/api")
    keys = {k.urn: None for k in run.of_type("aws:kms/key:Key")}
    weak = with_inputs(repo, encryptionConfigurations=[{"encryptionType": "KMS", "kmsKey": UNKNOWN_STRING_VALUE}])
    stack = declare(_declared(replace_resources(run.resources, {repo.urn: weak, **keys})))
    assert stack is not None
    assert stack.facts.facts[ENCRYPTION].state is FactState.NOT_OBSERVABLE
