"""The ECR collector against a real moto server over HTTP, seeded with the
sandbox's ECR estate (compliant and non-compliant repositories, real cosign
signatures, IAM push keys, an idle CloudTrail trail). Every assertion names
something the seed created."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from audits.collectors import ecr
from audits.collectors.base import CollectOptions
from audits.engine import judge
from audits.model import (
    ADMIN_ACCOUNT,
    CONTENT_TRUST,
    CREDENTIALS,
    ENCRYPTION,
    LOGGING,
    PULL_COUNTS,
    REPLICATION,
    REPOSITORIES,
    RETENTION,
    SCANNING,
    TAG_IMMUTABILITY,
    FactState,
    Status,
    TargetFacts,
)
from audits.rules.registry import RuleContext, catalog
from audits.targets import EcrTarget
from sandbox.ecr_estate import ESTATE_KEY, EcrEstate, cosign_tag, start_ecr_estate
from sandbox.process import is_alive, terminate_pid
from sandbox.signing import generate_key_pair

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EcrEstate]:
    running = start_ecr_estate(tmp_path_factory.mktemp("ecr-estate"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def facts(estate: EcrEstate) -> TargetFacts:
    saved = {k: os.environ.get(k) for k in estate.env}
    os.environ.update(estate.env)
    try:
        trusted = tuple(str(k) for k in estate.trusted_keys)
        return ecr.collect(EcrTarget(**estate.targets[0]), CollectOptions(concurrency=4, trusted_keys=trusted))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_every_fact_collected_without_errors(facts: TargetFacts) -> None:
    assert set(facts.facts) == set(ecr.ALL_FACTS)
    assert [n for n, f in facts.facts.items() if f.state is FactState.ERROR] == []
    assert facts.facts[ADMIN_ACCOUNT].value.shared_admin_enabled is False
    assert facts.facts[CONTENT_TRUST].state is FactState.UNSUPPORTED
    assert facts.facts[PULL_COUNTS].state is FactState.UNSUPPORTED


def test_request_budget(facts: TargetFacts) -> None:
    # DescribeRegistry + DescribeRepositories + GetRegistryScanningConfiguration
    # + 5 repositories x (DescribeImages, GetLifecyclePolicy, GetRepositoryPolicy)
    # + DescribeTrails + GetTrailStatus + GetAccountAuthorizationDetails
    # + ListAccessKeys for the two users who can push
    # + one BatchGetImage for each repository holding signatures (prod/api, prod/web)
    assert facts.requests == 3 + 5 * 3 + 2 + 1 + 2 + 2


def test_repositories_tags_and_signatures(facts: TargetFacts, estate: EcrEstate) -> None:
    repos = {r.name: r for r in facts.facts[REPOSITORIES].value}
    assert sorted(repos) == ["legacy/app", "prod/api", "prod/web", "public/base", "team/tools"]
    digests = estate.seeded["repositories"]

    api = repos["prod/api"]
    assert [t.name for t in api.tags] == ["v1.0.0", "v1.1.0"]  # .sig tags are not release tags
    for tag in api.tags:
        assert tag.digest == digests["prod/api"][tag.name]
        assert tag.signatures is not None
        assert [s.reference for s in tag.signatures] == [cosign_tag(digests["prod/api"][tag.name])]
        assert [(s.verified, s.verified_by) for s in tag.signatures] == [(True, str(estate.keys.public_key))]
        assert tag.scan is not None and tag.scan.status == "none"  # moto reports no scan status
        assert tag.pushed_at is not None and tag.pushed_at.tzinfo is not None

    web = {t.name: t for t in repos["prod/web"].tags}
    assert web["v2.0.0"].signatures and not web["dev-42"].signatures

    legacy = repos["legacy/app"]
    assert [t.name for t in legacy.tags] == ["0.9", "latest"]
    assert legacy.untagged_digests == 1


def test_signing_rules_on_the_seeded_estate(facts: TargetFacts, estate: EcrEstate) -> None:
    ctx = RuleContext(
        environment="prod", trusted_keys=tuple(str(k) for k in estate.trusted_keys), target_name=facts.target
    )
    findings = [f for f in judge(facts, ctx, catalog()) if f.rule in ("RG-SIGN-001", "RG-SIGN-002")]
    status = {(f.rule, f.resource): f.status for f in findings}
    for signed in ("prod/api:v1.0.0", "prod/api:v1.1.0", "prod/web:v2.0.0"):
        assert status["RG-SIGN-001", signed] is Status.PASS
        assert status["RG-SIGN-002", signed] is Status.PASS
    for unsigned in ("prod/web:dev-42", "legacy/app:latest", "team/tools:release-1"):
        assert status["RG-SIGN-001", unsigned] is Status.FAIL
    assert not [f for f in findings if f.status is Status.ERROR]


def test_anonymous_pull_from_repository_policies(facts: TargetFacts) -> None:
    repos = {r.name: r for r in facts.facts[REPOSITORIES].value}
    assert repos["legacy/app"].anonymous_pull is True
    assert repos["legacy/app"].declared_public is False
    assert repos["public/base"].anonymous_pull is True
    assert repos["public/base"].declared_public is True
    assert repos["prod/web"].anonymous_pull is False  # `*` limited to the organization
    assert repos["prod/api"].anonymous_pull is False  # account principal only
    assert repos["team/tools"].anonymous_pull is False  # no policy at all


def test_mutability_encryption_retention(facts: TargetFacts, estate: EcrEstate) -> None:
    mut = facts.facts[TAG_IMMUTABILITY].value.by_repository
    assert {n: (s.immutable, s.detail) for n, s in mut.items()} == {
        "prod/api": (True, "IMMUTABLE"),
        "prod/web": (True, "IMMUTABLE_WITH_EXCLUSION"),
        "legacy/app": (False, "MUTABLE"),
        "team/tools": (False, "MUTABLE_WITH_EXCLUSION"),
        "public/base": (True, "IMMUTABLE"),
    }
    assert mut["prod/web"].exclusion_filters == ("dev-*",)
    assert mut["team/tools"].exclusion_filters == ("release-*",)

    enc = facts.facts[ENCRYPTION].value.by_repository
    assert {n for n, s in enc.items() if s.customer_managed} == {"prod/api", "prod/web"}
    assert enc["prod/api"].key_id == estate.seeded["kms_key"]

    retention = facts.facts[RETENTION].value
    assert retention.uncovered_repositories == ("legacy/app", "team/tools")
    assert retention.by_repository["prod/api"].startswith("1: expire untagged images pushed more than 14 days")


def test_scanning_replication_logging(facts: TargetFacts) -> None:
    scanning = facts.facts[SCANNING].value
    assert scanning.enabled is True and scanning.mode == "scan_on_push"
    assert scanning.uncovered_repositories == ("legacy/app", "public/base", "team/tools")

    replication = facts.facts[REPLICATION].value
    assert replication.enabled is True
    assert replication.destinations == ("123456789012/us-west-2",)

    logging = facts.facts[LOGGING].value
    assert logging.enabled is False
    assert "org-trail: not logging" in logging.detail


def test_push_capable_access_keys(facts: TargetFacts, estate: EcrEstate) -> None:
    creds = facts.facts[CREDENTIALS].value
    users = estate.seeded["users"]
    assert sorted(c.id for c in creds) == sorted(users["ci-pusher"] + users["release-bot"])
    assert all(c.kind == "iam-access-key" and c.can_push and c.created_at for c in creds)
    details = " ".join(c.detail for c in creds)
    assert "ci-pusher" in details and "group release-bots" in details and "auditor" not in details
    assert all("…" in c.id and len(c.id) == 9 for c in creds)


def test_no_secret_in_any_fact(facts: TargetFacts, estate: EcrEstate) -> None:
    text = repr(facts)
    assert estate.env["AWS_SECRET_ACCESS_KEY"] not in text
    assert re.search(r"A[KS]IA[A-Z0-9]{16}", text) is None  # key ids only ever masked


def test_detached_estate_outlives_its_handle_and_stops_by_pid(tmp_path: Path) -> None:
    shared = generate_key_pair(tmp_path / ESTATE_KEY.parent, ESTATE_KEY.stem)  # what start_estate writes
    detached = start_ecr_estate(tmp_path, detach=True)
    try:
        assert detached.keys == shared  # signs with the estate's release key: one trusted key for all
        [pid] = detached.pids
        assert is_alive(pid)
        assert os.getpgid(pid) == pid  # its own session: survives `sandbox up` exiting
        assert detached.targets[0]["endpoint_url"] == detached.server.url
    finally:
        detached.stop()
    assert not is_alive(pid)
    assert terminate_pid(pid) is False  # already gone: nothing else is signalled
