"""OSCAL 1.2.1 Assessment Results for FedRAMP-style evidence packages.

The document has one result. Each regguard finding becomes an OSCAL
*observation* (what was tested, on which target and resource, with the
redacted evidence as `relevant-evidence`). Each NIST SP 800-53 control the
findings map to becomes an OSCAL *finding* whose target is the control
(`objective-id`, OSCAL lower-case id such as `ia-5.1`) with a state:

- `not-satisfied` / reason `fail` when any mapped finding failed;
- `not-satisfied` / reason `other` when none failed but one could not be
  judged (`error`) or needs a person (`manual`): nothing proves the control
  is met, and the remarks say why;
- `satisfied` / reason `pass` when only passes (and not-applicables) remain.

A control whose findings are all `not_applicable` gets observations but no
finding. regguard has no separate assessment plan: `import-ap` points at the
rule catalog the audit ran (`regguard rules --format json`).

The document is built as plain data and then validated (and serialized) by
compliance-trestle's `assessment_results.Model`, whose models target OSCAL
1.2.1. Building through `model_validate` rather than the model constructors
keeps mypy --strict usable: trestle's generated constructors do not type
check (optional fields declared as `Field(None, ...)` read as required).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from audits.controls import label_to_id, nist_title
from audits.model import AuditResult, Finding, Status, count_statuses
from audits.rules.registry import Rule
from reports.base import (
    control_index,
    fedramp_levels,
    isoformat,
    prepare_findings,
    pretty_json,
    since_last_line,
)

OSCAL_VERSION = "1.2.1"
REGGUARD_NS = "https://regguard.invalid/ns/oscal"
# Fixed namespace so UUIDs are stable for the same audit (deterministic output).
_UUID_NS = uuid.UUID("5b0f6a3e-2f4c-5d7e-9a61-0c3e7a1d4b29")


def _uuid(*parts: str) -> str:
    return str(uuid.uuid5(_UUID_NS, "\x1f".join(parts)))


def _line(text: str, fallback: str) -> str:
    """MarkupLine: one non-empty line."""
    single = " ".join(text.split())
    return single or fallback


def _prop(name: str, value: str) -> dict[str, str] | None:
    """A regguard-namespaced property, or None when the value is empty
    (OSCAL string values must be non-empty without outer whitespace)."""
    cleaned = " ".join(value.split())
    if not cleaned:
        return None
    return {"name": name, "ns": REGGUARD_NS, "value": cleaned}


def _props(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [p for p in (_prop(n, v) for n, v in pairs) if p is not None]


def _collected(finding: Finding, fallback: datetime) -> str:
    """When the evidence was observed: the evidence's own `observed_at`
    when it carries one with a zone, else the audit start."""
    observed = finding.evidence.get("observed_at")
    if isinstance(observed, str):
        try:
            moment = datetime.fromisoformat(observed.replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None:
            return isoformat(moment)
    return isoformat(fallback)


def _observation_id(result: AuditResult, finding: Finding) -> str:
    return _uuid(
        "observation",
        isoformat(result.started_at),
        finding.rule,
        finding.target,
        finding.resource,
        finding.status.value,
        finding.message,
    )


def _observation(result: AuditResult, finding: Finding) -> dict[str, Any]:
    source = finding.evidence.get("source")
    evidence_description = (
        f"Observed via {source}" if isinstance(source, str) and source.strip()
        else f"Collected by regguard from target {finding.target}"
    )
    props = _props(
        ("rule", finding.rule),
        ("status", finding.status.value),
        ("severity", finding.severity.value),
        ("target", finding.target),
        ("target-kind", finding.kind),
        ("resource", finding.resource),
        *(("soc2-criterion", c) for c in finding.controls.soc2),
    )
    observation: dict[str, Any] = {
        "uuid": _observation_id(result, finding),
        "title": _line(f"{finding.rule} {finding.title} on {finding.target}", finding.rule),
        "description": finding.message or finding.title or finding.rule,
        "methods": ["TEST"],
        "collected": _collected(finding, result.started_at),
        "relevant-evidence": [
            {
                "description": _line(evidence_description, "regguard evidence"),
                "remarks": pretty_json(dict(finding.evidence)),
            }
        ],
    }
    if props:
        observation["props"] = props
    if finding.remediation and finding.status is not Status.PASS:
        observation["remarks"] = f"Remediation: {finding.remediation.as_text()}"
    return observation


def _objective_status(findings: Sequence[Finding]) -> dict[str, str] | None:
    counts = count_statuses(findings)
    if counts["fail"]:
        return {"state": "not-satisfied", "reason": "fail"}
    if counts["error"]:
        return {
            "state": "not-satisfied",
            "reason": "other",
            "remarks": f"{counts['error']} check(s) could not be judged; "
            "the control is not shown to be satisfied.",
        }
    if counts["manual"]:
        return {
            "state": "not-satisfied",
            "reason": "other",
            "remarks": f"{counts['manual']} check(s) need manual review before "
            "the control can be shown to be satisfied.",
        }
    if counts["waived"]:
        return {
            "state": "not-satisfied",
            "reason": "other",
            "remarks": f"{counts['waived']} failure(s) accepted as risks by approved, dated waivers "
            "(see the result's risks).",
        }
    if counts["pass"]:
        return {"state": "satisfied", "reason": "pass"}
    return None


def _risk(result: AuditResult, finding: Finding) -> dict[str, Any]:
    """A waived failure as an OSCAL risk whose deviation was approved: who
    accepted it, why and until when (the deadline)."""
    assert finding.waiver is not None
    waiver = finding.waiver
    return {
        "uuid": _risk_id(result, finding),
        "title": _line(f"Accepted risk: {finding.rule} on {finding.target} {finding.resource}", finding.rule),
        "description": finding.message or finding.title or finding.rule,
        "statement": _line(waiver.reason, "accepted risk"),
        "status": "deviation-approved",
        "deadline": f"{waiver.expires}T23:59:59Z",
        "props": _props(("approved-by", waiver.approved_by), ("waiver-expires", waiver.expires),
                        ("rule", finding.rule), ("target", finding.target)),
        "related-observations": [{"observation-uuid": _observation_id(result, finding)}],
    }


def _risk_id(result: AuditResult, finding: Finding) -> str:
    return _uuid("risk", isoformat(result.started_at), finding.rule, finding.target, finding.resource)


def _finding(
    result: AuditResult, label: str, findings: Sequence[Finding], all_findings: Sequence[Finding]
) -> dict[str, Any] | None:
    status = _objective_status(findings)
    if status is None:
        return None
    control_id = label_to_id(label)
    title = nist_title(label)
    counts = count_statuses(findings)
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    rules = sorted({f.rule for f in findings})
    levels = fedramp_levels(label, all_findings)
    finding: dict[str, Any] = {
        "uuid": _uuid("finding", isoformat(result.started_at), control_id),
        "title": _line(f"{label} {title}", label),
        "description": f"regguard checks mapped to {label}: {summary} "
        f"(rules: {', '.join(rules)}).",
        "target": {
            "type": "objective-id",
            "target-id": control_id,
            "title": _line(f"{label} {title}", label),
            "status": status,
        },
        "related-observations": [
            {"observation-uuid": _observation_id(result, f)} for f in findings
        ],
    }
    waived = [f for f in findings if f.waiver is not None]
    if waived:
        finding["related-risks"] = [{"risk-uuid": _risk_id(result, f)} for f in waived]
    props = _props(("control-label", label), *(("fedramp-baseline", lv) for lv in levels))
    if props:
        finding["props"] = props
    return finding


def _control_selection(labels: Sequence[str]) -> dict[str, Any]:
    if not labels:
        return {"include-all": {}}
    ids = sorted({label_to_id(label) for label in labels})
    return {"include-controls": [{"control-id": cid} for cid in ids]}


def assessment_results(result: AuditResult, rules: Mapping[str, Rule]) -> dict[str, Any]:
    """The Assessment Results document as plain data (before validation)."""
    findings = prepare_findings(result)
    by_control = control_index(findings)["nist_800_53"]
    reviewed = sorted(
        {label for r in rules.values() for label in r.meta.nist_800_53} | set(by_control)
    )
    oscal_findings = [
        f for f in (_finding(result, label, fs, findings) for label, fs in by_control.items())
        if f is not None
    ]
    targets = ", ".join(f"{t.name} ({t.kind})" for t in result.targets) or "none"
    started = isoformat(result.started_at)
    one_result: dict[str, Any] = {
        "uuid": _uuid("result", started, result.environment),
        "title": _line(f"regguard audit of {result.environment}", "regguard audit"),
        "description": f"Automated audit of container registries by {result.tool} "
        f"{result.version}. Targets: {targets}.",
        "start": started,
        "end": isoformat(result.finished_at),
        "reviewed-controls": {"control-selections": [_control_selection(reviewed)]},
    }
    props = _props(("environment", result.environment), ("run-id", result.run_id or ""),
                   ("run-sha256", result.run_sha256 or ""), ("since-last-run", since_last_line(result)),
                   *(("framework", fw) for fw in result.frameworks))
    if props:
        one_result["props"] = props
    if findings:
        one_result["observations"] = [_observation(result, f) for f in findings]
    risks = [_risk(result, f) for f in findings if f.waiver is not None]
    if risks:
        one_result["risks"] = risks
    if oscal_findings:
        one_result["findings"] = oscal_findings
    return {
        "assessment-results": {
            "uuid": _uuid("assessment-results", started, result.environment),
            "metadata": {
                "title": _line(f"regguard registry audit: {result.environment}", "regguard"),
                "last-modified": isoformat(result.finished_at),
                "version": result.version or "0",
                "oscal-version": OSCAL_VERSION,
            },
            "import-ap": {
                "href": f"urn:regguard:rule-catalog:{result.version or '0'}",
                "remarks": "regguard has no separate assessment plan: its rule catalog "
                "(`regguard rules --format json`) defines what was assessed.",
            },
            "results": [one_result],
        }
    }


def validated(document: Mapping[str, Any]) -> dict[str, Any]:
    """Round-trip through compliance-trestle's OSCAL 1.2.1 models: raises
    pydantic's ValidationError when the document is not valid OSCAL."""
    from trestle.oscal.assessment_results import Model

    model = Model.model_validate(document)
    dumped: dict[str, Any] = model.model_dump(by_alias=True, exclude_none=True, mode="json")
    return dumped


class OscalReporter:
    format = "oscal"
    filename = "oscal-assessment-results.json"

    def render(self, result: AuditResult, rules: Mapping[str, Rule]) -> str:
        document = validated(assessment_results(result, rules))
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
