"""A planted canary password never reaches any report, log, history file or
terminal output — neither when it works nor when the registry rejects it."""

from __future__ import annotations

import base64
import json
import zipfile
from pathlib import Path

import pytest
import yaml

from audits.cli import main
from sandbox.images import build_image, push_with_skopeo, write_layout
from sandbox.registry import RegistrySpec
from tests.integration.conftest import RegistryFactory

pytestmark = pytest.mark.integration

CANARY = "canary-Zq8v-3141-do-not-leak"


def _texts(root: Path) -> dict[str, str]:
    """Every file under root as text, zip members included."""
    out: dict[str, str] = {}
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as zf:
                for name in zf.namelist():
                    out[f"{path}!{name}"] = zf.read(name).decode("utf-8", "replace")
        else:
            out[str(path)] = path.read_bytes().decode("utf-8", "replace")
    return out


@pytest.mark.parametrize("password_given", [CANARY, CANARY + "-wrong"])
def test_canary_password_never_leaks(
    registry_factory: RegistryFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    password_given: str,
) -> None:
    reg = registry_factory(RegistrySpec(name="canary", tls=True, users={"auditor": CANARY}))
    layout = write_layout(tmp_path / "layout", {"v1.0.0": build_image("canary")})
    push_with_skopeo(layout, reg, "app/api", "v1.0.0", ref="v1.0.0")

    monkeypatch.setenv("CANARY_USER", "auditor")
    monkeypatch.setenv("CANARY_PASSWORD", password_given)
    config = {
        "environment": "prod",
        "history_dir": str(tmp_path / "history"),
        "targets": [
            {
                "name": "canary",
                "kind": "distribution",
                "url": reg.url,
                "ca_file": str(reg.ca_file),
                "username_env": "CANARY_USER",
                "password_env": "CANARY_PASSWORD",
                "config_file": str(reg.config_file),
            }
        ],
    }
    config_path = tmp_path / "regguard.yaml"
    config_path.write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    code = main(
        [
            "audit",
            "-c",
            str(config_path),
            "--format",
            "html,md,json,sarif,junit,oscal",
            "--output",
            str(out),
            "--evidence",
        ]
    )
    captured = capsys.readouterr()

    report = json.loads((out / "report.json").read_text())
    assert report["findings"], "the audit ran"
    if password_given != CANARY:
        assert code == 3, "a rejected password leaves facts uncollected"
        assert any(
            "401" in f["message"] or "credential" in f["message"].lower()
            for f in report["findings"]
            if f["status"] == "error"
        )

    needles = {
        password_given,
        CANARY,
        base64.b64encode(f"auditor:{password_given}".encode()).decode(),
        base64.b64encode(f"auditor:{CANARY}".encode()).decode(),
    }
    haystacks = {"stdout": captured.out, "stderr": captured.err}
    haystacks.update(_texts(out))
    haystacks.update(_texts(tmp_path / "history"))
    for where, text in haystacks.items():
        for needle in needles:
            assert needle not in text, f"secret leaked into {where}"
