"""GHCR collector at scale: an emulated organization of 300 packages x 20 tags
(every third package's first tag cosign-signed, the signatures in a real
docker-registry), audited at concurrency 16 and 1, on loopback and through
bench/latency_proxy.py (API and registry both behind the round trip).

Prints GitHub REST requests per package beyond the OCI side (target <= 3), the
OCI requests (endpoint probe + one signature manifest per signed digest) and
the speedup of concurrency 16 over 1 at a 20 ms round trip (target >= 4x).

    .venv/bin/python bench/ghcr_scale.py [--packages 300] [--tags 20] [--rtt-ms 20]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audits.collectors.base import CollectOptions, RequestCounter  # noqa: E402
from audits.collectors.ghcr import collect  # noqa: E402
from audits.model import REPOSITORIES, FactState, RepositoryFacts, TargetFacts  # noqa: E402
from audits.targets import GhcrTarget  # noqa: E402
from bench.latency_proxy import latency_proxy  # noqa: E402
from sandbox.ghcr_estate import start_emulator  # noqa: E402
from sandbox.github_emulator import GitHubState, Owner, Package, Token, Version  # noqa: E402
from sandbox.images import build_image  # noqa: E402
from sandbox.oci import Manifest, with_annotations  # noqa: E402
from sandbox.process import stop_child  # noqa: E402
from sandbox.pusher import OciPusher  # noqa: E402
from sandbox.registry import RegistrySpec, RunningRegistry, start_registry  # noqa: E402
from sandbox.signing import generate_key_pair, signature_for  # noqa: E402

OWNER = "bench-org"
TOKEN = "github_pat_bench" + "0" * 24
SIGN_EVERY = 3
OCI_CALLS = ("GET v2", "GET catalog", "GET manifest", "HEAD manifest", "GET blob", "GET referrers", "GET tags")


def seed(registry: RunningRegistry, packages: int, tags: int, private_key: Path) -> tuple[GitHubState, int]:
    """The emulator's state; only the signatures go to the registry (the collector
    reads tags and digests from the packages API, never the images themselves)."""
    base = build_image("ghcr-bench")
    owner = Owner(OWNER, "org")
    signatures: list[tuple[str, str, Manifest]] = []
    for p in range(packages):
        name = f"service-{p:04d}"
        package = owner.packages[name] = Package(name, "private", f"{OWNER}/{name}")
        for t in range(tags):
            digest = with_annotations(base, {"bench.package": name, "bench.tag": str(t)}).digest
            package.versions.append(Version(p * 1000 + t, digest, [f"v1.{t}.0"], f"2026-03-{1 + t % 28:02d}T00:00:00Z"))
            if t == 0 and p % SIGN_EVERY == 0:
                tag, manifest = signature_for(registry.address, f"{OWNER}/{name}", digest, private_key)
                signatures.append((f"{OWNER}/{name}", tag, manifest))
                package.versions.append(Version(p * 1000 + 999, manifest.digest, [tag], "2026-03-01T00:00:00Z"))
    OciPusher.for_registry(registry, concurrency=16).push_many_sync(signatures)
    state = GitHubState(owners={OWNER: owner}, tokens={TOKEN: Token("fine-grained", (), None, True)})
    state.rate_limit = 1_000_000
    return state, len(signatures)


@dataclass(frozen=True)
class Run:
    facts: TargetFacts
    counter: RequestCounter
    wall_s: float


def audit(api_url: str, registry_url: str, ca_file: Path, concurrency: int, key: Path) -> Run:
    target = GhcrTarget(name="bench", kind="ghcr", owner=OWNER, token_env="GHCR_BENCH_TOKEN", api_url=api_url,
                        registry_url=registry_url, ca_file=ca_file, timeout=30)
    counter = RequestCounter()
    started = time.perf_counter()
    facts = collect(target, CollectOptions(concurrency=concurrency, trusted_keys=(str(key),)), counter=counter)
    run = Run(facts, counter, time.perf_counter() - started)
    fact = facts.facts[REPOSITORIES]
    if fact.state is not FactState.OK:
        raise SystemExit(f"audit failed: {fact.detail}")
    return run


def report(fast: Run, slow: Run, signed: int, setting: str) -> None:
    repos: tuple[RepositoryFacts, ...] = fast.facts.facts[REPOSITORIES].value or ()
    tags = sum(len(r.tags) for r in repos)
    verified = sum(1 for r in repos for t in r.tags for s in (t.signatures or ()) if s.verified)
    errors = sum(1 for r in repos if r.error)
    oci = sum(v for k, v in fast.counter.by_call.items() if k in OCI_CALLS)
    api = fast.counter.total - oci
    print(f"\n== {setting} ==")
    print(f"audited {len(repos)} packages, {tags} tags, {verified}/{signed} signatures verified, {errors} errors")
    for label, run in (("concurrency 16", fast), ("concurrency  1", slow)):
        print(f"{label}: {run.wall_s:6.2f}s wall  {run.facts.requests} requests")
    print("requests by call: " + ", ".join(f"{k} {v}" for k, v in sorted(fast.counter.by_call.items())))
    print(f"GitHub REST requests: {api} = {api / len(repos):.2f} per package (target <= 3 beyond the OCI side)")
    print(f"OCI requests: {oci} (endpoint probe + one signature manifest per signed digest)")
    print(f"speedup (concurrency 16 vs 1): {slow.wall_s / fast.wall_s:.2f}x  (target >= 4x at 20 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=300)
    parser.add_argument("--tags", type=int, default=20)
    parser.add_argument("--rtt-ms", default="20", help="comma list of round trips (ms) through the proxy")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="regguard-ghcr-bench-") as tmp:
        work = Path(tmp)
        keys = generate_key_pair(work / "keys", "release")
        registry = start_registry(RegistrySpec("ghcr", tls=True, users={OWNER: TOKEN}, bcrypt_rounds=4), work)
        emulator = None
        try:
            t0 = time.perf_counter()
            state, signed = seed(registry, args.packages, args.tags, keys.private_key)
            emulator, api_url, ca_file = start_emulator(state, work / "ghcr")
            print(f"seeded {args.packages} packages x {args.tags} tags ({signed} signed) in "
                  f"{time.perf_counter() - t0:.1f}s")  # fmt: skip
            os.environ["GHCR_BENCH_TOKEN"] = TOKEN
            fast = audit(api_url, registry.url, ca_file, 16, keys.public_key)
            slow = audit(api_url, registry.url, ca_file, 1, keys.public_key)
            report(fast, slow, signed, "loopback, 0 ms round trip")
            api_port = int(api_url.rsplit(":", 1)[1])
            for rtt in (float(x) for x in str(args.rtt_ms).split(",") if x.strip()):
                with latency_proxy(api_port, rtt) as api_proxy, latency_proxy(registry.port, rtt) as reg_proxy:
                    urls = (f"https://127.0.0.1:{api_proxy}", f"https://127.0.0.1:{reg_proxy}")
                    fast = audit(*urls, ca_file, 16, keys.public_key)
                    slow = audit(*urls, ca_file, 1, keys.public_key)
                report(fast, slow, signed, f"through the latency proxy, {rtt:g} ms round trip")
        finally:
            if emulator is not None:
                stop_child(emulator, emulator.pid, None)
            registry.stop()


if __name__ == "__main__":
    main()
