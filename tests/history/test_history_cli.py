"""The history from the command line, as a scheduled audit sees it: three
audits of a changing docker config, then `history`, `diff`, `history verify`,
`report --run` and `verify-evidence` — on SQLite and on PostgreSQL."""

from __future__ import annotations

import base64
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from audits.cli import main
from audits.store import open_history

AUTH = base64.b64encode(b"user:pass").decode()


def _audit(tmp_path: Path, url: str, registries: list[str], waivers: list[dict[str, Any]] = (),  # type: ignore[assignment]
           evidence: bool = False) -> int:
    docker = tmp_path / "docker.json"
    docker.write_text(json.dumps({"auths": {r: {"auth": AUTH} for r in registries}}))
    config = tmp_path / "regguard.yaml"
    config.write_text(yaml.safe_dump({"targets": [{"name": "laptop", "kind": "docker-config", "path": str(docker)}],
                                      "waivers": list(waivers)}))
    argv = ["audit", "-c", str(config), "--output", str(tmp_path / "out"), "--format", "json,md,sarif",
            "--history", url]
    return main([*argv, "--evidence"] if evidence else argv)


def _resource(tmp_path: Path, registry: str) -> str:
    return f"{tmp_path / 'docker.json'}#{registry}"


@pytest.fixture
def three_runs(tmp_path: Path, history_url: str) -> str:
    assert _audit(tmp_path, history_url, ["r.example.com", "s.example.com"]) == 1
    assert _audit(tmp_path, history_url, ["s.example.com", "t.example.com"]) == 1
    waiver = {"rule": "RG-CRED-003", "resource": "*#s.example.com", "reason": "migrating to a helper",
              "approved_by": "lead@example.com", "expires": "2099-01-01"}
    assert _audit(tmp_path, history_url, ["s.example.com", "t.example.com"], [waiver], evidence=True) == 1
    return history_url


