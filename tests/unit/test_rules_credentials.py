"""RG-CRED-001..003: expiry, rotation, plaintext client credentials."""

from __future__ import annotations

from datetime import timedelta

from audits.model import CREDENTIALS, DOCKER_CONFIG, CredentialFacts, DockerClientConfigFacts, Fact, Status
from audits.rules.registry import Thresholds
from tests.unit.test_rules_common import (
    DEV,
    NOW,
    PROD,
    assert_evidence,
    context,
    mapping_of,
    only,
    run,
    run_engine,
    statuses,
    view,
)


def cred(
    id: str,
    kind: str = "robot",
    *,
    age_days: int | None = 10,
    lifetime_days: int | None = 30,
    can_push: bool = False,
) -> CredentialFacts:
    created = NOW - timedelta(days=age_days) if age_days is not None else None
    expires = (created or NOW) + timedelta(days=lifetime_days) if lifetime_days is not None else None
    return CredentialFacts(id=id, kind=kind, created_at=created, expires_at=expires, can_push=can_push)


def creds_view(*items: CredentialFacts, kind: str = "harbor"):
    return view(kind, **{CREDENTIALS: tuple(items)})


# RG-CRED-001 ----------------------------------------------------------------


def test_expiring_robot_passes_and_never_expiring_fails() -> None:
    verdicts = run(
        "RG-CRED-001",
        DEV,
        creds_view(cred("robot$ci"), cred("robot$forever", lifetime_days=None), cred("tok", "token")),
    )
    assert mapping_of(verdicts) == {"robot$ci": Status.PASS, "robot$forever": Status.FAIL, "tok": Status.PASS}
    assert_evidence(verdicts, "credential", "expires_at", "source")


def test_lifetime_longer_than_max_age_fails() -> None:
    verdict = only(run("RG-CRED-001", DEV, creds_view(cred("robot$long", lifetime_days=3650))))
    assert verdict.status is Status.FAIL
    assert "3650 days" in verdict.message


def test_a_token_of_unknown_age_is_judged_by_the_lifetime_it_has_left() -> None:
    """GitHub reports when a PAT expires, never when it was made: a token valid for
    another year is long-lived, one expiring next week is not."""
    year = cred("ghp-year", "token", age_days=None, lifetime_days=365)
    week = cred("ghp-week", "token", age_days=None, lifetime_days=7)
    verdicts = run("RG-CRED-001", DEV, creds_view(year, week, kind="ghcr"))
    assert mapping_of(verdicts) == {"ghp-year": Status.FAIL, "ghp-week": Status.PASS}
    assert "365 days" in next(v.message for v in verdicts if v.resource == "ghp-year")


def test_iam_user_key_with_push_fails_only_in_prod() -> None:
    key = cred("AKIAEXAMPLE", "iam-access-key", lifetime_days=None, can_push=True)
    assert only(run("RG-CRED-001", PROD, creds_view(key, kind="ecr"))).status is Status.FAIL
    dev = only(run("RG-CRED-001", DEV, creds_view(key, kind="ecr")))
    assert dev.status is Status.NOT_APPLICABLE


def test_iam_key_without_push_and_htpasswd_users_are_out_of_scope() -> None:
    items = (
        cred("AKIAREADONLY", "iam-access-key", lifetime_days=None),
        cred("alice", "htpasswd-user", age_days=None, lifetime_days=None),
    )
    assert statuses(run("RG-CRED-001", PROD, creds_view(*items))) == [Status.NOT_APPLICABLE]


def test_secret_values_never_appear_in_evidence() -> None:
    # The fact model has no secret field; the evidence carries ids and dates only.
    verdict = only(run("RG-CRED-001", DEV, creds_view(cred("robot$ci"))))
    assert set(verdict.evidence) >= {"credential", "credential_kind", "created_at", "expires_at"}
    assert not any("secret" in k or "password" in k for k in verdict.evidence)


# RG-CRED-002 ----------------------------------------------------------------


def test_old_credential_fails_young_passes() -> None:
    verdicts = run("RG-CRED-002", DEV, creds_view(cred("old", age_days=120), cred("new", age_days=5)))
    assert mapping_of(verdicts) == {"old": Status.FAIL, "new": Status.PASS}
    assert {v.resource: v.evidence["age_days"] for v in verdicts} == {"old": 120, "new": 5}


def test_max_age_comes_from_thresholds() -> None:
    strict = context("dev", thresholds=Thresholds(credential_max_age_days=7))
    assert only(run("RG-CRED-002", strict, creds_view(cred("k", age_days=10)))).status is Status.FAIL


def test_unknown_creation_time_needs_a_person() -> None:
    verdict = only(run("RG-CRED-002", DEV, creds_view(cred("alice", "htpasswd-user", age_days=None))))
    assert verdict.status is Status.MANUAL


def test_no_credentials_is_not_applicable() -> None:
    assert statuses(run("RG-CRED-002", DEV, creds_view())) == [Status.NOT_APPLICABLE]


def test_credentials_collection_error_is_error() -> None:
    facts = view("ecr", **{CREDENTIALS: Fact.error("AccessDenied on iam:ListAccessKeys", "iam:ListAccessKeys")})
    assert statuses(run_engine("RG-CRED-002", DEV, facts)) == [Status.ERROR]


# RG-CRED-003 ----------------------------------------------------------------


def docker_config(plaintext: tuple[str, ...], store: str | None = None, helpers: dict[str, str] | None = None):
    facts = DockerClientConfigFacts(
        path="/home/u/.docker/config.json",
        plaintext_registries=plaintext,
        creds_store=store,
        cred_helpers=helpers or {},
    )
    return view("docker-config", **{DOCKER_CONFIG: facts})


def test_no_inline_credentials_passes() -> None:
    verdict = only(run("RG-CRED-003", DEV, docker_config((), store="osxkeychain")))
    assert verdict.status is Status.PASS


def test_inline_credentials_without_helper_fail_per_registry() -> None:
    verdicts = run("RG-CRED-003", DEV, docker_config(("registry.test:5000", "ghcr.io")))
    assert statuses(verdicts) == [Status.FAIL, Status.FAIL]
    assert {v.evidence["registry"] for v in verdicts} == {"registry.test:5000", "ghcr.io"}


def test_inline_entry_covered_by_a_helper_passes_but_is_flagged() -> None:
    verdicts = run(
        "RG-CRED-003",
        DEV,
        docker_config(
            ("123.dkr.ecr.us-east-1.amazonaws.com", "ghcr.io"),
            helpers={"123.dkr.ecr.us-east-1.amazonaws.com": "ecr-login"},
        ),
    )
    status = {v.evidence["registry"]: v.status for v in verdicts}
    assert status == {"123.dkr.ecr.us-east-1.amazonaws.com": Status.PASS, "ghcr.io": Status.FAIL}
    assert verdicts[0].evidence["inline_entry_unused"] is True


def test_creds_store_covers_every_registry() -> None:
    assert statuses(run("RG-CRED-003", DEV, docker_config(("ghcr.io",), store="pass"))) == [Status.PASS]


def test_cred_rule_only_for_docker_config_kind() -> None:
    from audits.rules.registry import catalog

    assert catalog()["RG-CRED-003"].meta.kinds == frozenset({"docker-config"})
