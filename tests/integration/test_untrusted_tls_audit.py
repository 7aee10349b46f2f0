"""A registry with an expired or self-signed certificate, audited end to end:
the TLS rules fail with the certificate as evidence, no credential is sent to
it, the facts behind authentication are errors, and other targets still pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from audits.cli import main
from sandbox.registry import RegistrySpec
from tests.integration.conftest import RegistryFactory

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(("cert", "expected"), [("expired", "expired"), ("self-signed", "self")])
def test_untrusted_certificate(
    registry_factory: RegistryFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cert: str, expected: str
) -> None:
    bad = registry_factory(RegistrySpec(name="bad", tls=True, users={"auditor": "pw-untrusted-1"}, cert=cert))
    good = registry_factory(RegistrySpec(name="good", tls=True, users={"auditor": "pw-trusted-2"}))
    for reg in (bad, good):
        for name, value in reg.env.items():
            monkeypatch.setenv(name, value)
    # The bad registry is checked against the sandbox CA, which did not issue its certificate
    # (self-signed) or whose certificate has expired.
    targets = [{**bad.targets[0], "ca_file": str(good.ca_file)}, good.targets[0]]
    config_path = tmp_path / "regguard.yaml"
    config_path.write_text(yaml.safe_dump({"environment": "prod", "targets": targets}))
    code = main(["audit", "-c", str(config_path), "--format", "json", "--output", str(tmp_path / "out")])
    report = json.loads((tmp_path / "out" / "report.json").read_text())

    assert code == 3
    findings = {(f["target"], f["rule"]): f for f in report["findings"]}
    tls = findings[("bad", "RG-TLS-002")]
    assert tls["status"] == "fail"
    assert expected in json.dumps(tls).lower()
    assert tls["evidence"], "the failure carries the certificate evidence"
    repos = findings[("bad", "RG-TAG-001")]
    assert repos["status"] == "error"
    assert "tls verification failed" in repos["message"].lower()
    assert findings[("good", "RG-TLS-002")]["status"] == "pass"
    assert findings[("good", "RG-AUTH-001")]["status"] == "pass"
