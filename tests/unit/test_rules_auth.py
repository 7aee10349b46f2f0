"""RG-AUTH-001..003: anonymous access, Basic over HTTP, shared admin accounts."""

from __future__ import annotations

from audits.model import (
    ADMIN_ACCOUNT,
    ANONYMOUS_ACCESS,
    PLAIN_HTTP,
    REPOSITORIES,
    AdminAccountFacts,
    AnonymousAccessFacts,
    AuthChallenge,
    Fact,
    PlainHttpFacts,
    Severity,
    Status,
)
from tests.unit.test_rules_common import (
    DEV,
    PROD,
    assert_evidence,
    context,
    mapping_of,
    only,
    repo,
    repos,
    run,
    run_engine,
    statuses,
    view,
)

CLOSED = AnonymousAccessFacts(v2_status=401, catalog_status=401, challenge=AuthChallenge("bearer", "https://auth"))


def auth_view(anonymous: object = CLOSED, *items: object, kind: str = "distribution"):
    return view(kind, **{ANONYMOUS_ACCESS: anonymous, REPOSITORIES: tuple(items)})


# RG-AUTH-001 ----------------------------------------------------------------


def test_closed_endpoint_passes_and_repos_without_setting_add_nothing() -> None:
    verdicts = run("RG-AUTH-001", PROD, auth_view(CLOSED, repo("app")))
    assert statuses(verdicts) == [Status.PASS]
    assert_evidence(verdicts, "v2_status", "catalog_status", "source")


def test_open_catalog_fails() -> None:
    anonymous = AnonymousAccessFacts(v2_status=401, catalog_status=200, challenge=None)
    verdict = only(run("RG-AUTH-001", DEV, auth_view(anonymous)))
    assert verdict.status is Status.FAIL
    assert "/v2/_catalog" in verdict.message


def test_open_v2_fails() -> None:
    anonymous = AnonymousAccessFacts(v2_status=200, catalog_status=None, challenge=AuthChallenge(""))
    assert only(run("RG-AUTH-001", DEV, auth_view(anonymous))).status is Status.FAIL


def test_no_answer_is_error() -> None:
    anonymous = AnonymousAccessFacts(v2_status=None, catalog_status=None, challenge=None)
    assert only(run("RG-AUTH-001", DEV, auth_view(anonymous))).status is Status.ERROR


def test_private_repository_pullable_anonymously_fails_unless_declared_public() -> None:
    verdicts = run(
        "RG-AUTH-001",
        DEV,
        auth_view(
            CLOSED,
            repo("team/private", anonymous_pull=True),
            repo("oss/tool", anonymous_pull=True, declared_public=True),
            repo("team/locked", anonymous_pull=False),
        ),
    )
    assert mapping_of(verdicts) == {
        "t1": Status.PASS,
        "team/private": Status.FAIL,
        "oss/tool": Status.PASS,
        "team/locked": Status.PASS,
    }


def test_repository_pulled_by_the_probe_counts_as_anonymous() -> None:
    anonymous = AnonymousAccessFacts(
        v2_status=401, catalog_status=401, challenge=None, anonymously_pullable=("team/app",)
    )
    verdicts = run("RG-AUTH-001", DEV, auth_view(anonymous, repo("team/app")))
    assert mapping_of(verdicts)["team/app"] is Status.FAIL


def test_repository_error_is_error() -> None:
    verdicts = run("RG-AUTH-001", DEV, auth_view(CLOSED, repo("team/app", error="timeout")))
    assert mapping_of(verdicts)["team/app"] is Status.ERROR


def test_managed_endpoint_still_judges_repository_policies() -> None:
    facts = auth_view(Fact.managed("ECR endpoint is AWS's"), repo("r", anonymous_pull=True), kind="ecr")
    assert mapping_of(run("RG-AUTH-001", DEV, facts)) == {"r": Status.FAIL}


def test_open_endpoint_is_reported_even_when_repositories_fail() -> None:
    anonymous = AnonymousAccessFacts(v2_status=200, catalog_status=200, challenge=None)
    facts = view(**{ANONYMOUS_ACCESS: anonymous, REPOSITORIES: Fact.error("invalid JSON", "GET /v2/_catalog")})
    verdicts = run("RG-AUTH-001", DEV, facts)
    assert statuses(verdicts) == [Status.FAIL, Status.ERROR]
    assert "invalid JSON" in verdicts[1].message


def test_missing_repositories_on_managed_endpoint_is_error() -> None:
    facts = view("ecr", **{ANONYMOUS_ACCESS: Fact.managed("AWS"), REPOSITORIES: Fact.error("denied", "ecr")})
    assert statuses(run_engine("RG-AUTH-001", DEV, facts)) == [Status.ERROR]


def test_missing_anonymous_probe_is_error_through_the_engine() -> None:
    facts = view(**{ANONYMOUS_ACCESS: Fact.error("refused", "GET /v2/"), REPOSITORIES: ()})
    assert statuses(run_engine("RG-AUTH-001", DEV, facts)) == [Status.ERROR]