def test_diff_of_the_last_two_runs_and_of_chosen_runs(three_runs: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    db = open_history(three_runs)
    first, second, third = (r.run_id for r in db.runs())
    db.close()
    assert main(["diff", first, second, "--format", "json", "--history", three_runs]) == 0
    diff = json.loads(capsys.readouterr().out)
    assert (diff["base"], diff["head"]) == (first, second)
    assert [c["resource"] for c in diff["new_failures"]] == [_resource(tmp_path, "t.example.com")]
    assert [c["resource"] for c in diff["fixed"]] == [_resource(tmp_path, "r.example.com")]
    assert [c["resource"] for c in diff["persisting"]] == [_resource(tmp_path, "s.example.com")]
    assert main(["diff", "--history", three_runs]) == 0  # default: the last two
    text = capsys.readouterr().out
    assert f"from run {second} to run {third}:" in text
    assert "changed statuses: 1" in text and "fail -> waived" in text
    assert "new failures: 0" in text and "fixed: 0" in text


def test_every_report_says_what_changed_since_the_last_run(three_runs: str, tmp_path: Path) -> None:
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    since = report["since_last_run"]
    assert [(c["before"], c["after"]) for c in since["changed"]] == [("fail", "waived")]
    assert report["run_id"] and len(report["trend"]) == 3
    md = (tmp_path / "out" / "report.md").read_text()
    assert "## Since the last run" in md and "**0 new**" in md and "## Per-control summary" in md
    sarif = json.loads((tmp_path / "out" / "report.sarif").read_text())
    assert {r["baselineState"] for r in sarif["runs"][0]["results"]} == {"unchanged", "updated"}


def test_history_lists_and_filters_runs(three_runs: str, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["history", "--history", three_runs]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all("[laptop]" in line for line in lines)
    assert main(["history", "--target", "other", "--history", three_runs]) == 0
    assert capsys.readouterr().out == ""
    assert main(["history", "--since", "2999-01-01", "--history", three_runs]) == 0
    assert capsys.readouterr().out == ""
    assert main(["history", "--since", "yesterday", "--history", three_runs]) == 2


def test_history_verify_passes_then_names_a_changed_run(three_runs: str, capsys: pytest.CaptureFixture[str]) -> None:
    from sqlalchemy import text

    assert main(["history", "verify", "--history", three_runs]) == 0
    assert "3 run(s); chain intact" in capsys.readouterr().out
    db = open_history(three_runs)
    second = db.runs()[1].run_id
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE runs SET environment = 'prod' WHERE run_id = :r"), {"r": second})
    db.close()
    assert main(["history", "verify", "--history", three_runs]) == 1
    captured = capsys.readouterr()
    assert f"run {second} (#2) was changed after it was stored" in captured.err and "BROKEN" in captured.out


def test_report_renders_a_stored_run(three_runs: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = open_history(three_runs)
    second = db.runs()[1].run_id
    db.close()
    out = tmp_path / "stored"
    assert main(["report", "--run", second, "--format", "json,md", "--output", str(out), "--history", three_runs]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["run_id"] == second and report["summary"]["fail"] == 2
    assert [c["resource"] for c in report["since_last_run"]["fixed"]] == [_resource(tmp_path, "r.example.com")]
    assert main(["report", "--run", "no-such-run", "--output", str(out), "--history", three_runs]) == 2


def test_verify_evidence_accepts_the_bundle_and_rejects_a_flipped_byte(
    three_runs: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "out" / "evidence-bundle.zip"
    with zipfile.ZipFile(bundle) as archive:
        names = set(archive.namelist())
        run = json.loads(archive.read("run.json"))
    assert {"config.json", "run.json", "reports/report.json", "reports/report.md", "MANIFEST.json"} <= names
    assert run["run_sha256"] and run["version"]
    assert main(["verify-evidence", str(bundle), "--history", three_runs]) == 0
    assert "matches the history chain" in capsys.readouterr().out

    flipped = tmp_path / "flipped.zip"
    data = bytearray(bundle.read_bytes())
    data[len(data) // 3] ^= 0x01
    flipped.write_bytes(bytes(data))
    assert main(["verify-evidence", str(flipped)]) == 1
    assert "REJECTED" in capsys.readouterr().out


def test_verify_evidence_names_a_rewritten_file(three_runs: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    bundle = tmp_path / "out" / "evidence-bundle.zip"
    edited = tmp_path / "edited.zip"
    with zipfile.ZipFile(bundle) as source, zipfile.ZipFile(edited, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            target.writestr(name, data.replace(b'"fail"', b'"pass"') if name == "report.json" else data)
    assert main(["verify-evidence", str(edited)]) == 1
    assert "report.json: content differs from the manifest" in capsys.readouterr().err


def test_verify_evidence_rejects_a_bundle_whose_run_is_not_in_the_store(
    three_runs: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = str(tmp_path / "other.sqlite")
    open_history(other).close()
    assert main(["verify-evidence", str(tmp_path / "out" / "evidence-bundle.zip"), "--history", other]) == 1
    assert "no stored run has the id" in capsys.readouterr().err


def _two_target_config(tmp_path: Path) -> Path:
    targets = []
    for name in ("alpha", "beta"):
        docker = tmp_path / f"{name}.json"
        docker.write_text(json.dumps({"auths": {f"{name}.example.com": {"auth": AUTH}}}))
        targets.append({"name": name, "kind": "docker-config", "path": str(docker)})
    config = tmp_path / "sharded.yaml"
    config.write_text(yaml.safe_dump({"targets": targets}))
    return config


def _shard_command(config: Path, out: Path, url: str, shard: str) -> list[str]:
    import sys

    return [sys.executable, "-m", "audits.cli", "audit", "-c", str(config), "--output", str(out), "--format", "json",
            "--history", url, "--shard", shard, "--run-id", "nightly-7"]


def test_shards_written_in_parallel_are_reported_as_one_run(tmp_path: Path, history_url: str) -> None:
    """Two real processes write their parts of one run at the same time (a fork of
    the test process could inherit locks held by other tests' threads)."""
    import subprocess

    config = _two_target_config(tmp_path)
    assert _audit(tmp_path, history_url, ["alpha.example.com"]) == 1  # an earlier whole run to compare with
    root = Path(__file__).resolve().parents[2]
    shards = [subprocess.Popen(_shard_command(config, tmp_path / f"out{i}", history_url, f"{i}/2"), cwd=root,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for i in (0, 1)]
    codes = [p.wait(timeout=120) for p in shards]
    assert codes == [1, 1], [p.stderr.read() if p.stderr else "" for p in shards]
    first = json.loads((tmp_path / "out0" / "report.json").read_text())
    assert [t["name"] for t in first["targets"]] == ["alpha"]  # each shard audits its own targets
    # whichever shard stored last rendered the merged run beside its own reports
    merged = [json.loads(m.read_text()) for m in tmp_path.glob("out*/merged/report.json")]
    assert merged and all(sorted(t["name"] for t in m["targets"]) == ["alpha", "beta"] for m in merged)
    out = tmp_path / "joined"
    assert main(["report", "--run", "nightly-7", "--format", "json", "--output", str(out),
                 "--history", history_url]) == 0
    joined = json.loads((out / "report.json").read_text())
    assert joined["run_id"] == "nightly-7" and sorted(t["name"] for t in joined["targets"]) == ["alpha", "beta"]
    assert {f["target"] for f in joined["findings"]} == {"alpha", "beta"}
    assert all(t["complete"] for t in joined["targets"])
    assert joined["since_last_run"] is not None
    db = open_history(history_url)
    assert verify_chain_intact(db)
    db.close()


def test_a_missing_shard_makes_the_joined_run_incomplete(
    tmp_path: Path, history_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _two_target_config(tmp_path)
    assert main(["audit", "-c", str(config), "--output", str(tmp_path / "o"), "--format", "json",
                 "--history", history_url, "--shard", "1/2", "--run-id", "nightly-8"]) == 1
    assert "1 of 2 shards stored; waiting for 0/2" in capsys.readouterr().err
    assert not (tmp_path / "o" / "merged" / "report.json").exists()
    out = tmp_path / "joined"
    assert main(["report", "--run", "nightly-8", "--format", "json", "--output", str(out),
                 "--history", history_url]) == 3
    assert "run nightly-8 is incomplete: shard(s) 0/2 not stored" in capsys.readouterr().err
    joined = json.loads((out / "report.json").read_text())
    gaps = [t for t in joined["targets"] if not t["complete"]]
    assert gaps and "shard(s) 0/2 of run nightly-8 not stored" in gaps[0]["errors"][0]


def test_a_retried_shard_is_not_stored_twice(
    tmp_path: Path, history_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _two_target_config(tmp_path)
    command = ["audit", "-c", str(config), "--output", str(tmp_path / "o"), "--format", "json",
               "--history", history_url, "--shard", "0/2", "--run-id", "nightly-9"]
    assert main(command) == 1
    assert main(command) == 1
    assert "shard 0/2 of run nightly-9 is already stored" in capsys.readouterr().err
    db = open_history(history_url)
    assert [p.shard for p in db.shards("nightly-9")] == ["0/2"]
    db.close()


def test_a_shard_index_counts_from_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _two_target_config(tmp_path)
    for bad in ("2/2", "-1/2", "0/0", "a/2"):
        assert main(["audit", "-c", str(config), "--output", str(tmp_path / "o"), f"--shard={bad}",
                     "--run-id", "r1"]) == 2
        assert "0 <= I < N" in capsys.readouterr().err


def verify_chain_intact(db: Any) -> bool:
    from audits.store import verify_chain

    return verify_chain(db).intact


def test_more_shards_than_scopes_still_complete_the_run(
    tmp_path: Path, history_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _two_target_config(tmp_path)
    for index in range(3):
        out = tmp_path / f"out{index}"
        assert main(["audit", "-c", str(config), "--output", str(out), "--format", "json",
                     "--history", history_url, "--shard", f"{index}/3", "--run-id", "nightly-10"]) in (0, 1)
    assert json.loads((tmp_path / "out0" / "report.json").read_text())["targets"] == []  # an empty part
    merged = json.loads((tmp_path / "out2" / "merged" / "report.json").read_text())
    assert sorted(t["name"] for t in merged["targets"]) == ["alpha", "beta"]
    assert all(t["complete"] for t in merged["targets"])


def test_shards_that_listed_different_scopes_make_the_run_incomplete(
    tmp_path: Path, history_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Between two shards a target was added: their blocks no longer add up."""
    config = _two_target_config(tmp_path)
    grown = yaml.safe_load(config.read_text())
    gamma = tmp_path / "gamma.json"
    gamma.write_text(json.dumps({"auths": {}}))
    grown["targets"].append({"name": "gamma", "kind": "docker-config", "path": str(gamma)})
    (tmp_path / "grown.yaml").write_text(yaml.safe_dump(grown))
    for index, path in ((0, config), (1, tmp_path / "grown.yaml")):
        main(["audit", "-c", str(path), "--output", str(tmp_path / f"o{index}"), "--format", "json",
              "--history", history_url, "--shard", f"{index}/2", "--run-id", "nightly-11"])
    assert "the shards listed different scopes" in capsys.readouterr().err
    assert main(["report", "--run", "nightly-11", "--format", "json", "--output", str(tmp_path / "r"),
                 "--history", history_url]) == 3
    assert "its shards listed different scopes" in capsys.readouterr().err
    targets = json.loads((tmp_path / "r" / "report.json").read_text())["targets"]
    assert any(t["name"] == "(shard plans)" and not t["complete"] for t in targets)
    db = open_history(history_url)
    assert len({p.plan_sha256 for p in db.shards("nightly-11")}) == 2 and verify_chain_intact(db)
    db.close()


def test_a_failing_comparison_with_the_history_still_writes_the_reports(
    tmp_path: Path, history_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from audits import history_cli

    def broken(*_: Any) -> Any:
        raise KeyError(3)

    monkeypatch.setattr(history_cli, "with_history", broken)
    config = _two_target_config(tmp_path)
    assert main(["audit", "-c", str(config), "--output", str(tmp_path / "o"), "--format", "json",
                 "--history", history_url]) == 1
    assert "is stored, but comparing it with the history failed (KeyError: 3)" in capsys.readouterr().err
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["run_id"] and {f["target"] for f in report["findings"]} == {"alpha", "beta"}


def test_a_stored_waived_failure_keeps_its_fix_like_the_live_report(tmp_path: Path, history_url: str) -> None:
    config = _two_target_config(tmp_path)
    data = yaml.safe_load(config.read_text())
    data["waivers"] = [{"rule": "RG-CRED-003", "target": "alpha", "reason": "moving to a helper (RISK-7)",
                        "approved_by": "ciso@example.com", "expires": "2099-01-01"}]
    config.write_text(yaml.safe_dump(data))
    main(["audit", "-c", str(config), "--output", str(tmp_path / "live"), "--format", "json", "--history", history_url])
    live = json.loads((tmp_path / "live" / "report.json").read_text())
    assert main(["report", "--run", live["run_id"], "--format", "json", "--output", str(tmp_path / "again"),
                 "--history", history_url]) == 0
    again = json.loads((tmp_path / "again" / "report.json").read_text())

    def waived(report: dict[str, Any]) -> list[Any]:
        return [(f["rule"], f["target"], f["remediation"]) for f in report["findings"] if f["status"] == "waived"]

    assert waived(live) and waived(again) == waived(live)
    assert all(remediation for _, _, remediation in waived(again))


def _sharded_night(config: Path, tmp_path: Path, url: str, run_id: str) -> dict[str, Any]:
    """Both shards of one run, one after the other; the merged report of the last."""
    for index in (0, 1):
        main(["audit", "-c", str(config), "--output", str(tmp_path / f"{run_id}-{index}"), "--format", "json",
              "--history", url, "--shard", f"{index}/2", "--run-id", run_id])
    merged: dict[str, Any] = json.loads((tmp_path / f"{run_id}-1" / "merged" / "report.json").read_text())
    return merged


def test_a_sharded_night_is_compared_with_the_sharded_night_before_and_diff_reads_it(
    tmp_path: Path, history_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nightly sharded CronJobs only: each merged run still says what changed."""
    config = _two_target_config(tmp_path)
    _sharded_night(config, tmp_path, history_url, "night-1")
    second = _sharded_night(config, tmp_path, history_url, "night-2")
    assert second["since_last_run"] is not None and second["since_last_run"]["base"] == "night-1"
    assert len(second["since_last_run"]["persisting"]) == 2  # alpha and beta fail RG-CRED-003 both nights
    capsys.readouterr()
    assert main(["diff", "night-1", "night-2", "--format", "json", "--history", history_url]) == 0
    diff = json.loads(capsys.readouterr().out)
    assert (diff["base"], diff["head"]) == ("night-1", "night-2") and len(diff["persisting"]) == 2
    # a whole audit the next day is compared with the merged night before it
    main(["audit", "-c", str(config), "--output", str(tmp_path / "day"), "--format", "json", "--history", history_url])
    day = json.loads((tmp_path / "day" / "report.json").read_text())
    assert day["since_last_run"]["base"] == "night-2"


def test_a_sigterm_while_the_reports_are_written_still_ends_in_exit_3(
    tmp_path: Path, history_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The collection was over when the signal came: the reports are whole, but a
    runner that sent SIGTERM must not see a clean exit 0 or 1."""
    import os
    import signal

    from audits import cli

    write = cli._write_outputs

    def signalled_while_writing(*args: Any, **kwargs: Any) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        write(*args, **kwargs)

    monkeypatch.setattr(cli, "_write_outputs", signalled_while_writing)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        code = main(["audit", "-c", str(_two_target_config(tmp_path)), "--output", str(tmp_path / "o"),
                     "--format", "json", "--history", history_url])
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert code == 3
    assert (tmp_path / "o" / "report.json").exists()
