"""`report.json`: the machine-readable result in the shape DESIGN.md fixes.

Other tools (CI gates, dashboards, the evidence bundle) read this file, so
its keys and ordering are a contract: findings are ordered worst severity
first, then rule, target and resource, and every key is always present.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from audits.model import AuditResult, TargetSummary, count_statuses
from audits.rules.registry import Rule
from reports.base import isoformat, prepare_findings, redact_diff, redact_text


def target_as_dict(target: TargetSummary) -> dict[str, Any]:
    return {
        "name": target.name,
        "kind": target.kind,
        "complete": target.complete,
        "errors": [redact_text(e) for e in target.errors],
        "warnings": [redact_text(w) for w in target.warnings],
        "requests": target.requests,
        "duration_s": round(target.duration_s, 3),
    }


def report_dict(result: AuditResult) -> dict[str, Any]:
    """The report as plain data (also embedded in the evidence bundle)."""
    findings = prepare_findings(result)
    return {
        "tool": result.tool,
        "version": result.version,
        "started_at": isoformat(result.started_at),
        "finished_at": isoformat(result.finished_at),
        "environment": result.environment,
        "targets": [target_as_dict(t) for t in result.targets],
        "summary": _summary(count_statuses(findings)),
        "findings": [f.as_dict() for f in findings],
        "run_id": result.run_id,
        "since_last_run": since_last_dict(result),
        "trend": [dataclasses.asdict(p) for p in result.trend],
    }


def _summary(counts: dict[str, int]) -> dict[str, int]:
    """The status counts in the order this format has always listed them."""
    return {key: counts[key] for key in ("pass", "fail", "error", "not_applicable", "manual", "waived")}


def since_last_dict(result: AuditResult) -> dict[str, Any] | None:
    """The comparison with the previous stored run, redacted as every report redacts it."""
    diff = redact_diff(result.since_last)
    return None if diff is None else diff.as_dict()


class JsonReporter:
    format = "json"
    filename = "report.json"

    def render(self, result: AuditResult, rules: Mapping[str, Rule]) -> str:
        return json.dumps(report_dict(result), indent=2, ensure_ascii=False, default=str) + "\n"
