"""The tables the human-readable formats (HTML, Markdown) share: counts by
severity, by target and by control, computed once from the prepared
findings so both documents always agree."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from audits.model import AuditResult, Finding, TargetSummary
from audits.rules.registry import Rule
from reports.base import (
    SEVERITY_ORDER,
    STATUS_ORDER,
    control_index,
    control_state,
    failing_first,
    fedramp_levels,
    isoformat,
    nist_title,
    prepare_findings,
    redact_text,
    status_counts,
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
    title: str
    severity: str
    remediation: str
    rationale: str
    findings: tuple[Finding, ...]


def remediation_text(finding: Finding, rules: Mapping[str, Rule]) -> str:
    """The finding's own remediation, else the catalog's (CLI and component)."""
    if finding.remediation:
        return finding.remediation
    rule = rules.get(finding.rule)
    if rule is None:
        return ""
    fix = rule.meta.remediation
    return f"CLI: {fix.cli}\nregguard component: {fix.component}"


def _control_rows(
    by_label: Mapping[str, Sequence[Finding]], findings: Sequence[Finding], nist: bool
) -> list[ControlRow]:
    return [
        ControlRow(
            label=label,
            title=nist_title(label) if nist else "",
            levels=tuple(fedramp_levels(label, findings)) if nist else (),
            state=control_state(fs),
            counts=status_counts(fs),
            rules=tuple(sorted({f.rule for f in fs})),
            findings=tuple(fs),
        )
        for label, fs in by_label.items()
    ]


def _rule_groups(findings: Sequence[Finding], rules: Mapping[str, Rule]) -> list[RuleGroup]:
    grouped: dict[str, list[Finding]] = {}
    for f in findings:
        if f.status.value in ("fail", "error"):
            grouped.setdefault(f.rule, []).append(f)
    groups = []
    for rule_id, fs in grouped.items():
        rule = rules.get(rule_id)
        worst = max(fs, key=lambda f: f.severity.rank)
        groups.append(
            RuleGroup(
                rule=rule_id,
                title=rule.meta.title if rule else worst.title,
                severity=worst.severity.value,
                remediation=remediation_text(worst, rules),
                rationale=rule.meta.rationale if rule else "",
                findings=tuple(fs),
            )
        )
    order = {s.value: i for i, s in enumerate(SEVERITY_ORDER)}
    return sorted(groups, key=lambda g: (order[g.severity], g.rule))


def build_view(result: AuditResult, rules: Mapping[str, Rule]) -> dict[str, Any]:
    """Everything the HTML and Markdown templates render."""
    findings = prepare_findings(result)
    statuses = [s.value for s in STATUS_ORDER]
    by_severity = []
    for severity in SEVERITY_ORDER:
        fs = [f for f in findings if f.severity is severity]
        by_severity.append(SeverityRow(severity.value, status_counts(fs), len(fs)))
    targets = [
        TargetRow(
            t,
            status_counts(f for f in findings if f.target == t.name),
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
        "summary": status_counts(findings),
        "by_severity": by_severity,
        "targets": targets,
        "soc2": _control_rows(controls["soc2"], findings, nist=False),
        "nist": _control_rows(controls["nist_800_53"], findings, nist=True),
        "findings": failing_first(findings),
        "rule_groups": _rule_groups(findings, rules),
        "remediation": lambda f: remediation_text(f, rules),
    }
