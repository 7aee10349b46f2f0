"""The history store on SQLite and on a real PostgreSQL server: runs and
findings stored and read back, the hash chain and what breaks it, the schema
managed by Alembic, the JSON-file history imported once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from audits.store import HistoryError, import_json_history, open_history, verify_chain
from audits.store.db import HistoryDB
from tests.history.results import finding, result


def _three_runs(db: HistoryDB) -> list[str]:
    runs = [
        db.record(result([finding("RG-TAG-002", "edge", f"app/{i}", "fail") for i in range(3)], day=day), {})
        for day in range(3)
    ]
    return [r.run_id for r in runs]


def test_runs_are_stored_with_their_findings_in_order(history_url: str) -> None:
    db = open_history(history_url)
    ids = _three_runs(db)
    stored = db.runs()
    assert [r.run_id for r in stored] == ids and [r.seq for r in stored] == [1, 2, 3]
    assert stored[0].summary["fail"] == 3 and stored[0].targets[0]["name"] == "edge"
    rows = db.findings(stored[1])
    assert sorted(f.resource for f in rows) == ["app/0", "app/1", "app/2"]
    assert all(len(f.evidence_sha256) == 64 for f in rows)  # a digest, never the evidence
    assert db.run(ids[2][:16]).run_id == ids[2]  # a unique prefix (the start time) is enough
    assert [r.run_id for r in db.runs(since="2026-11-02")] == ids[1:]
    assert db.runs(target="elsewhere") == []
    db.close()


def test_the_trend_counts_only_the_runs_it_read_while_another_writer_appends(
    history_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A parallel shard committed between reading the newest runs and counting
    their findings (seen as a KeyError that lost a shard's reports)."""
    db = open_history(history_url)
    _three_runs(db)
    read_before = db.runs(last=30)
    db.record(result([finding("RG-TAG-002", "edge", "app/9", "fail")], day=5), {})  # the other writer
    monkeypatch.setattr(db, "runs", lambda **_: read_before)
    points = db.trend(30)
    assert {p.run_id for p in points} == {r.run_id for r in read_before}
    db.close()


def test_a_target_s_runs_include_those_of_its_scopes(history_url: str) -> None:
    db = open_history(history_url)
    scoped = db.record(result([], targets=("org-ecr/123456789012/us-east-1",)), {})
    db.record(result([], targets=("org-ecr-2",)), {})
    assert [r.run_id for r in db.runs(target="org-ecr")] == [scoped.run_id]
    assert [r.run_id for r in db.runs(target="org-ecr/123456789012/us-east-1")] == [scoped.run_id]
    db.close()


def test_an_intact_chain_verifies(history_url: str) -> None:
    db = open_history(history_url)
    ids = _three_runs(db)
    check = verify_chain(db)
    assert check.intact and check.runs == 3
    assert check.head_sha256 == db.run(ids[-1]).content_sha256
    db.close()


def _tamper(db: HistoryDB, statement: str, **params: object) -> None:
    with db.engine.begin() as conn:
        conn.execute(text(statement), params)


def test_a_changed_finding_is_named(history_url: str) -> None:
    db = open_history(history_url)
    ids = _three_runs(db)
    _tamper(db, "UPDATE findings SET status = 'pass' WHERE resource = 'app/1' AND run = "
                "(SELECT id FROM runs WHERE run_id = :r)", r=ids[1])
    problems = verify_chain(db).problems
    assert problems == (f"run {ids[1]} (#2) was changed after it was stored",)
    db.close()


def test_a_deleted_run_is_named(history_url: str) -> None:
    db = open_history(history_url)
    ids = _three_runs(db)
    _tamper(db, "DELETE FROM findings WHERE run = (SELECT id FROM runs WHERE run_id = :r)", r=ids[1])
    _tamper(db, "DELETE FROM runs WHERE run_id = :r", r=ids[1])
    problems = verify_chain(db).problems
    assert problems == (f"1 run(s) between run {ids[0]} and run {ids[2]} (#3) were deleted",)
    db.close()


