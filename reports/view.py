"""The tables the human-readable formats (HTML, Markdown) share: counts by
severity, by target and by control, computed once from the prepared
findings so both documents always agree."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from audits.controls import nist_title
from audits.model import STATUS_ORDER, AuditResult, Finding, Status, TargetSummary, count_statuses
from audits.rules.registry import Rule
from reports.base import (
    SEVERITY_ORDER,
    control_index,
    control_state,
    fedramp_levels,
    isoformat,
    prepare_findings,
    redact_diff,
    redact_text,
)


@dataclass(frozen=True)
class SeverityRow:
    severity: str
    counts: Mapping[str, int]
    total: int


@dataclass(frozen=True)
class TargetRow:
    target: TargetSummary
    counts: Mapping[str, int]
    errors: tuple[str, ...]
    warnings: tuple[str, ...] = ()

    @property
    def notes(self) -> tuple[str, ...]:
        """Errors, then warnings marked as such, for one table cell."""
        return self.errors + tuple(f"warning: {w}" for w in self.warnings)


@dataclass(frozen=True)
class ControlRow:
    label: str
    title: str
    levels: tuple[str, ...]
    state: str
    counts: Mapping[str, int]
    rules: tuple[str, ...]
    findings: tuple[Finding, ...]


@dataclass(frozen=True)
class RuleGroup:
    """Failing findings of one rule, for "fix this once" review lists."""

    rule: str
    kind: str
    title: str
    severity: str
    remediation: str
    rationale: str
    findings: tuple[Finding, ...]


def remediation_text(finding: Finding) -> str:
    """The fix for this finding's own kind (engine-attached to failures only)."""
    fix = finding.remediation
    if fix is None:
        return ""
    text = f"CLI: {fix.cli}"
    return f"{text}\nregguard component: {fix.component}" if fix.component else text


def _control_rows(
    by_label: Mapping[str, Sequence[Finding]], findings: Sequence[Finding], nist: bool
) -> list[ControlRow]:
    return [
        ControlRow(
            label=label,
            title=nist_title(label) if nist else "",
            levels=tuple(fedramp_levels(label, findings)) if nist else (),
            state=control_state(fs),
            counts=count_statuses(fs),
            rules=tuple(sorted({f.rule for f in fs})),
            findings=tuple(fs),
        )
        for label, fs in by_label.items()
    ]


def _rule_groups(findings: Sequence[Finding], rules: Mapping[str, Rule]) -> list[RuleGroup]:
    """One group per (rule, kind): the remediation differs from kind to kind."""
    grouped: dict[tuple[str, str], list[Finding]] = {}
    for f in findings:
        if f.status.value in ("fail", "error"):
            grouped.setdefault((f.rule, f.kind), []).append(f)
    groups = []
    for (rule_id, kind), fs in grouped.items():
        rule = rules.get(rule_id)
        worst = max(fs, key=lambda f: f.severity.rank)
        failing = next((f for f in fs if f.remediation is not None), worst)
        groups.append(
            RuleGroup(
                rule=rule_id,
                kind=kind,
                title=rule.meta.title if rule else worst.title,
                severity=worst.severity.value,
                remediation=remediation_text(failing),
                rationale=rule.meta.rationale if rule else "",
                findings=tuple(fs),
            )
        )
    order = {s.value: i for i, s in enumerate(SEVERITY_ORDER)}
    return sorted(groups, key=lambda g: (order[g.severity], g.rule, g.kind))


@dataclass(frozen=True)
class TrendRow:
    """One stored run in the trend: target -> (passed, failed)."""

    run_id: str
    started_at: str
    by_target: dict[str, tuple[int, int]]


def trend_rows(result: AuditResult) -> list[TrendRow]:
    rows: dict[str, TrendRow] = {}
    for point in result.trend:
        row = rows.setdefault(point.run_id, TrendRow(point.run_id, point.started_at, {}))
        row.by_target[point.target] = (point.passed, point.failed)
    return list(rows.values())


def build_view(result: AuditResult, rules: Mapping[str, Rule]) -> dict[str, Any]:
    """Everything the HTML and Markdown templates render."""
    findings = prepare_findings(result)
    statuses = [s.value for s in STATUS_ORDER]
    by_severity = []
    for severity in SEVERITY_ORDER:
        fs = [f for f in findings if f.severity is severity]
        by_severity.append(SeverityRow(severity.value, count_statuses(fs), len(fs)))
    targets = [
        TargetRow(
            t,
            count_statuses(f for f in findings if f.target == t.name),
            tuple(redact_text(e) for e in t.errors),
            tuple(redact_text(w) for w in t.warnings),
        )
        for t in result.targets
    ]
    controls = control_index(findings)
    return {
        "result": result,
        "started_at": isoformat(result.started_at),
        "finished_at": isoformat(result.finished_at),
        "statuses": statuses,
        "summary": count_statuses(findings),
        "by_severity": by_severity,
        "targets": targets,
        "soc2": _control_rows(controls["soc2"], findings, nist=False),
        "nist": _control_rows(controls["nist_800_53"], findings, nist=True),
        "findings": findings,
        "rule_groups": _rule_groups(findings, rules),
        "remediation": remediation_text,
        "since_last": redact_diff(result.since_last),
        "waived": [f for f in findings if f.status is Status.WAIVED],
        "trend": trend_rows(result),
        "trend_targets": sorted({p.target for p in result.trend}),
    }
