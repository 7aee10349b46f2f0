"""report.json: the DESIGN.md shape, ordering and redaction."""

from __future__ import annotations

import json

from audits.model import Status
from reports import get_reporter
from reports.base import REDACTED
from tests.unit import report_fixtures as fx


def render() -> dict:  # type: ignore[type-arg]
    return json.loads(get_reporter("json").render(fx.audit_result(), fx.rules()))  # type: ignore[no-any-return]


def test_top_level_shape_is_exactly_the_contract() -> None:
    report = render()
    assert list(report) == ["tool", "version", "started_at", "finished_at", "environment",
                            "targets", "summary", "findings", "run_id", "since_last_run", "trend"]
    assert report["tool"] == "regguard"
    assert report["version"] == "0.1.0"
    assert report["started_at"] == "2026-11-27T09:30:00.123456Z"
    assert report["finished_at"] == "2026-11-27T09:31:05Z"
    assert report["environment"] == "prod"


def test_targets_and_summary() -> None:
    report = render()
    assert report["targets"][1] == {
        "name": "core", "kind": "ecr", "complete": False,
        "errors": ["plain_http: connection refused"], "warnings": [], "requests": 3, "duration_s": 0.5,
    }
    assert report["targets"][0]["duration_s"] == 1.234
    assert report["summary"] == {"pass": 2, "fail": 2, "error": 1, "not_applicable": 1,
                                 "manual": 1, "waived": 0}


def test_findings_use_the_model_shape_in_report_order() -> None:
    findings = render()["findings"]
    assert len(findings) == 7
    expected_keys = {"rule", "title", "status", "severity", "target", "kind", "resource",
                     "message", "controls", "evidence", "remediation", "waiver"}
    assert all(set(f) == expected_keys for f in findings)
    assert [f["rule"] for f in findings] == [
        "RG-AUTH-001", "RG-TAG-001", "RG-TLS-001", "RG-LOG-001", "RG-TLS-003", "RG-FIT-001",
        "RG-AUTH-002",
    ]
    auth = findings[0]
    assert auth["controls"] == {"soc2": ["CC6.1"], "nist_800_53": ["AC-3", "AC-14"],
                                "fedramp": {"LOW": ["AC-3", "AC-14"],
                                            "MODERATE": ["AC-3", "AC-14"]}}
    assert auth["status"] == Status.FAIL.value


def test_evidence_is_redacted_but_kept() -> None:
    evidence = render()["findings"][0]["evidence"]
    assert evidence["password"] == REDACTED
    assert evidence["request"]["headers"]["Authorization"] == REDACTED
    assert evidence["url"] == f"https://admin:{REDACTED}@registry.internal:5000/v2/"
    assert evidence["status"] == 200
