"""JUnit XML for CI dashboards, written to pass the strict Ant/JUnitReport
schema (windyroad `junit.xsd`), which also satisfies lenient consumers.

One `<testsuite>` per audited target and one `<testcase>` per finding:
`classname` is the rule id, `name` the resource. `fail` becomes
`<failure>`, `error` becomes `<error>`, and `not_applicable` and `manual`
become `<skipped>` (the schema allows one of skipped/error/failure per
case); a manual check says what a person must verify in its message.
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from audits.model import AuditResult, Finding, Status, TargetSummary
from audits.rules.registry import Rule
from reports.base import prepare_findings, pretty_json, redact_text, since_last_line

# Characters XML 1.0 cannot carry at all (ElementTree would write them raw).
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(value: Any) -> str:
    """Text safe for an XML 1.0 document (illegal control characters dropped)."""
    return _XML_ILLEGAL.sub("", str(value))


def junit_timestamp(moment: datetime) -> str:
    """`YYYY-MM-DDThh:mm:ss` in UTC: the schema allows no zone and no fraction."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None, microsecond=0).isoformat()


def _token(value: str, fallback: str) -> str:
    """A non-empty xs:token (whitespace collapsed)."""
    collapsed = " ".join(xml_text(value).split())
    return collapsed or fallback


def _case_body(finding: Finding) -> str:
    lines = [
        f"{finding.rule} {finding.title}",
        f"target: {finding.target} ({finding.kind})",
        f"resource: {finding.resource}",
        f"severity: {finding.severity.value}",
        f"SOC2: {', '.join(finding.controls.soc2) or '-'}",
        f"NIST 800-53: {', '.join(finding.controls.nist_800_53) or '-'}",
    ]
    if finding.remediation:
        lines.append(f"remediation: {finding.remediation.as_text()}")
    lines.append("evidence:")
    lines.append(pretty_json(dict(finding.evidence)))
    return xml_text("\n".join(lines))


def _testcase(suite: ET.Element, finding: Finding) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        {
            "name": _token(finding.resource, finding.target or "(none)"),
            "classname": _token(finding.rule, "unknown-rule"),
            "time": "0",
        },
    )
    message = xml_text(finding.message)
    if finding.status is Status.FAIL:
        child = ET.SubElement(
            case, "failure", {"message": message, "type": finding.severity.value}
        )
        child.text = _case_body(finding)
    elif finding.status is Status.ERROR:
        child = ET.SubElement(case, "error", {"message": message, "type": "not-judged"})
        child.text = _case_body(finding)
    elif finding.status is Status.MANUAL:
        child = ET.SubElement(case, "skipped", {"message": f"manual check: {message}"})
        child.text = _case_body(finding)
    elif finding.status is Status.NOT_APPLICABLE:
        ET.SubElement(case, "skipped", {"message": f"not applicable: {message}"})
    elif finding.status is Status.WAIVED:  # an accepted failure: skipped, never passed
        child = ET.SubElement(case, "skipped", {"message": f"waived failure: {message}"})
        child.text = _case_body(finding)


def _suite(
    parent: ET.Element,
    index: int,
    target: TargetSummary,
    findings: Sequence[Finding],
    result: AuditResult,
    hostname: str,
) -> None:
    def count(*statuses: Status) -> str:
        return str(sum(1 for f in findings if f.status in statuses))

    suite = ET.SubElement(
        parent,
        "testsuite",
        {
            "name": _token(target.name, "(unnamed)"),
            "timestamp": junit_timestamp(result.started_at),
            "hostname": _token(hostname, "localhost"),
            "tests": str(len(findings)),
            "failures": count(Status.FAIL),
            "errors": count(Status.ERROR),
            "skipped": count(Status.NOT_APPLICABLE, Status.MANUAL, Status.WAIVED),
            "time": f"{max(target.duration_s, 0.0):.3f}",
            "package": _token(f"regguard.{target.kind}", "regguard"),
            "id": str(index),
        },
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("tool", f"{result.tool} {result.version}"),
        ("environment", result.environment),
        ("frameworks", ",".join(result.frameworks)),
        ("target.kind", target.kind),
        ("target.complete", str(target.complete).lower()),
        ("target.requests", str(target.requests)),
        ("run_id", result.run_id or ""),
        ("since_last_run", since_last_line(result) or "no earlier run"),
    ):
        ET.SubElement(properties, "property", {"name": name, "value": xml_text(value)})
    for finding in findings:
        _testcase(suite, finding)
    out = ET.SubElement(suite, "system-out")
    out.text = xml_text(
        f"{target.name} ({target.kind}): {len(findings)} findings, "
        f"complete={str(target.complete).lower()}"
        + "".join(f"\nwarning: {redact_text(w)}" for w in target.warnings)
    )
    err = ET.SubElement(suite, "system-err")
    err.text = xml_text("\n".join(redact_text(e) for e in target.errors))


def _targets(result: AuditResult, findings: Sequence[Finding]) -> list[TargetSummary]:
    """The audited targets, plus a stand-in for any target a finding names
    that has no summary (so no finding is ever dropped)."""
    targets = list(result.targets)
    known = {t.name for t in targets}
    for finding in findings:
        if finding.target not in known:
            known.add(finding.target)
            targets.append(TargetSummary(finding.target, finding.kind, complete=False))
    return targets


class JunitReporter:
    format = "junit"
    filename = "report.junit.xml"

    def __init__(self, hostname: str | None = None) -> None:
        self.hostname = hostname or socket.gethostname() or "localhost"

    def render(self, result: AuditResult, rules: Mapping[str, Rule]) -> str:
        findings = prepare_findings(result)
        root = ET.Element("testsuites")
        for index, target in enumerate(_targets(result, findings)):
            mine = [f for f in findings if f.target == target.name]
            _suite(root, index, target, mine, result, self.hostname)
        ET.indent(root)
        body = ET.tostring(root, encoding="unicode")
        return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'
