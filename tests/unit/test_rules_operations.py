"""RG-RET-001, RG-MON-001/002, RG-ENC-001, RG-NET-001, RG-REP-001: the
registry-wide operational settings."""

from __future__ import annotations

from audits.model import (
    ENCRYPTION,
    LOGGING,
    NETWORK_EXPOSURE,
    PULL_COUNTS,
    REPLICATION,
    REPOSITORIES,
    RETENTION,
    EncryptionFacts,
    EncryptionSetting,
    Fact,
    LoggingFacts,
    NetworkExposureFacts,
    PullCountFacts,
    ReplicationFacts,
    RetentionFacts,
    Severity,
    Status,
)
from audits.rules.registry import Thresholds
from tests.unit.test_rules_common import (
    DEV,
    PROD,
    assert_evidence,
    context,
    mapping_of,
    only,
    repo,
    run,
    run_engine,
    statuses,
    view,
)

# RG-RET-001 -----------------------------------------------------------------


def retention(**kw: object):
    kw.setdefault("registry_wide", None)
    kw.setdefault("by_repository", {})
    return view("ecr", **{RETENTION: RetentionFacts(**kw)})  # type: ignore[arg-type]


def test_policy_per_repository_passes() -> None:
    verdict = only(run("RG-RET-001", DEV, retention(by_repository={"app": "keep last 100"})))
    assert verdict.status is Status.PASS and verdict.resource == "app"
    assert_evidence([verdict], "policy", "source")


def test_no_policy_fails() -> None:
    assert only(run("RG-RET-001", DEV, retention())).status is Status.FAIL


def test_one_finding_per_repository_pass_or_fail() -> None:
    """Each repository's policy is its own finding (a stable identity for history)."""
    gap = retention(by_repository={"a": "x"}, uncovered_repositories=("b",))
    verdicts = {v.resource: v for v in run("RG-RET-001", DEV, gap)}
    assert set(verdicts) == {"a", "b"}
    assert verdicts["a"].status is Status.PASS
    assert verdicts["b"].status is Status.FAIL and "no retention policy" in verdicts["b"].message
    dry = retention(by_repository={"a": "x"}, dry_run=True)
    assert "dry-run" in only(run("RG-RET-001", DEV, dry)).message


def test_registry_wide_gc_covers_everything() -> None:
    gc = retention(registry_wide="garbage-collect timer daily", uncovered_repositories=("b",))
    assert only(run("RG-RET-001", DEV, gc)).status is Status.PASS


def test_not_observable_retention_is_manual() -> None:
    facts = view(**{RETENTION: Fact.not_observable("GC timer lives on the VM")})
    assert statuses(run_engine("RG-RET-001", DEV, facts)) == [Status.MANUAL]


# RG-MON-001 -----------------------------------------------------------------


def test_logging_enabled_passes_disabled_fails() -> None:
    on = view("ecr", **{LOGGING: LoggingFacts(True, "arn:aws:cloudtrail:us-east-1:1:trail/all")})
    assert only(run("RG-MON-001", DEV, on)).status is Status.PASS
    off = view("ecr", **{LOGGING: LoggingFacts(False, None, "no trail is logging")})
    verdict = only(run("RG-MON-001", DEV, off))
    assert verdict.status is Status.FAIL
    assert "no trail" in verdict.message


# RG-MON-002 -----------------------------------------------------------------


def pulls(daily: dict[str, dict[str, int]]):
    return view("ecr", **{PULL_COUNTS: PullCountFacts(daily)})


def test_spike_against_history_fails() -> None:
    ctx = context("prod", pull_history={"app": {"2026-11-24": 10, "2026-11-25": 12, "2026-11-26": 8}})
    verdict = only(run("RG-MON-002", ctx, pulls({"app": {"2026-11-27": 80}})))
    assert verdict.status is Status.FAIL
    assert verdict.evidence["baseline_mean"] == 10.0
    assert verdict.evidence["baseline_days"] == 3


def test_normal_day_passes() -> None:
    ctx = context("prod", pull_history={"app": {"2026-11-26": 10}})
    assert only(run("RG-MON-002", ctx, pulls({"app": {"2026-11-27": 40}}))).status is Status.PASS


def test_earlier_days_in_the_fact_form_the_baseline() -> None:
    facts = pulls({"app": {"2026-11-25": 4, "2026-11-26": 6, "2026-11-27": 60}})
    assert only(run("RG-MON-002", DEV, facts)).status is Status.FAIL


