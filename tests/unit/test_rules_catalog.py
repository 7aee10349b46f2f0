"""The catalog in code is the catalog of RULES.md: same ids, titles,
severities and SOC 2 mappings, complete metadata, and NIST mappings that
exist in rev5 (with the documented corrections).

RULES.md (the v1 rule spec) lives beside the project, not in it, so the columns
compared here are committed below as `RULES_MD_V1`."""

from __future__ import annotations

import pytest

from audits.controls import validate_catalog
from audits.model import Severity
from audits.rules import RULE_MODULES
from audits.rules.registry import catalog

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
# id -> (rule, default severity, SOC2, NIST 800-53): the columns of the table in
# RULES.md "regguard rule catalog (v1)", copied verbatim (the "passes when" column left out).
RULES_MD_V1 = {
    "RG-TLS-001": ("Registry API only over HTTPS", "high", "CC6.7", "SC-8, SC-8(1)"),
    "RG-TLS-002": ("Certificate trustworthy", "high", "CC6.7", "SC-8, SC-12, SC-23"),
    "RG-TLS-003": ("Certificate not about to expire", "medium", "CC6.7", "SC-12"),
    "RG-AUTH-001": ("No anonymous access", "critical", "CC6.1", "AC-3, AC-14"),
    "RG-AUTH-002": ("Basic auth never over plain HTTP", "critical", "CC6.1, CC6.7", "IA-5(1), SC-8"),
    "RG-AUTH-003": ("No shared admin credentials", "high", "CC6.1", "AC-2, IA-2, IA-5"),
    "RG-CRED-001": ("Short-lived credentials", "high", "CC6.1", "IA-5(1), AC-2(3)"),
    "RG-CRED-002": ("Credentials rotated", "medium", "CC6.1", "IA-5(1)"),
    "RG-CRED-003": ("No plaintext client credentials", "high", "CC6.1", "IA-5(1), IA-5(7)"),
    "RG-TAG-001": ("No `latest` in production", "high", "CC8.1", "CM-2, CM-3"),
    "RG-TAG-002": ("Tags immutable", "high", "CC8.1", "CM-2, CM-3, SI-7"),
    "RG-TAG-003": ("Versioned tags", "low", "CC8.1", "CM-2"),
    "RG-TAG-004": ("References pinned", "medium", "CC8.1", "SI-7, CM-14"),
    "RG-SCAN-001": ("Vulnerability scanning on", "high", "CC7.1", "RA-5, SI-2"),
    "RG-SCAN-002": ("No unresolved critical/high vulnerabilities", "high", "CC7.1", "RA-5, SI-2"),
    "RG-SIGN-001": ("Production images signed", "high", "CC8.1", "SI-7, SI-7(15), CM-14"),
    "RG-SIGN-002": ("Signatures verify", "high", "CC8.1", "SI-7(15)"),
    "RG-SIGN-003": ("Registry enforces signing", "medium", "CC8.1", "SI-7, CM-14"),
    "RG-RET-001": ("Retention policy set", "medium", "CC8.1", "SI-12, CM-8"),
    "RG-MON-001": ("Access is logged", "medium", "CC7.2", "AU-2, AU-12"),
    "RG-MON-002": ("No pull-count spike", "medium", "CC7.2", "SI-4"),
    "RG-ENC-001": ("Encrypted at rest with a customer key", "medium", "CC6.1", "SC-28, SC-12"),
    "RG-NET-001": ("Network exposure restricted", "high", "CC6.6", "SC-7"),
    "RG-REP-001": ("Replicated for availability", "low", "A1.2", "CP-9, CP-10"),
    "RG-FIT-001": ("Registry fits its use case", "medium", "CC3.2", "PL-8, SA-8"),
    "RG-SRC-001": ("Trusted image sources", "medium", "CC6.8", "CM-7(5), SR-3"),
    "RG-SRC-002": ("No insecure registries referenced", "high", "CC6.7", "SC-8, CM-7"),
}


def split(cell: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in cell.split(",") if p.strip())


def test_catalog_has_exactly_the_ids_of_rules_md() -> None:
    assert len(RULES_MD_V1) == 27
    assert sorted(catalog()) == sorted(RULES_MD_V1)


@pytest.mark.parametrize("rule_id", sorted(RULES_MD_V1))
def test_metadata_matches_rules_md(rule_id: str) -> None:
    title, severity, soc2, nist = RULES_MD_V1[rule_id]
    meta = catalog()[rule_id].meta
    assert meta.title == title
    assert meta.severity is Severity.parse(severity)
    assert meta.soc2 == split(soc2)
    assert meta.nist_800_53 == NIST_CORRECTIONS.get(rule_id, split(nist))


@pytest.mark.parametrize("rule_id", sorted(RULES_MD_V1))
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
