"""RG-SCAN-001..002: scanning configuration and the newest image's results."""

from __future__ import annotations

from audits.model import REPOSITORIES, SCANNING, Fact, RepositoryFacts, ScanningFacts, Status, VulnerabilityScan
from audits.rules.registry import Thresholds
from tests.unit.test_rules_common import (
    DEV,
    PROD,
    SIG_TAG,
    assert_evidence,
    context,
    only,
    repo,
    run,
    run_engine,
    statuses,
    tag,
    view,
)

CLEAN = VulnerabilityScan("complete", {"low": 3, "medium": 1})
CRITICAL = VulnerabilityScan("complete", {"critical": 1, "high": 0})


def scanning(kind: str = "ecr", repositories: tuple[str, ...] = ("app", "legacy/app"), **kw: object):
    kw.setdefault("enabled", True)
    kw.setdefault("mode", "continuous")
    listed = tuple(repo(name) for name in repositories)
    return view(kind, **{SCANNING: ScanningFacts(**kw), REPOSITORIES: listed})  # type: ignore[arg-type]


# RG-SCAN-001 ----------------------------------------------------------------


def test_continuous_scanning_covering_everything_passes() -> None:
    verdicts = list(run("RG-SCAN-001", DEV, scanning()))
    assert [v.status for v in verdicts] == [Status.PASS] * 3
    assert_evidence(verdicts[:1], "enabled", "mode", "source")


def test_scan_on_push_passes() -> None:
    assert only(run("RG-SCAN-001", DEV, scanning(mode="scan_on_push", repositories=()))).status is Status.PASS


def test_disabled_or_manual_scanning_fails() -> None:
    assert only(run("RG-SCAN-001", DEV, scanning(enabled=False, mode=None))).status is Status.FAIL
    manual = only(run("RG-SCAN-001", DEV, scanning(mode="manual")))
    assert manual.status is Status.FAIL
    assert "not automatic" in manual.message


def test_filter_gaps_fail_per_repository() -> None:
    """Coverage is decided per repository by the registry's filters: one finding each."""
    facts = scanning(uncovered_repositories=("legacy/app",))
    verdicts = {v.resource: v.status for v in run("RG-SCAN-001", DEV, facts)}
    assert verdicts == {"t1": Status.PASS, "app": Status.PASS, "legacy/app": Status.FAIL}


def test_coverage_that_cannot_be_listed_is_an_error_beside_the_registry_verdict() -> None:
    facts = view("ecr", **{SCANNING: ScanningFacts(enabled=True, mode="continuous")})
    assert [v.status for v in run("RG-SCAN-001", DEV, facts)] == [Status.PASS, Status.ERROR]


def test_scanning_on_without_a_scanner_fails() -> None:
    missing = scanning("harbor", mode="scan_on_push", scanner_installed=False)
    verdict = only(run("RG-SCAN-001", DEV, missing))
    assert verdict.status is Status.FAIL and "no scanner" in verdict.message
    ok = scanning("harbor", (), mode="scan_on_push", scanner="Trivy", scanner_installed=True)
    assert only(run("RG-SCAN-001", DEV, ok)).status is Status.PASS


def test_distribution_unsupported_fails_through_the_engine() -> None:
    facts = view("distribution", **{SCANNING: Fact.unsupported("no scanning in Distribution")})
    assert statuses(run_engine("RG-SCAN-001", DEV, facts)) == [Status.FAIL]


# RG-SCAN-002 ----------------------------------------------------------------


def scan_view(*items: RepositoryFacts):
    return view("ecr", **{REPOSITORIES: tuple(items), SCANNING: ScanningFacts(True, "scan_on_push")})