def test_spike_factor_from_thresholds() -> None:
    ctx = context("prod", pull_history={"app": {"2026-11-26": 10}}, thresholds=Thresholds(pull_spike_factor=10))
    assert only(run("RG-MON-002", ctx, pulls({"app": {"2026-11-27": 80}}))).status is Status.PASS


def test_no_baseline_yet_is_not_applicable() -> None:
    verdict = only(run("RG-MON-002", DEV, pulls({"app": {"2026-11-27": 5000}})))
    assert verdict.status is Status.NOT_APPLICABLE
    assert "no baseline yet" in verdict.message


def test_quiet_repository_first_pulls_are_not_a_spike() -> None:
    ctx = context("prod", pull_history={"app": {"2026-11-26": 0}})
    assert only(run("RG-MON-002", ctx, pulls({"app": {"2026-11-27": 3}}))).status is Status.PASS


def test_one_verdict_per_repository() -> None:
    ctx = context("prod", pull_history={"a": {"2026-11-26": 10}, "b": {"2026-11-26": 10}})
    verdicts = run("RG-MON-002", ctx, pulls({"a": {"2026-11-27": 11}, "b": {"2026-11-27": 100}}))
    assert mapping_of(verdicts) == {"a": Status.PASS, "b": Status.FAIL}


# RG-ENC-001 -----------------------------------------------------------------

CMK = EncryptionSetting(True, "arn:aws:kms:us-east-1:1:key/abc", "KMS")
AES = EncryptionSetting(False, None, "AES256")


def test_customer_key_per_repository() -> None:
    facts = view("ecr", **{ENCRYPTION: EncryptionFacts({"a": CMK, "b": AES})})
    ctx = context("dev", frameworks=("soc2",))
    verdicts = run("RG-ENC-001", ctx, facts)
    assert mapping_of(verdicts) == {"a": Status.PASS, "b": Status.FAIL}
    assert verdicts[1].severity is None
    assert_evidence(verdicts, "customer_managed", "detail", "source")


def test_customer_key_outside_soc2_fedramp_is_low_severity() -> None:
    facts = view("ecr", **{ENCRYPTION: EncryptionFacts({"b": AES})})
    verdict = only(run("RG-ENC-001", context("dev", frameworks=("nist-800-53",)), facts))
    assert verdict.status is Status.FAIL
    assert verdict.severity is Severity.LOW


def test_registry_wide_storage_encryption_for_self_hosted() -> None:
    facts = view(**{ENCRYPTION: EncryptionFacts({}, registry_wide=EncryptionSetting(True, "kms", "SSE-KMS bucket"))})
    verdict = only(run("RG-ENC-001", context("prod", frameworks=("fedramp-moderate",)), facts))
    assert (verdict.status, verdict.resource) == (Status.PASS, "t1")


# RG-NET-001 -----------------------------------------------------------------


def test_public_exposure_fails_private_passes() -> None:
    public = view("acr", **{NETWORK_EXPOSURE: NetworkExposureFacts(True, "publicNetworkAccess Enabled")})
    assert only(run("RG-NET-001", DEV, public)).status is Status.FAIL
    private = view("acr", **{NETWORK_EXPOSURE: NetworkExposureFacts(False, "private endpoint only")})
    assert only(run("RG-NET-001", DEV, private)).status is Status.PASS


# RG-REP-001 -----------------------------------------------------------------


def test_replication_required_in_prod() -> None:
    on = view("ecr", **{REPLICATION: ReplicationFacts(True, ("us-west-2",))})
    assert only(run("RG-REP-001", PROD, on)).status is Status.PASS
    off = view("ecr", **{REPLICATION: ReplicationFacts(False)})
    assert only(run("RG-REP-001", PROD, off)).status is Status.FAIL


def test_zone_redundancy_counts_as_replication() -> None:
    zr = view("acr", **{REPLICATION: ReplicationFacts(True, (), "zone redundancy")})
    assert "zone redundancy" in only(run("RG-REP-001", PROD, zr)).message


def test_replication_not_applicable_in_dev_without_needing_the_fact() -> None:
    assert only(run("RG-REP-001", DEV, view("ecr"))).status is Status.NOT_APPLICABLE


def test_production_patterns_make_replication_required() -> None:
    facts = view("ecr", **{REPLICATION: ReplicationFacts(False), REPOSITORIES: (repo("prod/app"),)})
    ctx = context("dev", production_patterns=("prod/*",))
    assert only(run("RG-REP-001", ctx, facts)).status is Status.FAIL
