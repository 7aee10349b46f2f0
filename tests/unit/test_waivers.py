"""Waivers: a waived failure is `waived` (never `pass`) with reason, approver
and expiry in every format; expired waivers leave the failure failing; a
malformed waiver is a config error."""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from audits.config import ConfigError, load_config
from audits.engine import exit_code
from audits.model import Severity, Status
from audits.waivers import Waiver, apply_waivers
from reports import get_reporter
from tests.unit import report_fixtures as fx

TODAY = date(2026, 12, 1)


def _waiver(**overrides: Any) -> Waiver:
    fields = {"rule": "RG-AUTH-001", "target": "edge", "resource": "app/*", "reason": "legacy mirror, see RISK-12",
              "approved_by": "ciso@example.com", "expires": "2027-01-31"}
    return Waiver.model_validate({**fields, **overrides})


def _waived_result() -> Any:
    waived = apply_waivers(fx.findings(), [_waiver()], TODAY)
    return dataclasses.replace(fx.audit_result(), findings=tuple(waived))


def test_a_covered_failure_is_waived_with_reason_approver_and_expiry() -> None:
    [auth] = [f for f in apply_waivers(fx.findings(), [_waiver()], TODAY) if f.rule == "RG-AUTH-001"]
    assert auth.status is Status.WAIVED
    assert auth.waiver is not None and auth.waiver.as_dict() == {
        "reason": "legacy mirror, see RISK-12", "approved_by": "ciso@example.com", "expires": "2027-01-31"}
    assert "waived until 2027-01-31" in auth.message


def test_only_failures_are_waived_and_other_targets_are_untouched() -> None:
    waivers = [_waiver(rule="RG-TLS-001", target=None, resource=None), _waiver(target="core")]
    after = {f.identity: f.status for f in apply_waivers(fx.findings(), waivers, TODAY)}
    before = {f.identity: f.status for f in fx.findings()}
    assert after == before  # RG-TLS-001 is an error (not judged), RG-AUTH-001 on edge is not covered


def test_an_expired_waiver_leaves_the_failure_failing_and_says_so() -> None:
    [auth] = [f for f in apply_waivers(fx.findings(), [_waiver(expires="2026-11-30")], TODAY)
              if f.rule == "RG-AUTH-001"]
    assert auth.status is Status.FAIL
    assert "waiver expired on 2026-11-30" in auth.message


def test_waived_failures_do_not_fail_the_run_but_are_never_counted_as_passes() -> None:
    result = _waived_result()
    summary = result.summary()
    assert summary["waived"] == 1 and summary["pass"] == fx.audit_result().summary()["pass"]
    ok = dataclasses.replace(result, findings=tuple(f for f in result.findings if f.status is not Status.ERROR),
                             targets=tuple(dataclasses.replace(t, complete=True) for t in result.targets))
    assert exit_code(ok, Severity.CRITICAL) == 0


def test_every_format_reports_the_waiver() -> None:
    result, rules = _waived_result(), fx.rules()
    report = json.loads(get_reporter("json").render(result, rules))
    [entry] = [f for f in report["findings"] if f["status"] == "waived"]
    assert entry["waiver"]["approved_by"] == "ciso@example.com"
    assert "ciso@example.com" in get_reporter("md").render(result, rules)
    assert "ciso@example.com" in get_reporter("html").render(result, rules)
    junit = ET.fromstring(get_reporter("junit").render(result, rules))
    assert any("waived failure" in (s.get("message") or "") for s in junit.iter("skipped"))


def test_sarif_carries_the_waiver_as_an_accepted_suppression() -> None:
    log = json.loads(get_reporter("sarif").render(_waived_result(), fx.rules()))
    fx.sarif_validator().validate(log)
    [waived] = [r for r in log["runs"][0]["results"] if r["properties"]["status"] == "waived"]
    [suppression] = waived["suppressions"]
    assert suppression["kind"] == "external" and suppression["status"] == "accepted"
    assert "legacy mirror" in suppression["justification"] and "ciso@example.com" in suppression["justification"]


def test_oscal_carries_the_waiver_as_an_approved_deviation() -> None:
    doc = json.loads(get_reporter("oscal").render(_waived_result(), fx.rules()))
    fx.oscal_validator().validate(doc)
    [result] = doc["assessment-results"]["results"]
    [risk] = result["risks"]
    assert risk["status"] == "deviation-approved" and risk["statement"] == "legacy mirror, see RISK-12"
    assert risk["deadline"].startswith("2027-01-31")
    linked = [f for f in result["findings"] if f.get("related-risks")]
    assert linked and all(f["target"]["status"]["state"] == "not-satisfied" for f in linked)


def _config(tmp_path: Path, waiver: dict[str, Any]) -> Path:
    path = tmp_path / "regguard.yaml"
    path.write_text(yaml.safe_dump({"targets": [{"name": "laptop", "kind": "docker-config", "path": "x.json"}],
                                    "waivers": [waiver]}))
    return path


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"reason": None}, "reason"),
        ({"approved_by": "  "}, "approved_by"),
        ({"expires": "next year"}, "expires"),
        ({"rule": "RG-NOPE-001"}, "unknown rule"),
        ({"owner": "me"}, "owner"),
    ],
)
def test_a_malformed_waiver_is_a_config_error(tmp_path: Path, change: dict[str, Any], complaint: str) -> None:
    waiver = {"rule": "RG-AUTH-001", "reason": "r", "approved_by": "a", "expires": "2027-01-01", **change}
    waiver = {k: v for k, v in waiver.items() if v is not None}
    with pytest.raises(ConfigError, match=complaint):
        load_config(_config(tmp_path, waiver))


def test_a_well_formed_waiver_loads(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, {"rule": "RG-AUTH-001", "resource": "legacy/*", "reason": "r",
                                            "approved_by": "a", "expires": "2027-01-01"}))
    assert config.waivers[0].expires == date(2027, 1, 1)


def test_a_waiver_for_a_target_covers_its_scopes_and_a_glob_picks_some() -> None:
    [auth] = [f for f in fx.findings() if f.rule == "RG-AUTH-001" and f.status is Status.FAIL][:1]
    scoped = [dataclasses.replace(auth, target=f"org-ecr/{account}/{region}")
              for account in ("111111111111", "222222222222") for region in ("us-east-1", "eu-west-1")]
    elsewhere = dataclasses.replace(auth, target="org-ecr-2/111111111111/us-east-1")

    def waived(target: str) -> list[str]:
        after = apply_waivers([*scoped, elsewhere], [_waiver(target=target, resource=None)], TODAY)
        return [f.target for f in after if f.status is Status.WAIVED]

    assert waived("org-ecr") == [f.target for f in scoped]  # not org-ecr-2
    assert waived("org-ecr/*/eu-west-1") == ["org-ecr/111111111111/eu-west-1", "org-ecr/222222222222/eu-west-1"]
    assert waived("org-ecr/222222222222/us-east-1") == ["org-ecr/222222222222/us-east-1"]
