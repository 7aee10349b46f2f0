"""The catalog in code is the catalog of RULES.md: same ids, titles,
severities and SOC 2 mappings, complete metadata, and NIST mappings that
exist in rev5 (with the documented corrections)."""

from __future__ import annotations

from pathlib import Path

import pytest

from audits.controls import validate_catalog
from audits.model import Severity
from audits.rules import RULE_MODULES
from audits.rules.registry import catalog

RULES_MD = Path(__file__).resolve().parents[2] / ".." / "shared" / "RULES.md"
SEED_SECTIONS = {"TLS", "Authentication", "Tagging", "Signing", "Decision matrix", "Pro tips", "Auditor"}
PROD_ONLY = {
    "RG-TAG-001",
    "RG-TAG-003",
    "RG-TAG-004",
    "RG-SCAN-002",
    "RG-SIGN-001",
    "RG-SIGN-002",
    "RG-REP-001",
    "RG-SRC-001",
}
# Mappings deliberately changed from RULES.md after checking them against the rev5
# catalog (each has a comment at the rule saying why).
NIST_CORRECTIONS = {
    "RG-CRED-001": ("IA-5", "AC-2(3)"),
    "RG-CRED-002": ("IA-5",),
    "RG-CRED-003": ("IA-5(6)", "IA-5(7)"),
    "RG-TAG-004": ("SI-7", "CM-2"),
}
# Used when ../shared is not mounted (e.g. a bare checkout).
FALLBACK_IDS = (
    [f"RG-TLS-00{i}" for i in (1, 2, 3)]
    + [f"RG-AUTH-00{i}" for i in (1, 2, 3)]
    + [f"RG-CRED-00{i}" for i in (1, 2, 3)]
    + [f"RG-TAG-00{i}" for i in (1, 2, 3, 4)]
    + ["RG-SCAN-001", "RG-SCAN-002", "RG-SIGN-001", "RG-SIGN-002", "RG-SIGN-003", "RG-RET-001"]
    + ["RG-MON-001", "RG-MON-002", "RG-ENC-001", "RG-NET-001", "RG-REP-001", "RG-FIT-001"]
    + ["RG-SRC-001", "RG-SRC-002"]
)


def rules_md_rows() -> dict[str, list[str]]:
    """id -> [id, rule, passes when, severity, SOC2, NIST] from the table."""
    rows: dict[str, list[str]] = {}
    for line in RULES_MD.read_text(encoding="utf-8").splitlines():
        if line.startswith("| RG-"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows[cells[0]] = cells
    return rows


def split(cell: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in cell.split(",") if p.strip())


@pytest.fixture(scope="module")
def table() -> dict[str, list[str]]:
    if not RULES_MD.exists():
        return {}
    return rules_md_rows()


def test_catalog_has_exactly_the_ids_of_rules_md(table: dict[str, list[str]]) -> None:
    expected = sorted(table) if table else sorted(FALLBACK_IDS)
    assert len(expected) == 27
    assert sorted(catalog()) == expected


def test_metadata_matches_rules_md(table: dict[str, list[str]]) -> None:
    if not table:
        pytest.fail(f"{RULES_MD} not found")
    for rule_id, rule in catalog().items():
        _, title, _, severity, soc2, nist = table[rule_id]
        meta = rule.meta
        assert meta.title == title, rule_id
        assert meta.severity is Severity.parse(severity), rule_id
        assert meta.soc2 == split(soc2), rule_id
        assert meta.nist_800_53 == NIST_CORRECTIONS.get(rule_id, split(nist)), rule_id


@pytest.mark.parametrize("rule_id", sorted(FALLBACK_IDS))
def test_metadata_is_complete(rule_id: str) -> None:
    meta = catalog()[rule_id].meta
    assert meta.seed_section in SEED_SECTIONS
    assert len(meta.rationale) > 120 and meta.rationale.endswith(".")
    assert meta.implemented_for(), f"{rule_id} is implemented for no kind"
    assert meta.prod_only is (rule_id in PROD_ONLY)


def test_each_rule_lives_in_its_area_module() -> None:
    area = {"TLS": "tls", "AUTH": "auth", "CRED": "credentials", "TAG": "tags", "SCAN": "scanning"}
    area |= {"SIGN": "signing", "RET": "retention", "MON": "monitoring", "ENC": "encryption"}
    area |= {"NET": "network", "REP": "replication", "FIT": "fit", "SRC": "sources"}
    assert set(area.values()) == set(RULE_MODULES)
    for rule_id, rule in catalog().items():
        assert rule.func.__module__ == f"audits.rules.{area[rule_id.split('-')[1]]}", rule_id
        assert rule.func.__name__ != "<lambda>"


def test_nist_mappings_all_exist_and_are_current() -> None:
    assert validate_catalog() == []
