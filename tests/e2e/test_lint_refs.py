"""`regguard lint-refs` as CI uses it: findings with file:line, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audits.cli import main

FIXTURE_REPO = Path(__file__).resolve().parents[1] / "fixtures" / "refs" / "repo"
PINNED = "registry.example.com/team/api:v1.2.3@sha256:" + "a" * 64


def test_clean_references_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM {PINNED}\n")
    (tmp_path / "deploy.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
        f"    - name: api\n      image: {PINNED}\n"
    )
    assert main(["lint-refs", str(tmp_path)]) == 0
    assert "0 failing, 0 errors" in capsys.readouterr().out


def test_latest_and_insecure_references_fail_with_locations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "Dockerfile").write_text("FROM nginx:latest\nFROM 10.0.0.5:5000/base:1.0 AS base\n")
    code = main(["lint-refs", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1
    assert f"{tmp_path / 'Dockerfile'}:1: [high] RG-TAG-001" in out
    assert f"{tmp_path / 'Dockerfile'}:2: [high] RG-SRC-002" in out


def test_allow_listed_registry_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM 10.0.0.5:5000/base:1.0@sha256:" + "b" * 64 + "\n")
    assert main(["lint-refs", str(tmp_path), "--allow-registry", "10.0.0.5:5000"]) == 0


def test_fixture_repo_reports_unresolvable_references_as_errors(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["lint-refs", str(FIXTURE_REPO), "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 3, "references that cannot be judged make the result incomplete"
    errors = [f for f in report["findings"] if f["status"] == "error"]
    assert any("BASE_IMAGE" in f["message"] for f in errors)
    skipped = [f for f in report["findings"] if "node_modules" in json.dumps(f)]
    assert skipped == []


def test_missing_path_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint-refs", str(tmp_path / "nope")]) == 2
    assert "no such file or directory" in capsys.readouterr().err
