"""How the distribution collector scales: requests per repository and speedup.

Seeds one real local registry (TLS with the sandbox CA + htpasswd) with
REPOS x TAGS images (every SIGN_EVERY-th repository's first tag cosign-signed),
audits it with concurrency 16 and with concurrency 1, and prints wall times,
requests (total, per repository, per kind of call), the minimal request count
(catalog pages + one tags/list per repository + one manifest HEAD per tag +
one signature lookup per tag) with the ratio, and the speedup.
Targets: ratio <= 1.1, speedup >= 4x. The registry is always stopped.

htpasswd uses bcrypt cost 4: Distribution checks the hash on every request,
so the default cost would measure bcrypt, not the collector.

Both audits run twice: straight over loopback (0 ms round trip: the client and
the registry then only compete for this machine's cores, which caps any
speedup near cores x) and through bench/latency_proxy.py with `--rtt-ms`
(default 5 ms, a registry in a nearby network, and 20 ms, one in another
region or behind a VPN), where concurrency overlaps the waiting that a real
network imposes.

    .venv/bin/python bench/distribution_scale.py [--repos 300] [--tags 10] [--rtt-ms 5,20]
"""

from __future__ import annotations

import argparse
import base64
import math
import os
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audits.collectors.base import CollectOptions, RequestCounter  # noqa: E402
from audits.collectors.distribution import CATALOG_PAGE_SIZE, collect  # noqa: E402
from audits.model import REPOSITORIES, FactState, RepositoryFacts, TargetFacts  # noqa: E402
from audits.targets import DistributionTarget  # noqa: E402
from bench.latency_proxy import latency_proxy  # noqa: E402
from bench.measure import process_cpu_seconds  # noqa: E402
from sandbox.images import build_image  # noqa: E402
from sandbox.oci import Manifest, with_annotations  # noqa: E402
from sandbox.pusher import OciPusher  # noqa: E402
from sandbox.registry import RegistrySpec, RunningRegistry, start_registry  # noqa: E402
from sandbox.signing import generate_key_pair, signature_for  # noqa: E402

SIGN_EVERY = 3


def seed(reg: RunningRegistry, repos: int, tags: int, private_key: Path) -> int:
    """Push the estate; returns how many signatures were pushed. Tags share
    blobs and differ by an annotation, so seeding is one PUT per tag."""
    base = build_image("bench")
    items: list[tuple[str, str, Manifest]] = []
    signatures: list[tuple[str, str, Manifest]] = []
    for r in range(repos):
        repo = f"team{r % 10}/service-{r:04d}"
        for t in range(tags):
            image = with_annotations(base, {"bench.repo": repo, "bench.tag": str(t)})
            items.append((repo, f"v1.{t}.0", image))
            if t == 0 and r % SIGN_EVERY == 0:
                signatures.append((repo, *signature_for(reg.address, repo, image.digest, private_key)))
    pusher = OciPusher.for_registry(reg, concurrency=16)
    pusher.push_many_sync(items)
    OciPusher.for_registry(reg, concurrency=16).push_many_sync(signatures)
    return len(signatures)


@dataclass(frozen=True)
class Run:
    facts: TargetFacts
    counter: RequestCounter
    wall_s: float
    client_cpu_s: float
    server_cpu_s: float


def audit(reg: RunningRegistry, concurrency: int, key_file: str, port: int | None = None) -> Run:
    url = reg.url if port is None else f"https://127.0.0.1:{port}"
    target = DistributionTarget(**{**reg.targets[0], "url": url, "timeout": 30})
    counter = RequestCounter()
    server0, cpu0, t0 = process_cpu_seconds(reg.pid), time.process_time(), time.perf_counter()
    facts = collect(target, CollectOptions(concurrency=concurrency, trusted_keys=(key_file,)), counter=counter)
    wall = time.perf_counter() - t0
    run = Run(facts, counter, wall, time.process_time() - cpu0, process_cpu_seconds(reg.pid) - server0)
    fact = facts.facts[REPOSITORIES]
    if fact.state is not FactState.OK:
        raise SystemExit(f"audit failed: {fact.detail}")
    return run


