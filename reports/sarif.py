"""SARIF 2.1.0 for code-scanning UIs and CI annotations.

One run; `tool.driver.rules` describes every rule of the catalog given (plus
any rule a finding names that the catalog lacks), results exist only for
`fail` and `error` findings.

How an `error` finding is written: it is not a proven violation, so it is a
result with `kind: "open"` ("could not determine whether this is a
failure"). The SARIF spec requires `level: "none"` for any kind other than
`fail`, so the loudness comes from the invocation instead: it is marked
`executionSuccessful: false` and carries one `error`-level
`toolExecutionNotification` per error finding, pointing at its rule.
Consumers that show only results still list the finding; consumers that
check the run's health see the audit was incomplete.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any
from urllib.parse import quote

from audits.model import AuditResult, Finding, Severity, Status
from audits.rules.registry import Rule, RuleMeta
from reports.base import isoformat, prepare_findings

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"

# GitHub code scanning maps security-severity >= 9.0 to critical, 7.0-8.9
# high, 4.0-6.9 medium, 0.1-3.9 low.
SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}
LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}


def _help(meta: RuleMeta, kinds: Sequence[str]) -> dict[str, str]:
    """How to fix the rule on each kind audited in this run, as text and as
    Markdown (the CLI text carries its own inline code spans; nothing is
    wrapped in a second pair of backticks)."""
    text: list[str] = []
    markdown: list[str] = []
    for kind in kinds:
        fix = meta.remediation_for(kind)
        if fix is None:
            continue
        text.append(f"{kind}: {fix.as_text()}")
        markdown.append(f"**{kind}:** {fix.cli}")
        if fix.component:
            markdown.append(f"regguard component for {kind}: `{fix.component}`")
    if not text:
        none = f"No remediation recorded for {', '.join(kinds) or 'these targets'}."
        return {"text": none, "markdown": none}
    return {"text": "\n".join(text), "markdown": "\n\n".join(markdown)}


def _rule_descriptor(rule: Rule, kinds: Sequence[str]) -> dict[str, Any]:
    meta = rule.meta
    return {
        "id": meta.id,
        "name": _pascal(meta.title),
        "shortDescription": {"text": meta.title},
        "fullDescription": {"text": meta.rationale or meta.title},
        "help": _help(meta, kinds),
        "defaultConfiguration": {"level": LEVEL[meta.severity]},
        "properties": {
            "severity": meta.severity.value,
            "security-severity": SECURITY_SEVERITY[meta.severity],
            "tags": ["security", *meta.soc2, *meta.nist_800_53],
            "soc2": list(meta.soc2),
            "nist_800_53": list(meta.nist_800_53),
            "seed_section": meta.seed_section,
        },
    }


def _fallback_descriptor(finding: Finding) -> dict[str, Any]:
    """A rule the catalog does not know (e.g. an engine-level finding)."""
    return {
        "id": finding.rule,
        "name": _pascal(finding.title) or finding.rule,
        "shortDescription": {"text": finding.title or finding.rule},
        "fullDescription": {"text": finding.title or finding.rule},
        "help": {"text": finding.remediation.as_text() if finding.remediation else "No remediation recorded."},
        "defaultConfiguration": {"level": LEVEL[finding.severity]},
        "properties": {
            "severity": finding.severity.value,
            "security-severity": SECURITY_SEVERITY[finding.severity],
            "tags": ["security", *finding.controls.soc2, *finding.controls.nist_800_53],
        },
    }


def _pascal(title: str) -> str:
    words = "".join(c if c.isalnum() else " " for c in title).split()
    return "".join(w[:1].upper() + w[1:] for w in words)


def _artifact_uri(path: str) -> str:
    """A URI reference for a file path: absolute paths become file: URIs,
    relative ones stay relative (resolved against the scanned checkout)."""
    if PurePosixPath(path).is_absolute():
        return PurePosixPath(path).as_uri()
    if PureWindowsPath(path).is_absolute():
        return PureWindowsPath(path).as_uri()
    return quote(path.replace("\\", "/"), safe="/._-~")


def _physical_location(evidence: Mapping[str, Any]) -> dict[str, Any] | None:
    file = evidence.get("file")
    if not isinstance(file, str) or not file:
        return None
    location: dict[str, Any] = {"artifactLocation": {"uri": _artifact_uri(file)}}
    line = evidence.get("line")
    if isinstance(line, int) and not isinstance(line, bool) and line >= 1:
        location["region"] = {"startLine": line}
    return location


def _location(finding: Finding) -> dict[str, Any]:
    location: dict[str, Any] = {
        "logicalLocations": [
            {
                "name": finding.resource or finding.target,
                "fullyQualifiedName": f"{finding.target}/{finding.resource}",
                "kind": "resource",
            }
        ]
    }
    physical = _physical_location(finding.evidence)
    if physical is not None:
        location["physicalLocation"] = physical
    return location


def _fingerprint(finding: Finding) -> str:
    """Stable across runs so code-scanning UIs track one alert per resource."""
    key = "\x1f".join((finding.rule, finding.target, finding.resource))
    return hashlib.sha256(key.encode()).hexdigest()


def _result(finding: Finding, rule_index: int) -> dict[str, Any]:
    is_error = finding.status is Status.ERROR
    text = finding.message or finding.title
    if is_error:
        text = f"Could not be judged: {text}"
    return {
        "ruleId": finding.rule,
        "ruleIndex": rule_index,
        "kind": "open" if is_error else "fail",
        "level": "none" if is_error else LEVEL[finding.severity],
        "message": {"text": f"[{finding.target}] {text}"},
        "locations": [_location(finding)],
        "partialFingerprints": {"regguardFinding/v1": _fingerprint(finding)},
        "properties": {
            "status": finding.status.value,
            "severity": finding.severity.value,
            "security-severity": SECURITY_SEVERITY[finding.severity],
            "target": finding.target,
            "targetKind": finding.kind,
            "resource": finding.resource,
            "controls": finding.controls.as_dict(),
            "evidence": dict(finding.evidence),
            "remediation": finding.remediation.as_dict() if finding.remediation else None,
        },
        **_suppressions(finding),
    }


def _suppressions(finding: Finding) -> dict[str, Any]:
    """A waived failure is a result with an accepted external suppression:
    code-scanning shows it as dismissed, with the justification an auditor reads."""
    if finding.waiver is None:
        return {}
    waiver = finding.waiver
    justification = f"{waiver.reason} (approved by {waiver.approved_by}; expires {waiver.expires})"
    return {
        "suppressions": [
            {"kind": "external", "status": "accepted", "justification": justification,
             "properties": waiver.as_dict()}
        ]
    }


def _baseline_states(result: AuditResult) -> dict[tuple[str, str, str], str]:
    """SARIF's own "since the last run": new, unchanged or updated per result."""
    diff = result.since_last
    if diff is None:
        return {}
    states = {(c.rule, c.target, c.resource): "new" for c in diff.new_failures}
    states.update({(c.rule, c.target, c.resource): "unchanged" for c in diff.persisting})
    states.update({(c.rule, c.target, c.resource): "updated" for c in diff.changed})
    return states