# RG-AUTH-002 ----------------------------------------------------------------


def plain(*schemes: str) -> PlainHttpFacts:
    return PlainHttpFacts(
        url="http://registry.test:5000/v2/",
        serves_api=bool(schemes),
        status=401 if schemes else 400,
        redirects_to_https=False,
        challenge_schemes=schemes,
    )


def test_basic_challenge_over_http_fails() -> None:
    verdict = only(run("RG-AUTH-002", DEV, view(**{PLAIN_HTTP: plain("basic")})))
    assert verdict.status is Status.FAIL
    assert verdict.evidence["challenge_schemes"] == ["basic"]


def test_bearer_only_or_no_challenge_passes() -> None:
    assert only(run("RG-AUTH-002", DEV, view(**{PLAIN_HTTP: plain("bearer")}))).status is Status.PASS
    assert only(run("RG-AUTH-002", DEV, view(**{PLAIN_HTTP: plain()}))).status is Status.PASS


def test_refused_plain_http_passes_only_if_the_registry_answered_elsewhere() -> None:
    refused = PlainHttpFacts("http://registry.test:5000/v2/", serves_api=False, status=None, redirects_to_https=False)
    alive = view(**{PLAIN_HTTP: refused, ANONYMOUS_ACCESS: CLOSED})
    assert only(run("RG-AUTH-002", DEV, alive)).status is Status.PASS
    dead = view(**{PLAIN_HTTP: refused, ANONYMOUS_ACCESS: Fact.error("connection refused", "GET /v2/")})
    assert statuses(run_engine("RG-AUTH-002", DEV, dead)) == [Status.ERROR]


# RG-AUTH-003 ----------------------------------------------------------------


def test_no_shared_admin_passes() -> None:
    verdict = only(run("RG-AUTH-003", PROD, view("acr", **{ADMIN_ACCOUNT: AdminAccountFacts(False)})))
    assert verdict.status is Status.PASS


def test_acr_admin_user_fails_in_any_environment() -> None:
    facts = view("acr", **{ADMIN_ACCOUNT: AdminAccountFacts(True, detail="adminUserEnabled")})
    assert only(run("RG-AUTH-003", DEV, facts)).status is Status.FAIL


def test_default_admin_password_is_critical() -> None:
    facts = view("harbor", **{ADMIN_ACCOUNT: AdminAccountFacts(True, default_password=True)})
    verdict = only(run("RG-AUTH-003", DEV, facts))
    assert verdict.status is Status.FAIL
    assert verdict.severity is Severity.CRITICAL


def test_single_htpasswd_account_only_fails_in_prod() -> None:
    facts = view(**{ADMIN_ACCOUNT: AdminAccountFacts(True, detail="single htpasswd user", mechanism="htpasswd")})
    assert only(run("RG-AUTH-003", DEV, facts)).status is Status.NOT_APPLICABLE
    assert only(run("RG-AUTH-003", PROD, facts)).status is Status.FAIL


def test_production_pattern_makes_htpasswd_account_prod() -> None:
    facts = view(
        **{
            ADMIN_ACCOUNT: AdminAccountFacts(True, detail="single htpasswd user", mechanism="htpasswd"),
            REPOSITORIES: repos(repo("prod/app")),
        }
    )
    ctx = context("dev", production_patterns=("prod/*",))
    assert only(run("RG-AUTH-003", ctx, facts)).status is Status.FAIL


def test_shared_admin_user_fails_outside_prod_too() -> None:
    """Only the htpasswd mechanism is prod-scoped; a built-in admin user fails everywhere,
    whatever the kind is called."""
    facts = view(**{ADMIN_ACCOUNT: AdminAccountFacts(True, detail="adminUserEnabled")})
    assert only(run("RG-AUTH-003", DEV, facts)).status is Status.FAIL


def test_not_observable_admin_account_is_manual() -> None:
    facts = view(**{ADMIN_ACCOUNT: Fact.not_observable("htpasswd file not readable")})
    assert statuses(run_engine("RG-AUTH-003", PROD, facts)) == [Status.MANUAL]


def test_server_error_over_plain_http_is_inconclusive() -> None:
    broken = PlainHttpFacts("http://registry.test/v2/", serves_api=False, status=503, redirects_to_https=False)
    assert only(run("RG-AUTH-002", DEV, view(**{PLAIN_HTTP: broken}))).status is Status.ERROR


def test_server_error_on_v2_is_not_a_refusal() -> None:
    """Regression: a 503 on /v2/ used to pass RG-AUTH-001 as 'refused'."""
    anonymous = AnonymousAccessFacts(v2_status=503, catalog_status=503, challenge=None)
    verdict = only(run("RG-AUTH-001", DEV, auth_view(anonymous)))
    assert verdict.status is Status.ERROR
    assert "503" in verdict.message
