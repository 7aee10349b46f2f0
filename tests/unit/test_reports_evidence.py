"""The evidence bundle: per-control evidence, manifest hashes, redaction."""

from __future__ import annotations

import hashlib
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from audits.model import Fact, TlsFacts
from reports import write_evidence_bundle
from tests.unit import report_fixtures as fx


def bundle(tmp_path: Path, facts: Any = None) -> zipfile.ZipFile:
    path = write_evidence_bundle(fx.audit_result(), fx.rules(), tmp_path, facts)
    assert path == tmp_path / "evidence-bundle.zip"
    return zipfile.ZipFile(path)


def test_layout(tmp_path: Path) -> None:
    names = bundle(tmp_path).namelist()
    assert names == sorted(names)
    assert {"report.json", "README.txt", "MANIFEST.json"} <= set(names)
    assert {"controls/soc2/CC6.1.json", "controls/soc2/CC6.7.json",
            "controls/nist-800-53/ia-5.1.json", "controls/nist-800-53/sc-8.1.json"} <= set(names)
    assert not any(n.startswith("facts/") for n in names)


def test_manifest_hashes_every_other_file(tmp_path: Path) -> None:
    archive = bundle(tmp_path)
    manifest = json.loads(archive.read("MANIFEST.json"))
    listed = {e["path"]: e for e in manifest["files"]}
    assert set(listed) == set(archive.namelist()) - {"MANIFEST.json"}
    for name, entry in listed.items():
        data = archive.read(name)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["bytes"] == len(data)


def test_control_file_lists_its_findings_with_evidence(tmp_path: Path) -> None:
    doc = json.loads(bundle(tmp_path).read("controls/nist-800-53/sc-8.json"))
    assert doc["control"] == "SC-8"
    assert doc["control_id"] == "sc-8"
    assert doc["title"] == "Transmission Confidentiality and Integrity"
    assert doc["fedramp_baselines"] == ["LOW", "MODERATE"]
    assert doc["standing"] == "error"
    assert [(f["rule"], f["status"]) for f in doc["findings"]] == [
        ("RG-TLS-001", "error"), ("RG-AUTH-002", "not_applicable")]
    assert doc["findings"][0]["evidence"] == {"source": "GET http://core:80/v2/"}
    assert [r["id"] for r in doc["rules"]] == ["RG-AUTH-002", "RG-TLS-001"]
    soc2 = json.loads(bundle(tmp_path).read("controls/soc2/CC6.1.json"))
    assert soc2["findings"][0]["evidence"]["password"] == "***REDACTED***"


def test_report_json_matches_the_json_format(tmp_path: Path) -> None:
    from reports import get_reporter

    inside = json.loads(bundle(tmp_path).read("report.json"))
    assert inside == json.loads(get_reporter("json").render(fx.audit_result(), fx.rules()))


def test_readme_explains_the_layout(tmp_path: Path) -> None:
    readme = bundle(tmp_path).read("README.txt").decode()
    for part in ("report.json", "controls/soc2/", "controls/nist-800-53/", "MANIFEST.json",
                 'environment "prod"'):
        assert part in readme


def test_facts_are_converted_redacted_and_safely_named(tmp_path: Path) -> None:
    at = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
    tls = TlsFacts("registry.internal", 5000, "TLSv1.3", "TLS_AES_256_GCM_SHA384", True, None,
                   True, "system")
    facts = {
        "edge": {"tls": Fact.ok(tls, "TLS handshake registry.internal:5000", at),
                 "login": {"username": "ci", "password": fx.LEAKED_PASSWORD}},
        "../../etc/passwd": {"x": 1},
    }
    archive = bundle(tmp_path, facts)
    names = archive.namelist()
    assert "facts/edge.json" in names
    assert all(".." not in n and not n.startswith("/") for n in names)
    edge = json.loads(archive.read("facts/edge.json"))
    assert edge["facts"]["tls"]["state"] == "ok"
    assert edge["facts"]["tls"]["value"]["protocol"] == "TLSv1.3"
    assert edge["facts"]["tls"]["observed_at"] == "2026-11-27T09:30:00Z"
    assert edge["facts"]["login"] == {"username": "ci", "password": "***REDACTED***"}
    for name in names:
        assert not fx.has_secret(archive.read(name).decode())


def test_same_audit_gives_identical_bytes(tmp_path: Path) -> None:
    first = write_evidence_bundle(fx.audit_result(), fx.rules(), tmp_path / "a").read_bytes()
    second = write_evidence_bundle(fx.audit_result(), fx.rules(), tmp_path / "b").read_bytes()
    assert first == second
