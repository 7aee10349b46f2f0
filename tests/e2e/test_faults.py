"""Targets that refuse, hang, answer 5xx or garbage: their findings are
`error` with evidence, the other targets are still audited, exit code 3."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from audits.cli import main
from tests.e2e.fake_servers import closed_port, misbehaving_registry, silent_server


@pytest.fixture
def docker_config(tmp_path: Path) -> Path:
    path = tmp_path / "docker-config.json"
    path.write_text(json.dumps({"auths": {"ghcr.io": {}}, "credsStore": "desktop"}))
    return path


def test_broken_targets_are_errors_and_the_rest_is_audited(tmp_path: Path, docker_config: Path) -> None:
    with misbehaving_registry("5xx") as five, misbehaving_registry("garbage") as garbage, silent_server() as hung:
        config = {
            "environment": "prod",
            "targets": [
                {"name": "refused", "kind": "distribution", "url": f"https://127.0.0.1:{closed_port()}", "timeout": 2},
                {"name": "hung", "kind": "distribution", "url": hung, "timeout": 1},
                {"name": "five", "kind": "distribution", "url": five, "timeout": 2},
                {"name": "garbage", "kind": "distribution", "url": garbage, "timeout": 2},
                {"name": "laptop", "kind": "docker-config", "path": str(docker_config)},
            ],
        }
        path = tmp_path / "regguard.yaml"
        path.write_text(yaml.safe_dump(config))
        out = tmp_path / "out"
        t0 = time.monotonic()
        code = main(["audit", "-c", str(path), "--format", "json", "--output", str(out)])
        elapsed = time.monotonic() - t0

    assert code == 3
    assert elapsed < 60, "a hung target must time out, not stall the audit"
    report = json.loads((out / "report.json").read_text())
    by_target: dict[str, list[dict[str, object]]] = {}
    for f in report["findings"]:
        by_target.setdefault(str(f["target"]), []).append(f)

    for broken in ("refused", "hung", "five", "garbage"):
        findings = by_target[broken]
        # Everything that needs the repository listing must not pass on a broken listing.
        assert not any(f["status"] == "pass" and f["rule"].startswith(("RG-TAG", "RG-SIGN")) for f in findings), broken
        errors = [f for f in findings if f["status"] == "error"]
        assert errors, f"{broken}: expected error findings"
        assert all(f["evidence"] for f in errors), f"{broken}: error findings carry evidence"
    summaries = {t["name"]: t for t in report["targets"]}
    assert not summaries["refused"]["complete"]
    assert summaries["laptop"]["complete"]
    laptop = {f["rule"]: f["status"] for f in by_target["laptop"]}
    assert laptop["RG-CRED-003"] == "pass"

    messages = " ".join(str(f["message"]) for f in by_target["refused"])
    assert "refused" in messages.lower()
    messages = " ".join(str(f["message"]) for f in by_target["five"])
    assert "503" in messages
    # A 503 is not a refusal: RG-AUTH-001 cannot pass on it.
    assert not any(f["rule"] == "RG-AUTH-001" and f["status"] == "pass" for f in by_target["five"])
    messages = " ".join(str(f["message"]) for f in by_target["garbage"]).lower()
    assert "json" in messages
    messages = " ".join(str(f["message"]) for f in by_target["hung"]).lower()
    assert "timed out" in messages or "timeout" in messages
