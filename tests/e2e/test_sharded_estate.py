"""One estate audited whole and in three shards, as a CronJob's Indexed Job would
run it: the sandbox estate (every kind's local service) plus a multi-account
moto organization, the shards as parallel `regguard audit --shard I/3` processes
writing one run into a real PostgreSQL server. The merged run — rendered by
the shard that completed it and again by `regguard report --run` — has exactly
the findings of the unsharded audit (identities and statuses); a run missing
shards is reported as such, naming them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from audits.cli import _extra_services
from sandbox.estate import start_estate
from tests.history.postgres_server import fresh_database, running_postgres

ROOT = Path(__file__).resolve().parents[2]
SHARDS = 3
AUDIT_TIMEOUT_S = 240


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """The estate's config file and the environment its secrets are named in."""
    workdir = tmp_path_factory.mktemp("sharded-estate")

    running = start_estate(workdir / "work", extra_services=_extra_services())  # the organization included
    try:
        config = running.audit_config("prod")
        config.pop("history_dir", None)
        path = workdir / "regguard.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        yield path, {**os.environ, **running.env}
    finally:
        running.stop()


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    with running_postgres() as url:
        yield url


def _audit(config: Path, out: Path, history: str, env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "audits.cli", "audit", "-c", str(config), "--output", str(out),
            "--format", "json", "--history", history, *extra]
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=AUDIT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    assert proc.returncode in (0, 1, 3), err[-3000:]  # findings or errors, never a usage error or a crash
    return proc.returncode, err


def _identities(report: Path) -> Counter[tuple[str, str, str, str]]:
    findings = json.loads(report.read_text())["findings"]
    return Counter((f["rule"], f["target"], f["resource"], f["status"]) for f in findings)


def test_the_merged_shards_have_exactly_the_findings_of_the_whole_audit(
    estate: tuple[Path, dict[str, str]], postgres: str, tmp_path: Path
) -> None:
    config, env = estate
    whole_db, sharded_db = fresh_database(postgres, "whole"), fresh_database(postgres, "sharded")
    _finish(_audit(config, tmp_path / "whole", whole_db, env))
    whole = _identities(tmp_path / "whole" / "report.json")
    assert max(whole.values()) == 1  # identities are unique
    org_scopes = {t for (_, t, _, _) in whole if t.startswith("aws-org/")}
    assert len(org_scopes) == 4 * 2  # management + 3 members, 2 regions each

    started = time.monotonic()
    shards = [_audit(config, tmp_path / f"shard-{i}", sharded_db, env, "--shard", f"{i}/{SHARDS}",
                     "--run-id", "estate-1") for i in range(SHARDS)]
    results = [_finish(p) for p in shards]
    elapsed = time.monotonic() - started

    parts = [_identities(tmp_path / f"shard-{i}" / "report.json") for i in range(SHARDS)]
    assert all(parts) and sum(parts, Counter()) == whole  # disjoint parts that add up to the whole
    merged = sorted(tmp_path.glob("shard-*/merged/report.json"))
    assert merged, [err[-1500:] for _, err in results]
    for report in merged:
        assert _identities(report) == whole
    waiting = [err for _, err in results if "shards stored; waiting for" in err]
    assert len(waiting) <= SHARDS - 1
    assert elapsed < AUDIT_TIMEOUT_S

    out = tmp_path / "report"
    code = subprocess.run([sys.executable, "-m", "audits.cli", "report", "--run", "estate-1", "--format", "json",
                           "--output", str(out), "--history", sharded_db], cwd=ROOT, env=env, timeout=120,
                          capture_output=True, text=True)
    assert code.returncode == 0, code.stderr[-2000:]
    assert _identities(out / "report.json") == whole


def test_a_run_with_missing_shards_says_which(
    estate: tuple[Path, dict[str, str]], postgres: str, tmp_path: Path
) -> None:
    config, env = estate
    db = fresh_database(postgres, "partial")
    _, err = _finish(_audit(config, tmp_path / "last", db, env, "--shard", f"{SHARDS - 1}/{SHARDS}",
                            "--run-id", "estate-2"))
    assert f"1 of {SHARDS} shards stored; waiting for 0/{SHARDS}, 1/{SHARDS}" in err
    assert not (tmp_path / "last" / "merged" / "report.json").exists()
    report = subprocess.run([sys.executable, "-m", "audits.cli", "report", "--run", "estate-2", "--format", "json",
                             "--output", str(tmp_path / "partial"), "--history", db], cwd=ROOT, env=env,
                            timeout=120, capture_output=True, text=True)
    assert report.returncode == 3
    assert f"shard(s) 0/{SHARDS}, 1/{SHARDS} not stored" in report.stderr
    targets = json.loads((tmp_path / "partial" / "report.json").read_text())["targets"]
    assert any(not t["complete"] and t["kind"] == "shard" for t in targets)
