"""The engine is fail-closed: nothing that was not observed can pass."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from audits.engine import exit_code, judge
from audits.model import (
    TLS,
    AuditResult,
    Fact,
    Finding,
    Severity,
    Status,
    TargetFacts,
    TargetSummary,
    Verdict,
)
from audits.rules.registry import FactView, Remediation, Rule, RuleContext, RuleMeta, passed

NOW = datetime(2026, 11, 27, tzinfo=UTC)


def make_rule(
    rule_id: str = "RG-TEST-001", *, prod_only: bool = False, kinds: Iterable[str] = ("distribution",)
) -> Rule:
    meta = RuleMeta(
        id=rule_id,
        title="test rule",
        rationale="because",
        seed_section="TLS",
        severity=Severity.HIGH,
        kinds=frozenset(kinds),
        soc2=("CC6.7",),
        nist_800_53=("SC-8",),
        remediation={kind: Remediation(cli="fix it", component="Args(fix=True)") for kind in kinds},
        prod_only=prod_only,
    )

    def func(ctx: RuleContext, facts: FactView) -> Iterable[Verdict]:
        value = facts.require(TLS)
        yield passed("endpoint", f"saw {value}")

    return Rule(meta, func)


def facts_with(fact: Fact[object] | None, kind: str = "distribution") -> TargetFacts:
    return TargetFacts(
        target="t1",
        kind=kind,
        facts={} if fact is None else {TLS: fact},
        started_at=NOW,
        finished_at=NOW,
    )


def statuses(findings: list[Finding]) -> list[Status]:
    return [f.status for f in findings]


def test_ok_fact_lets_the_rule_judge() -> None:
    findings = judge(facts_with(Fact.ok("TLSv1.3", "probe")), RuleContext(), {"r": make_rule()})
    assert statuses(findings) == [Status.PASS]
    assert findings[0].controls.nist_800_53 == ("SC-8",)


def test_missing_fact_is_error_never_pass() -> None:
    findings = judge(facts_with(None), RuleContext(), {"r": make_rule()})
    assert statuses(findings) == [Status.ERROR]
    assert "not collected" in findings[0].message


def test_failed_fact_is_error_with_its_reason_and_source() -> None:
    fact: Fact[object] = Fact.error("connection refused", "GET https://127.0.0.1:1/v2/")
    findings = judge(facts_with(fact), RuleContext(), {"r": make_rule()})
    assert statuses(findings) == [Status.ERROR]
    assert "connection refused" in findings[0].message
    assert findings[0].evidence["source"] == "GET https://127.0.0.1:1/v2/"


def test_unsupported_feature_fails_when_required() -> None:
    fact: Fact[object] = Fact.unsupported("no such feature")
    findings = judge(facts_with(fact), RuleContext(environment="dev"), {"r": make_rule()})
    assert statuses(findings) == [Status.FAIL]
    assert findings[0].message == "not supported by distribution: no such feature"  # the collector's word
    assert findings[0].remediation  # a failure always says how to fix it


def test_a_rule_that_says_nothing_is_an_error_not_an_absence() -> None:
    """A rule yielding no verdict used to become not_applicable ("nothing in scope")."""
    silent = make_rule()
    mute = Rule(silent.meta, lambda ctx, facts: iter(()))
    findings = judge(facts_with(Fact.ok("tls", "probe")), RuleContext(), {"r": mute})
    assert statuses(findings) == [Status.ERROR]
    assert "no verdict" in findings[0].message


def test_unsupported_prod_only_rule_outside_prod_is_not_applicable() -> None:
    fact: Fact[object] = Fact.unsupported("no such feature")
    findings = judge(facts_with(fact), RuleContext(environment="dev"), {"r": make_rule(prod_only=True)})
    assert statuses(findings) == [Status.NOT_APPLICABLE]
    findings = judge(facts_with(fact), RuleContext(environment="prod"), {"r": make_rule(prod_only=True)})
    assert statuses(findings) == [Status.FAIL]


def test_not_observable_becomes_manual_and_managed_not_applicable() -> None:
    manual = judge(facts_with(Fact.not_observable("set config_file")), RuleContext(), {"r": make_rule()})
    assert statuses(manual) == [Status.MANUAL] and "set config_file" in manual[0].message
    managed = judge(facts_with(Fact.managed("AWS runs it")), RuleContext(), {"r": make_rule()})
    assert statuses(managed) == [Status.NOT_APPLICABLE]


def test_crashing_rule_is_error() -> None:
    rule = make_rule()

    def boom(ctx: RuleContext, facts: FactView) -> Iterable[Verdict]:
        raise KeyError("oops")

    findings = judge(facts_with(Fact.ok("x", "probe")), RuleContext(), {"r": Rule(rule.meta, boom)})
    assert statuses(findings) == [Status.ERROR]
    assert "KeyError" in findings[0].message


def test_rules_for_other_kinds_are_skipped() -> None:
    findings = judge(facts_with(Fact.ok("x", "p"), kind="ecr"), RuleContext(), {"r": make_rule()})
    assert findings == []


def _result(*findings: Finding, complete: bool = True) -> AuditResult:
    return AuditResult(
        tool="regguard",
        version="0",
        started_at=NOW,
        finished_at=NOW,
        environment="prod",
        frameworks=(),
        targets=(TargetSummary("t1", "distribution", complete),),
        findings=findings,
    )


def test_exit_codes() -> None:
    [ok] = judge(facts_with(Fact.ok("x", "p")), RuleContext(), {"r": make_rule()})
    [fail] = judge(facts_with(Fact.unsupported("n")), RuleContext(), {"r": make_rule()})
    [err] = judge(facts_with(None), RuleContext(), {"r": make_rule()})
    assert exit_code(_result(ok), Severity.HIGH) == 0
    assert exit_code(_result(ok, fail), Severity.HIGH) == 1
    assert exit_code(_result(ok, fail), Severity.CRITICAL) == 0  # below --fail-on
    assert exit_code(_result(ok, fail, err), Severity.HIGH) == 3
    assert exit_code(_result(ok, complete=False), Severity.HIGH) == 3
