"""OSCAL 1.2.1 Assessment Results: schema-valid, control states, evidence."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import jsonschema
import pydantic
import pytest

from audits.model import Status
from reports import get_reporter
from reports.oscal import assessment_results, validated
from tests.unit import report_fixtures as fx


@pytest.fixture(scope="module")
def validator() -> Any:
    return fx.oscal_validator()


def render(result: Any = None) -> dict[str, Any]:
    text = get_reporter("oscal").render(result or fx.audit_result(), fx.rules())
    return json.loads(text)  # type: ignore[no-any-return]


def the_result(doc: dict[str, Any]) -> dict[str, Any]:
    [result] = doc["assessment-results"]["results"]
    return result  # type: ignore[no-any-return]


def test_validates_against_the_oscal_schema(validator: Any) -> None:
    validator.validate(render())
    validator.validate(render(fx.empty_result()))


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        (("target", "target-id"), "IA 5(1)"),  # not a TokenDatatype
        (("target", "status", "state"), "partially-satisfied"),
        (("uuid",), "not-a-uuid"),
    ],
)
def test_the_schema_check_is_real(validator: Any, path: tuple[str, ...], bad: str) -> None:
    doc = copy.deepcopy(render())
    node = the_result(doc)["findings"][0]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = bad
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(doc)


def test_unicode_token_patterns_are_checked_with_regex(validator: Any) -> None:
    doc = copy.deepcopy(render())
    the_result(doc)["findings"][0]["target"]["target-id"] = "contrôle-1"  # \p{L} allows ô
    validator.validate(doc)


def test_metadata_declares_oscal_121() -> None:
    metadata = render()["assessment-results"]["metadata"]
    assert metadata["oscal-version"] == "1.2.1"
    assert datetime.fromisoformat(metadata["last-modified"]) == fx.FINISHED


def test_findings_target_controls_with_states() -> None:
    findings = the_result(render())["findings"]
    states = {f["target"]["target-id"]: (f["target"]["status"]["state"],
                                         f["target"]["status"].get("reason"))
              for f in findings}
    assert states["ac-3"] == ("not-satisfied", "fail")
    assert states["sc-12"] == ("satisfied", "pass")
    assert states["sc-8"] == ("not-satisfied", "other")  # TLS-001 error, AUTH-002 n/a
    assert states["au-2"] == ("not-satisfied", "other")  # manual only
    assert states["cm-2"] == ("not-satisfied", "fail")
    # IA-5(1) has only a not-applicable finding: nothing to claim either way
    assert "ia-5.1" not in states
    assert all(f["target"]["type"] == "objective-id" for f in findings)


def test_enhancement_ids_are_lower_case_oscal_ids() -> None:
    ok = fx.finding("RG-AUTH-002", Status.PASS, "edge", "edge", "no basic over http")
    findings = the_result(render(fx.audit_result((ok,))))["findings"]
    ia = next(f for f in findings if f["target"]["target-id"] == "ia-5.1")
    assert ia["title"] == "IA-5(1) Password-based Authentication"
    assert ia["target"]["status"]["state"] == "satisfied"


def test_observations_carry_redacted_evidence_and_link_to_findings() -> None:
    result = the_result(render())
    observations = {o["uuid"]: o for o in result["observations"]}
    assert len(observations) == 7
    ac3 = next(f for f in result["findings"] if f["target"]["target-id"] == "ac-3")
    [link] = ac3["related-observations"]
    obs = observations[link["observation-uuid"]]
    props = {p["name"]: p["value"] for p in obs["props"]}
    assert props["rule"] == "RG-AUTH-001"
    assert props["status"] == "fail"
    assert props["resource"] == f"app/{fx.SCRIPT}"
    evidence = json.loads(obs["relevant-evidence"][0]["remarks"])
    assert evidence["password"] == "***REDACTED***"
    assert obs["relevant-evidence"][0]["description"].startswith("Observed via GET https://")
    assert datetime.fromisoformat(obs["collected"]) == datetime(2026, 11, 27, 9, 30, 2, tzinfo=UTC)
    assert obs["methods"] == ["TEST"]


def test_reviewed_controls_cover_the_catalog() -> None:
    selection = the_result(render())["reviewed-controls"]["control-selections"][0]
    ids = [c["control-id"] for c in selection["include-controls"]]
    assert {"ac-3", "ac-14", "ia-5.1", "sc-8", "sc-8.1", "sc-12", "cm-2", "cm-3", "au-2"} == set(ids)


def test_uuids_are_deterministic() -> None:
    assert render() == render()


def test_trestle_rejects_invalid_documents() -> None:
    doc = assessment_results(fx.audit_result(), fx.rules())
    doc["assessment-results"]["results"][0]["findings"][0]["target"]["status"]["state"] = "meh"
    with pytest.raises(pydantic.ValidationError):
        validated(doc)