def test_newest_image_clean_passes_even_if_older_one_is_not() -> None:
    facts = scan_view(repo("app", tag("1.0.0", pushed_days_ago=30, scan=CRITICAL), tag("1.1.0", scan=CLEAN)))
    verdict = only(run("RG-SCAN-002", PROD, facts))
    assert verdict.status is Status.PASS
    assert verdict.resource == "app:1.1.0"
    assert_evidence([verdict], "tag", "scan_status", "severity_counts", "source")


def test_newest_image_with_critical_finding_fails() -> None:
    facts = scan_view(repo("app", tag("1.0.0", pushed_days_ago=30, scan=CLEAN), tag("1.1.0", scan=CRITICAL)))
    verdict = only(run("RG-SCAN-002", PROD, facts))
    assert verdict.status is Status.FAIL
    assert "1 critical" in verdict.message


def test_threshold_from_context() -> None:
    facts = scan_view(repo("app", tag("1.0.0", scan=CLEAN)))
    strict = context("prod", thresholds=Thresholds(max_vuln_severity="medium"))
    assert only(run("RG-SCAN-002", strict, facts)).status is Status.FAIL
    assert only(run("RG-SCAN-002", PROD, facts)).status is Status.PASS


def test_vendor_severity_words_are_understood() -> None:
    facts = scan_view(repo("app", tag("1.0.0", scan=VulnerabilityScan("complete", {"MODERATE": 2, "UNDEFINED": 4}))))
    strict = context("prod", thresholds=Thresholds(max_vuln_severity="medium"))
    assert only(run("RG-SCAN-002", strict, facts)).status is Status.FAIL
    assert only(run("RG-SCAN-002", PROD, facts)).status is Status.PASS


def test_incomplete_scan_fails_and_missing_scan_errors() -> None:
    pending = scan_view(repo("app", tag("1.0.0", scan=VulnerabilityScan("pending"))))
    assert only(run("RG-SCAN-002", PROD, pending)).status is Status.FAIL
    missing = scan_view(repo("app", tag("1.0.0", scan=None)))
    assert only(run("RG-SCAN-002", PROD, missing)).status is Status.ERROR


def test_errors_never_pass() -> None:
    broken_tag = scan_view(repo("app", tag("1.0.0", error="manifest 404")))
    assert only(run("RG-SCAN-002", PROD, broken_tag)).status is Status.ERROR
    broken_repo = scan_view(repo("app", error="timeout"))
    assert only(run("RG-SCAN-002", PROD, broken_repo)).status is Status.ERROR
    unknown_push = scan_view(repo("app", tag("1.0.0", pushed_days_ago=None, scan=CLEAN), tag("1.1.0", scan=CLEAN)))
    assert only(run("RG-SCAN-002", PROD, unknown_push)).status is Status.ERROR


def test_signature_artifacts_are_not_the_newest_image() -> None:
    facts = scan_view(repo("app", tag("1.0.0", pushed_days_ago=2, scan=CLEAN), tag(SIG_TAG, pushed_days_ago=0)))
    assert only(run("RG-SCAN-002", PROD, facts)).resource == "app:1.0.0"


def test_dev_and_empty_repositories_are_not_applicable() -> None:
    assert statuses(run("RG-SCAN-002", DEV, scan_view(repo("app", tag("1", scan=CRITICAL))))) == [Status.NOT_APPLICABLE]
    assert statuses(run("RG-SCAN-002", PROD, scan_view(repo("empty")))) == [Status.NOT_APPLICABLE]


def test_kind_without_scanning_fails_as_unsupported_in_prod_only() -> None:
    facts = view(
        "distribution",
        **{SCANNING: Fact.unsupported("no scanning"), REPOSITORIES: (repo("app", tag("1.0", pushed_days_ago=None)),)},
    )
    prod = run_engine("RG-SCAN-002", PROD, facts)
    assert statuses(prod) == [Status.FAIL]
    assert prod[0].message == "not supported by distribution: no scanning"
    assert statuses(run_engine("RG-SCAN-002", DEV, facts)) == [Status.NOT_APPLICABLE]
