"""JUnit XML: valid against the strict Ant schema, one suite per target."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest
import xmlschema

from audits.model import Status
from reports.junit import JunitReporter, junit_timestamp
from tests.unit import report_fixtures as fx


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(fx.COMPLIANCE_DATA / "junit.xsd"))


def render(result: Any = None) -> str:
    return JunitReporter(hostname="audit-host").render(result or fx.audit_result(), fx.rules())


def test_validates_against_the_strict_schema(schema: xmlschema.XMLSchema) -> None:
    schema.validate(render())
    schema.validate(render(fx.empty_result()))


def test_the_schema_check_is_real(schema: xmlschema.XMLSchema) -> None:
    broken = render().replace('hostname="audit-host"', "", 1)
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        schema.validate(broken)


def test_one_suite_per_target_with_counts() -> None:
    root = ET.fromstring(render())
    suites = root.findall("testsuite")
    assert [(s.get("name"), s.get("id"), s.get("package")) for s in suites] == [
        ("edge", "0", "regguard.distribution"),
        ("core", "1", "regguard.ecr"),
        ("manifests", "2", "regguard.image-refs"),
    ]
    edge, core, _ = suites
    assert (edge.get("tests"), edge.get("failures"), edge.get("errors"), edge.get("skipped")) == (
        "3", "1", "0", "1")
    assert (core.get("tests"), core.get("failures"), core.get("errors"), core.get("skipped")) == (
        "3", "0", "1", "1")
    assert edge.get("timestamp") == "2026-11-27T09:30:00"
    assert edge.get("time") == "1.234"
    assert core.findtext("system-err") == "plain_http: connection refused"
    props = {p.get("name"): p.get("value") for p in core.iter("property")}
    assert props["target.complete"] == "false"
    assert props["environment"] == "prod"


def test_cases_map_status_to_elements() -> None:
    root = ET.fromstring(render())
    cases = {(c.get("classname"), c.get("name")): c for c in root.iter("testcase")}
    fail = cases[("RG-AUTH-001", f"app/{fx.SCRIPT}")]
    failure = fail.find("failure")
    assert failure is not None
    assert failure.get("type") == "critical"
    assert "repository pullable anonymously" in (failure.get("message") or "")
    assert "fix-rg-auth-001 on distribution --now" in (failure.text or "")
    error = cases[("RG-TLS-001", "core")].find("error")
    assert error is not None and "connection refused" in (error.get("message") or "")
    manual = cases[("RG-LOG-001", "registry.internal:5000")].find("skipped")
    assert manual is not None and (manual.get("message") or "").startswith("manual check:")
    na = cases[("RG-AUTH-002", "core")].find("skipped")
    assert na is not None and (na.get("message") or "").startswith("not applicable:")
    passed = cases[("RG-TLS-003", "registry.internal:5000")]
    assert list(passed) == []


def test_control_characters_and_unknown_targets_stay_valid(
    schema: xmlschema.XMLSchema,
) -> None:
    odd = fx.finding("RG-AUTH-001", Status.FAIL, "ghost", "bad\x00name\x1b[31m",
                     "bell\x07 in message", {"raw": "\x01\x02"})
    xml = render(fx.audit_result((odd,)))
    schema.validate(xml)
    root = ET.fromstring(xml)
    ghost = root.findall("testsuite")[-1]
    assert ghost.get("name") == "ghost"
    assert ghost.find("testcase").get("name") == "badname[31m"  # type: ignore[union-attr]


def test_timestamp_has_no_zone_or_fraction() -> None:
    assert junit_timestamp(fx.STARTED) == "2026-11-27T09:30:00"
