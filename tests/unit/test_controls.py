"""Control lookups against the official NIST rev5 and FedRAMP rev5 data."""

from __future__ import annotations

import pytest

from audits.controls import (
    controls_for,
    fedramp_levels,
    label_to_id,
    nist_catalog,
    nist_title,
    validate_catalog,
)
from audits.model import Severity
from audits.rules.registry import Remediation, Rule, RuleContext, RuleMeta, catalog


def meta_with(*labels: str) -> RuleMeta:
    return RuleMeta(
        id="RG-TEST-001",
        title="t",
        rationale="r",
        seed_section="Auditor",
        severity=Severity.LOW,
        kinds=frozenset({"ecr"}),
        soc2=("CC6.1",),
        nist_800_53=labels,
        remediation={"distribution": Remediation("cli", "Args()")},
    )


def no_verdicts(ctx: RuleContext, facts: object) -> list[object]:
    return []


@pytest.mark.parametrize(
    ("label", "oscal_id"), [("IA-5(1)", "ia-5.1"), ("SC-8", "sc-8"), ("CM-7(5)", "cm-7.5"), ("SI-7(15)", "si-7.15")]
)
def test_label_to_id(label: str, oscal_id: str) -> None:
    assert label_to_id(label) == oscal_id


@pytest.mark.parametrize("bad", ["ia-5", "IA5", "IA-5(a)", "IA-5 (1)", ""])
def test_malformed_labels_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        label_to_id(bad)


def test_titles_come_from_the_catalog() -> None:
    assert nist_title("IA-5(1)") == "Password-based Authentication"
    assert nist_title("SC-8") == "Transmission Confidentiality and Integrity"
    with pytest.raises(ValueError, match="not in NIST"):
        nist_title("ZZ-1")
    assert len(nist_catalog()) == 1196


def test_fedramp_levels() -> None:
    assert fedramp_levels("SC-8") == ("LOW", "MODERATE", "HIGH")
    assert fedramp_levels("SC-23") == ("MODERATE", "HIGH")
    assert fedramp_levels("CM-14") == ("HIGH",)
    assert fedramp_levels("SR-4") == ()


def test_controls_for_lists_labels_per_baseline() -> None:
    controls = controls_for(catalog()["RG-SIGN-001"].meta)
    assert controls.nist_800_53 == ("SI-7", "SI-7(15)", "CM-14")
    assert controls.soc2 == ("CC8.1",)
    assert dict(controls.fedramp) == {
        "LOW": (),
        "MODERATE": ("SI-7",),
        "HIGH": ("SI-7", "SI-7(15)", "CM-14"),
    }


def test_every_rule_maps_to_some_fedramp_baseline() -> None:
    for rule_id, rule in catalog().items():
        assert controls_for(rule.meta).fedramp["HIGH"], rule_id


def test_validate_catalog_flags_withdrawn_unknown_and_malformed() -> None:
    withdrawn = next(e for e in nist_catalog().values() if e["withdrawn"])
    rules = {"RG-TEST-001": Rule(meta_with(withdrawn["label"], "ZZ-9", "bogus", "AC-3"), no_verdicts)}
    problems = validate_catalog(rules)  # type: ignore[arg-type]
    assert len(problems) == 3
    assert "withdrawn" in problems[0] and "not in NIST" in problems[1] and "bogus" in problems[2]
    assert validate_catalog({"RG-TEST-001": Rule(meta_with(), no_verdicts)}) == [  # type: ignore[arg-type]
        "RG-TEST-001: no NIST 800-53 control mapped"
    ]


def test_shipped_catalog_is_valid() -> None:
    assert validate_catalog() == []
