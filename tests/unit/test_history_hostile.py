"""A foreign, torn or hostile file in the history directory, or a history
directory that cannot be written, costs a warning on stderr, never the
audit: bad records are skipped (each named once), good ones still count."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from audits.cli import main
from audits.history import MAX_RECORD_BYTES, HistoryStore
from audits.model import AuditResult
from audits.store import open_history
from tests.conftest import default_history

GOOD = {"pull_counts": {"edge": {"app": {"2026-11-01": 7}}}}

FOREIGN = {
    "audit-01-null.json": b"null",
    "audit-02-list.json": b"[1, 2]",
    "audit-03-string.json": b'"hello"',
    "audit-04-latin1.json": '{"environment": "d\xe9v"}'.encode("latin-1"),
    "audit-05-torn.json": b'{"pull_counts": {"edge": {"app": {"2026-',
    "audit-06-pulls-list.json": b'{"pull_counts": []}',
    "audit-07-pulls-text.json": b'{"pull_counts": {"edge": {"app": {"2026-11-02": "many"}}}}',
    "audit-08-negative.json": b'{"pull_counts": {"edge": {"app": {"2026-11-03": -5}}}}',
}


def _store(directory: Path, warnings: list[str]) -> HistoryStore:
    return HistoryStore(directory, warn=warnings.append)


def test_foreign_records_are_skipped_with_one_warning_each(tmp_path: Path) -> None:
    for name, data in FOREIGN.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "audit-09-good.json").write_text(json.dumps(GOOD))
    warnings: list[str] = []

    baseline = _store(tmp_path, warnings).pull_baseline()

    assert baseline == {"edge": {"app": {"2026-11-01": 7}}}
    assert len(warnings) == len(FOREIGN)
    for name, warning in zip(sorted(FOREIGN), warnings, strict=True):
        assert name in warning


@pytest.mark.timeout(10)
def test_a_fifo_a_link_and_a_huge_file_are_skipped_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "audit-01-fifo.json")  # opening it for reading would block forever
    (tmp_path / "audit-02-link.json").symlink_to("/dev/zero")
    with (tmp_path / "audit-03-huge.json").open("wb") as f:
        f.truncate(MAX_RECORD_BYTES + 1)
    (tmp_path / "audit-04-good.json").write_text(json.dumps(GOOD))
    warnings: list[str] = []

    assert _store(tmp_path, warnings).pull_baseline() == GOOD["pull_counts"]
    assert len(warnings) == 3


def _result() -> AuditResult:
    moment = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
    return AuditResult(tool="regguard", version="t", started_at=moment, finished_at=moment, environment="dev",
                       frameworks=(), targets=(), findings=())


def test_an_unwritable_history_is_a_warning(tmp_path: Path) -> None:
    blocker = tmp_path / "history"
    blocker.write_text("a file where the directory should be")
    warnings: list[str] = []

    assert _store(blocker, warnings).record(_result(), {}) is None
    assert _store(blocker / "sub", warnings).record(_result(), {}) is None
    assert len(warnings) == 2
    assert all("history" in w and "not written" in w for w in warnings)


def _config(tmp_path: Path, history: Path) -> Path:
    (tmp_path / "Dockerfile").write_text("FROM nginx:1.27\n")
    path = tmp_path / "regguard.yaml"
    path.write_text(yaml.safe_dump({
        "history_dir": str(history),
        "targets": [{"name": "refs", "kind": "image-refs", "paths": [str(tmp_path / "Dockerfile")]}],
    }))
    return path


def test_the_audit_runs_past_a_foreign_history_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    history = tmp_path / "history"
    history.mkdir()
    (history / "audit-00000000T000000000000Z.json").write_bytes(b"null")
    code = main(["audit", "-c", str(_config(tmp_path, history)), "--output", str(tmp_path / "out"),
                 "--format", "json"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "Traceback" not in err
    assert "audit-00000000T000000000000Z.json" in err and "skipped" in err
    assert (tmp_path / "out" / "report.json").is_file()
    assert len(list(history.glob("audit-*.json"))) == 1  # the JSON history is only read, once
    db = open_history(str(default_history()))
    assert [r.source for r in db.runs()] == ["audit"]  # this audit was still recorded, in the database
    db.close()


def test_the_audit_runs_when_history_cannot_be_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    history = tmp_path / "history"
    history.write_text("a file")
    code = main(["audit", "-c", str(_config(tmp_path, history)), "--output", str(tmp_path / "out"),
                 "--format", "json"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "warning" in err and str(history) in err
    assert (tmp_path / "out" / "report.json").is_file()
