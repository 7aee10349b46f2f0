"""The decision matrix: the guide's recommendations, ranking and fit."""

from __future__ import annotations

import dataclasses

import pytest

from audits.matrix import KINDS, USE_CASES, fits, recommend

REQUIRED = {
    "air-gapped": {"harbor", "distribution"},
    "vulnerability-scanning": {"harbor", "ecr"},
    "fine-grained-access": {"harbor", "acr"},
    "compliance-audit-trail": {"harbor"},
    "enterprise-internal": {"harbor", "acr", "ecr", "gar"},
    "aws-native": {"ecr"},
    "gcp-native": {"gar"},
    "azure-native": {"acr"},
    "open-source-distribution": {"ghcr", "dockerhub"},
    "github-ci": {"ghcr"},
    "simple-self-hosted": {"distribution"},
    "multi-cloud": {"harbor"},
}


@pytest.mark.parametrize(("use_case", "kinds"), sorted(REQUIRED.items()))
def test_guide_rows(use_case: str, kinds: set[str]) -> None:
    assert set(USE_CASES[use_case].kinds) == kinds


def test_every_use_case_is_complete() -> None:
    assert {"cost-sensitive", "high-availability"} <= set(USE_CASES)
    for uc_id, uc in USE_CASES.items():
        assert uc.id == uc_id and uc.description and uc.choices
        for choice in uc.choices:
            assert choice.kind in KINDS and choice.reason


def test_compliance_audit_trail_needs_content_trust() -> None:
    choice = USE_CASES["compliance-audit-trail"].choice_for("harbor")
    assert choice is not None and choice.condition and "content trust" in choice.condition


def test_recommend_ranks_by_use_cases_satisfied() -> None:
    recs = recommend(["enterprise-internal", "vulnerability-scanning", "aws-native"])
    assert [r.kind for r in recs][:2] == ["ecr", "harbor"]
    assert recs[0].score == 3 and recs[0].missing == ()
    assert recs[1].satisfied == ("enterprise-internal", "vulnerability-scanning")
    assert all(r.score >= 1 for r in recs)
    assert {r.kind for r in recs} == {"ecr", "harbor", "acr", "gar"}


def test_recommend_carries_conditions_and_is_frozen() -> None:
    rec = recommend(["compliance-audit-trail"])[0]
    assert rec.kind == "harbor"
    assert rec.conditions and "content trust" in rec.conditions[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.score = 9  # type: ignore[misc]


def test_duplicate_use_cases_count_once() -> None:
    assert recommend(["aws-native", "aws-native"])[0].score == 1


def test_unknown_use_case_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="unknown use case 'blockchain'.*air-gapped"):
        recommend(["blockchain"])
    with pytest.raises(ValueError):
        fits("ecr", ["blockchain"])


def test_fits_requires_every_use_case_when_possible() -> None:
    ok, reasons = fits("harbor", ["air-gapped", "multi-cloud"])
    assert ok and len(reasons) == 2
    ok, reasons = fits("distribution", ["air-gapped", "multi-cloud"])
    assert not ok
    assert any("multi-cloud: not recommended; use harbor" in r for r in reasons)


def test_fits_falls_back_to_the_best_ranked_when_nothing_covers_all() -> None:
    ok, reasons = fits("ecr", ["aws-native", "gcp-native"])
    assert ok  # ecr and gar tie; neither can do both
    ok, reasons = fits("harbor", ["aws-native", "gcp-native"])
    assert not ok
    assert any("no kind covers every use case; best: ecr, gar" in r for r in reasons)


def test_config_validator_uses_the_matrix() -> None:
    from pathlib import Path

    from audits.config import ConfigError, parse_config

    raw = {"use_cases": ["quantum"], "targets": [{"name": "x", "kind": "image-refs", "paths": ["."]}]}
    with pytest.raises(ConfigError, match="air-gapped"):
        parse_config(raw, Path("regguard.yaml"))
