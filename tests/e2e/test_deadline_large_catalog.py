"""A registry listing 50,000 repositories: `--max-repositories` audits the first N
by name, says "N of M" and makes the run incomplete (exit 3), warns that the
target is large, and memory and report size follow N, not M."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

from bench.measure import wait_with_usage
from tests.e2e.deadline_servers import tiny_registry

ROOT = Path(__file__).resolve().parents[2]
LISTED = 50_000
CAP = 100
MAX_RSS_MB = 250  # an audit of a few targets runs at ~100 MB; 50,000 audited repositories would need gigabytes


def test_a_capped_catalog_is_audited_up_to_the_cap_and_reported_incomplete(tmp_path: Path) -> None:
    names = [f"team{i % 50:02d}/app{i:05d}" for i in range(LISTED)]
    with tiny_registry(names) as registry:
        config = {
            "environment": "prod",
            "history_dir": "history",
            "targets": [{"name": "big", "kind": "distribution", "url": registry.url}],
        }
        (tmp_path / "regguard.yaml").write_text(yaml.safe_dump(config))
        command = [sys.executable, "-m", "audits.cli", "audit", "-c", str(tmp_path / "regguard.yaml"),
                   "--output", str(tmp_path / "out"), "--max-repositories", str(CAP)]  # fmt: skip
        out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
        with out.open("w") as stdout_file, err.open("w") as stderr_file:
            started = time.monotonic()
            proc = subprocess.Popen(command, cwd=ROOT, stdout=stdout_file, stderr=stderr_file)
            (exited,) = wait_with_usage([proc], timeout=120)
            code, max_rss_kb = exited.exit_code, exited.max_rss_kb
            elapsed = time.monotonic() - started
        audited = {path.split("/manifests/")[0].removeprefix("/v2/") for path in registry.manifests_served}
    stdout, stderr = out.read_text(), err.read_text()

    assert code == 3, stderr[-2000:]
    assert audited == set(sorted(names)[:CAP]), "the first repositories by name, and only those"
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    (big,) = report["targets"]
    assert not big["complete"]
    assert f"audited {CAP} of {LISTED:,}" in " ".join(big["errors"]), big["errors"]
    assert any(f"large target: {LISTED:,} repositories" in w for w in big["warnings"]), big["warnings"]
    assert f"warning: big: large target: {LISTED:,}" in stdout, "the terminal says so too"
    resources = {f["resource"].split(":")[0] for f in report["findings"] if f["rule"] == "RG-TAG-001"}
    assert len(resources) <= CAP
    report_bytes = sum(p.stat().st_size for p in (tmp_path / "out").iterdir())
    print(f"50k catalog, cap {CAP}: {elapsed:.1f} s, peak RSS {max_rss_kb / 1024:.0f} MB, ", end="")
    print(f"reports {report_bytes / 1e6:.2f} MB")
    assert max_rss_kb < MAX_RSS_MB * 1024
    assert report_bytes < 5_000_000
