"""How the harbor collector scales: requests per repository and speedup.

Serves PROJECTS x REPOS x ARTIFACTS (default 50 x 40 x 10) from the Harbor
emulator (its own process, every answer still checked against the swagger),
audits it through bench/latency_proxy.py at `--rtt-ms` (default 20 ms) with
concurrency 16 and with concurrency 1, and prints wall times, requests by
call, requests per repository beyond the per-project calls (system calls,
the endpoint probe and each project's immutable rules, retention policy and
repository listing set apart), and the speedup.
Targets: at most 3 requests per repository beyond the per-project calls,
speedup >= 4x at 20 ms. The emulator and the proxy are always stopped.

    .venv/bin/python bench/harbor_scale.py [--projects 50] [--repos 40] [--artifacts 10] [--rtt-ms 20]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audits.collectors.base import CollectOptions, RequestCounter  # noqa: E402
from audits.collectors.harbor import collect  # noqa: E402
from audits.model import REPOSITORIES, FactState, RepositoryFacts, TargetFacts  # noqa: E402
from audits.targets import HarborTarget  # noqa: E402
from bench.latency_proxy import latency_proxy  # noqa: E402
from sandbox.harbor_seed import SeededImage, StateBuilder  # noqa: E402
from sandbox.process import free_port, port_open  # noqa: E402

USER, PASSWORD = "bench-auditor", "bench-password-not-secret"
SYSTEM_CALLS = 7  # systeminfo, configurations, scanners, robots, replication policies, audit logs, projects
PROBE_CALLS = 3  # plain-HTTP /v2/, anonymous /v2/ and /v2/_catalog
PER_PROJECT_CALLS = 3  # immutable tag rules, retention policy, repository listing


def build_state(projects: int, repos: int, artifacts: int) -> str:
    b = StateBuilder()
    b.system()
    b.user(USER, PASSWORD, sysadmin=True)
    for p in range(projects):
        name = f"team-{p:02d}"
        pid = b.project(name, public=False, secure=True, retention_id=p + 1)
        b.immutable_rule(pid, "{v*,*.*,release-*}")
        b.retention(p + 1, pid)
        for r in range(repos):
            repo = f"{name}/svc-{r:02d}"
            for a in range(artifacts):
                digest = f"sha256:{p:08x}{r:08x}{a:048x}"
                b.artifact(SeededImage(repo, f"v1.{a}.0", digest), pushed_days_ago=artifacts - a)
    return b.state.to_json()


@dataclass(frozen=True)
class Run:
    facts: TargetFacts
    counter: RequestCounter
    wall_s: float


def audit(port: int, concurrency: int) -> Run:
    target = HarborTarget(name="bench", kind="harbor", url=f"http://127.0.0.1:{port}", timeout=60,
                          username_env="BENCH_HARBOR_USER", password_env="BENCH_HARBOR_PASSWORD")  # fmt: skip
    counter = RequestCounter()
    t0 = time.perf_counter()
    facts = collect(target, CollectOptions(concurrency=concurrency), counter=counter)
    wall = time.perf_counter() - t0
    fact = facts.facts[REPOSITORIES]
    if fact.state is not FactState.OK:
        raise SystemExit(f"audit failed: {fact.detail}")
    repos: tuple[RepositoryFacts, ...] = fact.value or ()
    errors = [r.name for r in repos if r.error]
    if errors:
        raise SystemExit(f"{len(errors)} repositories failed, e.g. {errors[0]}")
    return Run(facts, counter, wall)


def start_emulator(state_file: Path, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    args = [sys.executable, "-m", "sandbox.harbor_emulator", "--state", str(state_file), "--port", str(port)]
    with log.open("ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[1])
    deadline = time.monotonic() + 30
    while not port_open("127.0.0.1", port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"the emulator did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.1)
    return proc, port


def report(fast: Run, slow: Run, projects: int, rtt: float) -> None:
    repos = len(fast.facts.facts[REPOSITORIES].value or ())
    tags = sum(len(r.tags) for r in fast.facts.facts[REPOSITORIES].value or ())
    print(f"\n== through the latency proxy, {rtt:g} ms round trip ==")
    print(f"audited {projects} projects, {repos} repositories, {tags} tags")
    for label, run in (("concurrency 16", fast), ("concurrency  1", slow)):
        print(f"{label}: {run.wall_s:6.2f}s wall  {run.facts.requests} requests")
    fixed = SYSTEM_CALLS + PROBE_CALLS + PER_PROJECT_CALLS * projects
    per_repo = (fast.facts.requests - fixed) / max(repos, 1)
    print(f"per-project and system calls: {fixed} ({PER_PROJECT_CALLS} x {projects} projects "
          f"+ {SYSTEM_CALLS} system + {PROBE_CALLS} probe)")  # fmt: skip
    print(f"requests per repository beyond the per-project calls: {per_repo:.2f}  (target <= 3)")
    print(f"speedup (concurrency 16 vs 1): {slow.wall_s / fast.wall_s:.2f}x  (target >= 4x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--projects", type=int, default=50)
    parser.add_argument("--repos", type=int, default=40)
    parser.add_argument("--artifacts", type=int, default=10)
    parser.add_argument("--rtt-ms", type=float, default=20.0)
    args = parser.parse_args()
    os.environ["BENCH_HARBOR_USER"], os.environ["BENCH_HARBOR_PASSWORD"] = USER, PASSWORD
    with tempfile.TemporaryDirectory(prefix="regguard-bench-") as tmp:
        state_file = Path(tmp) / "state.json"
        t0 = time.perf_counter()
        state_file.write_text(build_state(args.projects, args.repos, args.artifacts))
        print(f"built {args.projects} x {args.repos} x {args.artifacts} in {time.perf_counter() - t0:.1f}s")
        proc, port = start_emulator(state_file, Path(tmp) / "emulator.log")
        try:
            t0 = time.perf_counter()
            audit(port, 16)  # the emulator checks each answer against the swagger once
            print(f"first audit (the emulator checks every answer once): {time.perf_counter() - t0:.1f}s")
            with latency_proxy(port, args.rtt_ms) as proxied:
                fast = audit(proxied, 16)
                slow = audit(proxied, 1)
            report(fast, slow, args.projects, args.rtt_ms)
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