def _notification(finding: Finding, rule_index: int) -> dict[str, Any]:
    return {
        "level": "error",
        "message": {"text": f"[{finding.target}] {finding.resource}: {finding.message}"},
        "associatedRule": {"id": finding.rule, "index": rule_index},
    }


def sarif_log(result: AuditResult, rules: Mapping[str, Rule]) -> dict[str, Any]:
    """The SARIF log as plain data."""
    findings = [f for f in prepare_findings(result) if f.status in (Status.FAIL, Status.ERROR, Status.WAIVED)]
    kinds = sorted({t.kind for t in result.targets})
    descriptors = [_rule_descriptor(rules[rid], kinds) for rid in sorted(rules)]
    for finding in findings:
        if finding.rule not in rules and all(d["id"] != finding.rule for d in descriptors):
            descriptors.append(_fallback_descriptor(finding))
    index = {d["id"]: i for i, d in enumerate(descriptors)}
    errors = [f for f in findings if f.status is Status.ERROR]
    invocation: dict[str, Any] = {
        "executionSuccessful": not errors and result.complete,
        "startTimeUtc": isoformat(result.started_at),
        "endTimeUtc": isoformat(result.finished_at),
        "toolExecutionNotifications": [_notification(f, index[f.rule]) for f in errors],
    }
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": result.tool or "regguard",
                        "version": result.version,
                        "rules": descriptors,
                    }
                },
                "invocations": [invocation],
                "automationDetails": {"id": f"regguard/{result.environment}/{result.run_id or ''}"},
                "results": _results(result, findings, index),
                "properties": {
                    "environment": result.environment,
                    "frameworks": list(result.frameworks),
                },
            }
        ],
    }


def _results(result: AuditResult, findings: list[Finding], index: Mapping[str, int]) -> list[dict[str, Any]]:
    states = _baseline_states(result)
    results = []
    for finding in findings:
        entry = _result(finding, index[finding.rule])
        if result.since_last is not None:
            entry["baselineState"] = states.get(finding.identity, "unchanged")
        results.append(entry)
    return results


class SarifReporter:
    format = "sarif"
    filename = "report.sarif"

    def render(self, result: AuditResult, rules: Mapping[str, Rule]) -> str:
        return json.dumps(sarif_log(result, rules), indent=2, ensure_ascii=False, default=str) + "\n"
