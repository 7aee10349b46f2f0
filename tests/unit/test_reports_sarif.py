"""SARIF 2.1.0: schema-valid, rules described, only fail/error as results."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from audits.model import Status
from reports import get_reporter
from tests.unit import report_fixtures as fx


def render(result: Any = None) -> dict[str, Any]:
    text = get_reporter("sarif").render(result or fx.audit_result(), fx.rules())
    return json.loads(text)  # type: ignore[no-any-return]


def test_validates_against_the_oasis_schema() -> None:
    fx.sarif_validator().validate(render())
    fx.sarif_validator().validate(json.loads(get_reporter("sarif").render(fx.empty_result(), {})))


def test_the_schema_check_is_real() -> None:
    log = render()
    log["version"] = "2.0.0"
    with pytest.raises(jsonschema.ValidationError):
        fx.sarif_validator().validate(log)


def test_driver_describes_every_rule() -> None:
    run = render()["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "regguard"
    assert driver["version"] == "0.1.0"
    ids = [r["id"] for r in driver["rules"]]
    assert ids == sorted(fx.rules())
    tag = next(r for r in driver["rules"] if r["id"] == "RG-AUTH-002")
    assert tag["shortDescription"]["text"] == "Basic auth never over plain HTTP"
    assert tag["fullDescription"]["text"] == "Why basic auth never over plain http matters."
    assert "fix-rg-auth-002 on distribution --now" in tag["help"]["text"]
    assert "Arg for RG-AUTH-002" in tag["help"]["text"]
    assert tag["properties"]["severity"] == "critical"
    assert tag["properties"]["security-severity"] == "9.5"
    assert {"CC6.1", "CC6.7", "IA-5(1)", "SC-8"} <= set(tag["properties"]["tags"])


def test_results_only_for_fail_and_error() -> None:
    results = render()["runs"][0]["results"]
    assert [(r["ruleId"], r["properties"]["status"]) for r in results] == [
        ("RG-AUTH-001", "fail"), ("RG-TAG-001", "fail"), ("RG-TLS-001", "error")]
    rules = render()["runs"][0]["tool"]["driver"]["rules"]
    for r in results:
        assert rules[r["ruleIndex"]]["id"] == r["ruleId"]


def test_levels_follow_severity_and_errors_are_open() -> None:
    by_rule = {r["ruleId"]: r for r in render()["runs"][0]["results"]}
    assert by_rule["RG-AUTH-001"]["level"] == "error"
    assert by_rule["RG-AUTH-001"]["kind"] == "fail"
    # the finding's own severity (medium) overrides the rule default (high)
    assert by_rule["RG-TAG-001"]["level"] == "warning"
    assert by_rule["RG-TAG-001"]["properties"]["security-severity"] == "5.5"
    error = by_rule["RG-TLS-001"]
    assert (error["kind"], error["level"]) == ("open", "none")
    assert error["message"]["text"].startswith("[core] Could not be judged:")


def test_errors_mark_the_invocation_unsuccessful() -> None:
    invocation = render()["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    [note] = invocation["toolExecutionNotifications"]
    assert note["level"] == "error"
    assert note["associatedRule"]["id"] == "RG-TLS-001"


def test_locations_logical_and_physical() -> None:
    by_rule = {r["ruleId"]: r for r in render()["runs"][0]["results"]}
    ref = by_rule["RG-TAG-001"]["locations"][0]
    assert ref["physicalLocation"] == {"artifactLocation": {"uri": "k8s/deploy.yaml"},
                                       "region": {"startLine": 12}}
    assert ref["logicalLocations"][0]["fullyQualifiedName"] == "manifests/k8s/deploy.yaml:12"
    auth = by_rule["RG-AUTH-001"]["locations"][0]
    assert "physicalLocation" not in auth
    assert auth["logicalLocations"][0]["name"] == f"app/{fx.SCRIPT}"


def test_absolute_paths_become_file_uris() -> None:
    extra = fx.finding("RG-TAG-001", Status.FAIL, "manifests", "/srv/app/Dockerfile:1",
                       "FROM nginx", {"file": "/srv/app/Dockerfile", "line": 1},
                       kind="image-refs")
    log = render(fx.audit_result((extra,)))
    fx.sarif_validator().validate(log)
    uris = [loc["physicalLocation"]["artifactLocation"]["uri"]
            for r in log["runs"][0]["results"] for loc in r["locations"]
            if "physicalLocation" in loc]
    assert "file:///srv/app/Dockerfile" in uris


def test_fingerprints_are_stable_and_distinct() -> None:
    first = [r["partialFingerprints"] for r in render()["runs"][0]["results"]]
    second = [r["partialFingerprints"] for r in render()["runs"][0]["results"]]
    assert first == second
    assert len({json.dumps(f) for f in first}) == len(first)


def test_unknown_rule_gets_a_fallback_descriptor() -> None:
    stray = fx.finding("RG-AUTH-001", Status.FAIL, "edge", "x", "stray")
    stray = fx.dataclasses_replace(stray, rule="RG-ENGINE-999", title="Engine check")
    log = render(fx.audit_result((stray,)))
    fx.sarif_validator().validate(log)
    ids = [r["id"] for r in log["runs"][0]["tool"]["driver"]["rules"]]
    assert ids[-1] == "RG-ENGINE-999"
