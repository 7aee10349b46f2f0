"""What Docker Hub reports, judged by the shared rules: immutability by tag
patterns (RG-TAG-002), running pull totals (RG-MON-002), unused tokens
(RG-CRED-002) and restricted images (RG-SRC-001 on the registry side)."""

from __future__ import annotations

from datetime import timedelta

from audits.model import (
    CREDENTIALS,
    PULL_COUNTS,
    REPOSITORIES,
    SOURCE_RESTRICTION,
    TAG_IMMUTABILITY,
    CredentialFacts,
    Fact,
    ImmutabilitySetting,
    PullCountFacts,
    SourceRestrictionFacts,
    Status,
    TagImmutabilityFacts,
)
from tests.unit.test_rules_common import NOW, PROD, context, only, repo, run, run_engine, tag, view

HUB = "dockerhub"


def immutability(setting: ImmutabilitySetting, *tags: str):
    return view(
        HUB,
        **{
            REPOSITORIES: (repo("acme/app", *(tag(t) for t in tags)),),
            TAG_IMMUTABILITY: TagImmutabilityFacts({"acme/app": setting}),
        },
    )


def test_immutability_rules_covering_every_release_tag_pass() -> None:
    setting = ImmutabilitySetting(True, immutable_patterns=("v.*", "[0-9].*", "release-.*"))
    verdict = only(run("RG-TAG-002", PROD, immutability(setting, "v1.0.0", "2.0.1")))
    assert verdict.status is Status.PASS
    assert verdict.evidence["immutable_patterns"] == ["v.*", "[0-9].*", "release-.*"]


def test_immutability_rules_that_leave_release_tags_mutable_fail_naming_them() -> None:
    setting = ImmutabilitySetting(True, immutable_patterns=("v.*",))
    verdict = only(run("RG-TAG-002", PROD, immutability(setting, "release-7")))
    assert verdict.status is Status.FAIL
    assert "1.2.3" in verdict.message and "release-7" in verdict.evidence["mutable"]


def test_an_immutability_rule_that_is_no_regular_expression_protects_nothing() -> None:
    setting = ImmutabilitySetting(True, immutable_patterns=("v(", ".*-RELEASE"))
    assert only(run("RG-TAG-002", PROD, immutability(setting, "v1.0.0"))).status is Status.FAIL


def test_a_backtracking_rule_from_the_registry_is_not_evaluated() -> None:
    """`(a+)+$` against a long tag would take exponential time in Python's `re`."""
    setting = ImmutabilitySetting(True, immutable_patterns=("(v|[0-9]+)+$", "release-(a+)+$", "x" * 300))
    verdict = only(run("RG-TAG-002", PROD, immutability(setting, "release-" + "a" * 100 + "!")))
    assert verdict.status is Status.FAIL


def test_immutability_on_without_rules_makes_every_tag_immutable() -> None:
    assert only(run("RG-TAG-002", PROD, immutability(ImmutabilitySetting(True), "v1.0.0"))).status is Status.PASS


def totals(today: int):
    return view(HUB, **{PULL_COUNTS: PullCountFacts({"acme/app": {"2026-11-27": today}}, cumulative=True)})


def test_running_totals_become_daily_pulls_against_the_history_baseline() -> None:
    """History keeps the totals earlier audits saw; the day's pulls are the differences."""
    ctx = context("prod", pull_history={"acme/app": {"2026-11-24": 1000, "2026-11-25": 1010, "2026-11-26": 1020}})
    spike = only(run("RG-MON-002", ctx, totals(1520)))
    assert spike.status is Status.FAIL
    assert spike.evidence["pulls"] == 500 and spike.evidence["baseline_mean"] == 10.0
    assert only(run("RG-MON-002", ctx, totals(1035))).status is Status.PASS


def test_a_gap_between_audits_spreads_the_increase_over_the_days() -> None:
    ctx = context("prod", pull_history={"acme/app": {"2026-11-17": 0, "2026-11-24": 700}})
    verdict = only(run("RG-MON-002", ctx, totals(1000)))  # 100 a day, then 100 a day over three days
    assert verdict.status is Status.PASS and verdict.evidence["baseline_mean"] == 100.0


def test_a_first_total_has_no_baseline_and_a_reset_counter_is_no_day() -> None:
    assert only(run("RG-MON-002", PROD, totals(5000))).status is Status.NOT_APPLICABLE
    reset = context("prod", pull_history={"acme/app": {"2026-11-25": 10, "2026-11-26": 5000}})
    assert only(run("RG-MON-002", reset, totals(3))).status is Status.NOT_APPLICABLE


def hub_token(*, created_days: int, last_used_days: int | None) -> CredentialFacts:
    return CredentialFacts(
        id="organization access token 'ci'",
        kind="token",
        created_at=NOW - timedelta(days=created_days),
        expires_at=NOW + timedelta(days=10),
        last_used_at=NOW - timedelta(days=last_used_days) if last_used_days is not None else None,
        usage_tracked=True,
    )


def tokens(*items: CredentialFacts):
    return view(HUB, **{CREDENTIALS: items})


def test_a_token_unused_for_longer_than_the_maximum_is_to_be_revoked() -> None:
    stale = only(run("RG-CRED-002", PROD, tokens(hub_token(created_days=400, last_used_days=200))))
    assert stale.status is Status.FAIL and "unused for 200 days" in stale.message and "revoke" in stale.message
    never = only(run("RG-CRED-002", PROD, tokens(hub_token(created_days=120, last_used_days=None))))
    assert "unused for 120 days" in never.message


def test_a_recently_used_token_is_judged_by_age_only() -> None:
    used = tokens(hub_token(created_days=400, last_used_days=1))
    assert "400 days old" in only(run("RG-CRED-002", PROD, used)).message
    fresh = tokens(hub_token(created_days=20, last_used_days=1))
    assert only(run("RG-CRED-002", PROD, fresh)).status is Status.PASS


def restriction(enabled: bool) -> SourceRestrictionFacts:
    return SourceRestrictionFacts(enabled, allow_official_images=True, allow_verified_publishers=False)


def test_restricted_images_on_passes_off_fails_in_production() -> None:
    on = only(run("RG-SRC-001", PROD, view(HUB, **{SOURCE_RESTRICTION: restriction(True)})))
    assert on.status is Status.PASS and "official images" in on.message
    off = run_engine("RG-SRC-001", PROD, view(HUB, **{SOURCE_RESTRICTION: restriction(False)}))
    assert [f.status for f in off] == [Status.FAIL]
    assert off[0].remediation is not None and "/v2/orgs/<org>/settings" in off[0].remediation.cli


def test_restricted_images_outside_production_is_not_applicable_and_a_denied_read_is_manual() -> None:
    dev = only(run("RG-SRC-001", context("dev"), view(HUB, **{SOURCE_RESTRICTION: restriction(False)})))
    assert dev.status is Status.NOT_APPLICABLE
    denied = view(HUB, **{SOURCE_RESTRICTION: Fact.not_observable("grant the organization owner role to see this")})
    [finding] = run_engine("RG-SRC-001", PROD, denied)
    assert finding.status is Status.MANUAL and "owner" in finding.message