def summarize(facts: TargetFacts) -> tuple[int, int, int]:
    repos: tuple[RepositoryFacts, ...] = facts.facts[REPOSITORIES].value or ()
    tags = sum(len(r.tags) for r in repos)
    verified = sum(1 for r in repos for t in r.tags for s in (t.signatures or ()) if s.verified)
    errors = sum(1 for r in repos if r.error) + sum(1 for r in repos for t in r.tags if t.error)
    if errors:
        raise SystemExit(f"{errors} repository/tag errors during the audit")
    return len(repos), tags, verified


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=300)
    parser.add_argument("--tags", type=int, default=10)
    parser.add_argument("--rtt-ms", default="5,20", help="comma list of round trips (ms) to add through the proxy")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="regguard-bench-") as tmp:
        keys = generate_key_pair(Path(tmp) / "keys", "release")
        key_file = keys.public_key
        reg = start_registry(
            RegistrySpec(
                "bench", tls=True, users={"bench": base64.b64encode(os.urandom(18)).decode()}, bcrypt_rounds=4
            ),
            Path(tmp),
        )
        try:
            for name, value in reg.env.items():
                os.environ[name] = value
            t0 = time.perf_counter()
            signed = seed(reg, args.repos, args.tags, keys.private_key)
            print(f"seeded {args.repos} repositories x {args.tags} tags ({signed} signed) "
                  f"in {time.perf_counter() - t0:.1f}s")  # fmt: skip
            fast = audit(reg, 16, str(key_file))
            slow = audit(reg, 1, str(key_file))
            report(fast, slow, signed, "loopback, 0 ms round trip")
            for rtt in (float(x) for x in str(args.rtt_ms).split(",") if x.strip()):
                if rtt <= 0:
                    continue
                with latency_proxy(reg.port, rtt) as port:
                    fast = audit(reg, 16, str(key_file), port)
                    slow = audit(reg, 1, str(key_file), port)
                report(fast, slow, signed, f"through the latency proxy, {rtt:g} ms round trip")
        finally:
            reg.stop()


def report(fast: Run, slow: Run, signed: int, setting: str) -> None:
    print(f"\n== {setting} ==")
    repos, tags, verified = summarize(fast.facts)
    if summarize(slow.facts) != (repos, tags, verified):
        raise SystemExit("the two audits disagree")
    pages = max(1, math.ceil(repos / CATALOG_PAGE_SIZE))
    minimal = pages + repos + tags + tags
    requests = fast.facts.requests
    print(f"audited {repos} repositories, {tags} tags, {verified}/{signed} signatures verified")
    for label, run in (("concurrency 16", fast), ("concurrency  1", slow)):
        print(
            f"{label}: {run.wall_s:6.2f}s wall  {run.facts.requests} requests  "
            f"client CPU {run.client_cpu_s:5.2f}s  registry CPU {run.server_cpu_s:5.2f}s"
        )
    print("requests by call: " + ", ".join(f"{k} {v}" for k, v in sorted(fast.counter.by_call.items())))
    print(f"requests per repository: {requests / repos:.2f}")
    print(
        f"minimal requests: {minimal} ({pages} catalog pages + {repos} tags/list + {tags} manifest HEAD "
        f"+ {tags} signature lookups)"
    )
    print(f"ratio (requests / minimal): {requests / minimal:.3f}  (target <= 1.1)")
    print(f"speedup (concurrency 16 vs 1): {slow.wall_s / fast.wall_s:.2f}x  (target >= 4x)")
    # ru_maxrss is KiB on Linux; every body the collector reads is capped, so this stays flat with scale.
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the auditing process so far: {peak_mib:.0f} MiB")
    # Client and registry share this machine's cores: with both CPU-bound, no
    # concurrency can finish faster than their CPU time spread over all cores.
    cores = os.cpu_count() or 1
    floor = (fast.client_cpu_s + fast.server_cpu_s) / cores
    print(
        f"CPU floor on {cores} cores: {floor:.2f}s -> best possible speedup here {slow.wall_s / floor:.2f}x "
        f"(load average {os.getloadavg()[0]:.1f})"
    )


if __name__ == "__main__":
    main()
