"""How an estate of many AWS accounts scales, whole and in shards.

Seeds a moto organization (strict STS: AssumeRole checks the role and its trust)
of ACCOUNTS accounts (the management account and ACCOUNTS-1 members) x REGIONS
regions x REPOS repositories, then audits it with the real CLI twice against a
real PostgreSQL server started here:

* unsharded: one `regguard audit` process;
* sharded: SHARDS `regguard audit --shard I/SHARDS --run-id ...` processes at once,
  as a Kubernetes Indexed Job runs them; the last one to finish renders the
  merged run.

Prints requests per repository (budget <= 4, assume-role and registry-level calls
amortized), wall time unsharded and sharded, each shard's wall time and peak
memory, the sharded run against its slowest shard (target <= 1.3x), whether the
merged run has exactly the unsharded findings, and the time projected for
100 accounts x 500 repositories from the measured cost per request.

moto is one Python process (one GIL) on a 2-core machine: the shards share it,
so the sharded wall time shows the overhead of sharding and merging, not the
speedup AWS would give (where each account and region has its own API quotas).

    .venv/bin/python bench/estate_scale.py [--accounts 20] [--regions us-east-1,eu-west-1] [--repos 50] [--shards 4]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.measure import process_cpu_seconds, wait_with_usage  # noqa: E402
from sandbox.aws_org_estate import seed_organization  # noqa: E402
from sandbox.moto_server import MOTO_CREDENTIALS, start_moto_server  # noqa: E402
from tests.history.postgres_server import fresh_database, running_postgres  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BUDGET_PER_REPO = 4.0
SHARD_OVERHEAD_TARGET = 1.3
PROJECTED_ACCOUNTS, PROJECTED_REPOS_PER_ACCOUNT = 100, 500
ACCOUNTS_PER_LISTING_PAGE = 20  # Organizations ListAccounts' page size
AUDIT_TIMEOUT_S = 1800


@dataclass(frozen=True)
class Audited:
    """One `regguard audit` process: its wall time, peak memory and report."""

    wall_s: float
    peak_rss_mb: float
    exit_code: int
    report: dict[str, Any]


def run_audits(
    argvs: list[list[str]], env: dict[str, str], reports: list[Path], timeout: float = AUDIT_TIMEOUT_S
) -> tuple[list[Audited], float]:
    """Start every audit at once; return each one's figures and the wall time
    until the last one ended (its merged report included). Each audit's stderr
    goes to `<its output directory>.stderr.log`, whose tail a failure shows."""
    logs = [report.parent.with_name(f"{report.parent.name}.stderr.log") for report in reports]
    started = time.monotonic()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for argv, log in zip(argvs, logs, strict=True):
            with log.open("wb") as stderr:
                procs.append(subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr))
        exited = wait_with_usage(procs, timeout)
    except BaseException:
        for proc in procs:  # those wait_with_usage did not get to (a failed start)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for log in logs[: len(procs)]:
            print(f"{log}:\n{_tail(log)}", file=sys.stderr)
        raise
    total = max(e.ended_at for e in exited) - started
    out = []
    for run, report, log in zip(exited, reports, logs, strict=True):
        if run.exit_code not in (0, 1, 3):
            raise RuntimeError(f"audit exited {run.exit_code}; {log}:\n{_tail(log)}")
        wall, report_json = run.ended_at - started, json.loads(report.read_text())
        out.append(Audited(wall, run.max_rss_kb / 1024, run.exit_code, report_json))
    return out, total


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:]


def audit_argv(config: Path, output: Path, history: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "audits.cli", "audit", "-c", str(config), "--output", str(output),
            "--format", "json", "--history", history, *extra]


def identities(report: dict[str, Any]) -> Counter[tuple[str, str, str, str]]:
    return Counter((f["rule"], f["target"], f["resource"], f["status"]) for f in report["findings"])


def audit_seconds(report: dict[str, Any]) -> float:
    """The audit's own time (listing, collection, judging), without process start-up."""
    started, finished = (datetime.fromisoformat(report[k]) for k in ("started_at", "finished_at"))
    return (finished - started).total_seconds()