def test_reordered_runs_are_named(history_url: str) -> None:
    db = open_history(history_url)
    ids = _three_runs(db)
    _tamper(db, "UPDATE runs SET seq = 100 WHERE run_id = :r", r=ids[1])
    _tamper(db, "UPDATE runs SET seq = 2 WHERE run_id = :r", r=ids[2])
    _tamper(db, "UPDATE runs SET seq = 3 WHERE run_id = :r", r=ids[1])
    problems = verify_chain(db).problems
    assert f"run {ids[2]} (#2) does not follow run {ids[0]}: runs were reordered or replaced" in problems
    assert any(ids[1] in p for p in problems)
    db.close()


def test_the_schema_is_created_on_first_use_and_refused_when_newer(history_url: str) -> None:
    db = open_history(history_url)
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0003"
    _tamper(db, "UPDATE alembic_version SET version_num = '9999'")
    db.close()
    with pytest.raises(HistoryError, match="schema revision 9999 is newer than this regguard knows"):
        open_history(history_url)


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(HistoryError) as caught:
        open_history("postgresql://nobody:s3cret@127.0.0.1:1/none")
    assert "s3cret" not in str(caught.value) and "\n" not in str(caught.value)


def test_pull_baseline_comes_from_the_stored_runs(history_url: str) -> None:
    db = open_history(history_url)
    db.record(result([], day=0), {"edge": {"app": {"2026-11-01": 5, "2026-11-02": 7}}})
    db.record(result([], day=1), {"edge": {"app": {"2026-11-02": 9}, "web": {"2026-11-02": 1}}})
    assert db.pull_baseline() == {"edge": {"app": {"2026-11-01": 5, "2026-11-02": 9}, "web": {"2026-11-02": 1}}}
    db.close()


def test_the_json_history_is_imported_once_and_left_alone(history_url: str, tmp_path: Path) -> None:
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    for day in (1, 2):
        record = {"started_at": f"2026-10-0{day}T02:00:00+00:00", "environment": "prod",
                  "summary": {"pass": day, "fail": 1}, "pull_counts": {"edge": {"app": {f"2026-10-0{day}": day}}}}
        (legacy / f"audit-2026100{day}T020000000000Z.json").write_text(json.dumps(record))
    before = sorted((p.name, p.read_bytes()) for p in legacy.iterdir())
    db = open_history(history_url)
    assert import_json_history(db, legacy) == 2
    assert import_json_history(db, legacy) == 0
    runs = db.runs()
    assert [r.source for r in runs] == ["json-import", "json-import"] and runs[1].summary == {"pass": 2, "fail": 1}
    assert db.pull_baseline() == {"edge": {"app": {"2026-10-01": 1, "2026-10-02": 2}}}
    assert verify_chain(db).intact
    assert sorted((p.name, p.read_bytes()) for p in legacy.iterdir()) == before
    db.close()


def test_a_database_of_the_first_schema_is_upgraded_and_its_chain_still_verifies(history_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    from audits.store.db import MIGRATIONS

    old = HistoryDB(history_url)
    with old.write() as conn:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
    with old.write() as conn:  # a run as regguard with schema 0001 wrote it
        row = {"run_id": "old-run", "seq": 1, "source": "audit", "tool_version": "0.0.9",
               "started_at": "2026-10-01T02:00:00+00:00", "finished_at": "2026-10-01T02:01:00+00:00",
               "environment": "prod", "targets": "[]", "summary": "{}", "pull_counts": "{}",
               "previous_sha256": "0" * 64}
        from audits.store.chain import run_content_hash

        row["content_sha256"] = run_content_hash(row, [])
        columns = ", ".join(row)
        conn.execute(text(f"INSERT INTO runs ({columns}) VALUES ({', '.join(':' + k for k in row)})"), row)
    old.close()
    db = open_history(history_url)
    db.record(result([finding("RG-TAG-002", "edge", "app", "fail")], day=40), {})
    assert [r.run_id for r in db.runs()][0] == "old-run"
    assert verify_chain(db).intact
    db.close()