def requests_of(report: dict[str, Any]) -> int:
    return sum(int(t.get("requests") or 0) for t in report["targets"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=20, help="accounts, the management account included")
    parser.add_argument("--regions", default="us-east-1,eu-west-1")
    parser.add_argument("--repos", type=int, default=50, help="repositories per (account, region)")
    parser.add_argument("--shards", type=int, default=4)
    args = parser.parse_args()
    regions = [r.strip() for r in args.regions.split(",") if r.strip()]
    env = {**os.environ, **MOTO_CREDENTIALS}  # for the audits; seeding passes its own credentials

    with tempfile.TemporaryDirectory(prefix="estate-bench-") as tmp, running_postgres(fsync=True) as postgres:
        work = Path(tmp)
        with start_moto_server(work / "moto", strict_sts=True) as server:
            t0 = time.perf_counter()
            org = seed_organization(server.url, accounts=args.accounts - 1, regions=regions,
                                    repositories_per_scope=args.repos, missing_role_accounts=0)
            repos = org.total_repositories
            scopes = len(org.account_ids) * len(regions)
            print(f"seeded {len(org.account_ids)} accounts x {len(regions)} regions x {args.repos} repositories "
                  f"= {repos} repositories in {scopes} scopes, in {time.perf_counter() - t0:.1f} s")
            config = work / "regguard.yaml"
            target = {"name": "org", "kind": "ecr", "regions": regions, "endpoint_url": server.url,
                      "organization": {"role_name": org.role_name}}
            config.write_text(yaml.safe_dump({"environment": "prod", "targets": [target]}))

            cpu0 = process_cpu_seconds(server.pid)
            (whole,), whole_wall = run_audits(
                [audit_argv(config, work / "whole", fresh_database(postgres, "whole"))], env,
                [work / "whole" / "report.json"])
            whole_cpu = process_cpu_seconds(server.pid) - cpu0
            sharded_db = fresh_database(postgres, "sharded")
            argvs = [audit_argv(config, work / f"shard-{i}", sharded_db, "--shard", f"{i}/{args.shards}",
                                "--run-id", "bench") for i in range(args.shards)]
            shards, sharded_wall = run_audits(argvs, env, [work / f"shard-{i}" / "report.json"
                                                           for i in range(args.shards)])
        merged = [json.loads(p.read_text()) for p in sorted(work.glob("shard-*/merged/report.json"))]

    listing = math.ceil(len(org.account_ids) / ACCOUNTS_PER_LISTING_PAGE)  # ListAccounts pages, per process
    met = report_figures(args, whole, whole_wall, whole_cpu, shards, sharded_wall, merged, repos, scopes, listing,
                         len(regions))
    return 0 if met else 1


def report_figures(
    args: argparse.Namespace, whole: Audited, whole_wall: float, whole_cpu: float, shards: list[Audited],
    sharded_wall: float, merged: list[dict[str, Any]], repos: int, scopes: int, listing: int, regions: int,
) -> bool:
    """Print the figures; True when requests per repository are within budget and
    the sharded run is within its target of its slowest shard."""
    requests = requests_of(whole.report) + listing
    per_repo = requests / repos
    complete = sum(1 for t in whole.report["targets"] if t["complete"])
    print(f"\n== unsharded: {scopes} scopes ({complete} complete), exit {whole.exit_code}")
    print(f"wall time              {whole_wall:8.2f} s   (audit {audit_seconds(whole.report):.2f} s, the rest is "
          f"start-up and storing)   peak memory {whole.peak_rss_mb:6.0f} MB")
    print(f"AWS API requests       {requests}  (incl. {listing} ListAccounts page(s) and one AssumeRole per account)")
    print(f"requests/repository    {per_repo:8.2f}  (budget {BUDGET_PER_REPO:.0f}: "
          f"{'within' if per_repo <= BUDGET_PER_REPO else 'OVER'})")
    print(f"moto server CPU        {whole_cpu:8.2f} s = {whole_cpu / whole_wall:.0%} of one core (one process)")

    slowest = max(s.wall_s for s in shards)
    print(f"\n== {args.shards} shards at once (one moto, one PostgreSQL)")
    for i, shard in enumerate(shards):
        print(f"shard {i}/{args.shards}: {len(shard.report['targets']):3d} scopes  {shard.wall_s:7.2f} s "
              f"(audit {audit_seconds(shard.report):6.2f} s)  "
              f"peak {shard.peak_rss_mb:5.0f} MB  exit {shard.exit_code}")
    ratio = sharded_wall / slowest
    print(f"sharded run            {sharded_wall:8.2f} s = {ratio:.2f}x its slowest shard "
          f"(target <= {SHARD_OVERHEAD_TARGET}: {'met' if ratio <= SHARD_OVERHEAD_TARGET else 'MISSED'})")
    print(f"sharded vs unsharded   {whole_wall / sharded_wall:8.2f}x (moto is one process: no speedup to expect)")
    same = bool(merged) and all(identities(m) == identities(whole.report) for m in merged)
    print(f"merged run == unsharded findings: {same} ({sum(identities(whole.report).values())} findings)")

    project(requests, audit_seconds(whole.report), scopes, repos, regions, args.shards)
    return per_repo <= BUDGET_PER_REPO and ratio <= SHARD_OVERHEAD_TARGET


def project(requests: int, wall: float, scopes: int, repos: int, regions: int, shards: int) -> None:
    """Linear in requests: the per-scope fixed requests and the per-repository
    requests as measured, at the measured seconds per request of one process."""
    fixed_per_scope = (requests - 3 * repos) / scopes  # beyond the three calls each repository needs
    target_scopes = PROJECTED_ACCOUNTS * regions
    target_repos = PROJECTED_ACCOUNTS * PROJECTED_REPOS_PER_ACCOUNT
    target_requests = fixed_per_scope * target_scopes + 3 * target_repos
    seconds_per_request = wall / requests
    one = target_requests * seconds_per_request
    print(f"\n== projected: {PROJECTED_ACCOUNTS} accounts x {PROJECTED_REPOS_PER_ACCOUNT} repositories "
          f"({target_repos} repositories over {target_scopes} scopes)")
    print(f"per scope {fixed_per_scope:.1f} fixed requests, 3 per repository; {target_requests:.0f} requests; "
          f"{1000 * seconds_per_request:.2f} ms per request as measured")
    print(f"one process: {one / 60:6.1f} min; {shards} shards on their own machines/quotas: "
          f"{one / shards / 60:6.1f} min; 16 shards: {one / 16 / 60:6.1f} min")


if __name__ == "__main__":
    raise SystemExit(main())
