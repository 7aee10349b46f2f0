"""How the ACR collector scales: one emulated registry with REPOS repositories.

The ACR emulator (sandbox/acr_emulator.py: Entra ID, ARM and the registry's data
plane, every answer checked against the committed REST descriptions) holds one
Premium registry with `--repos` repositories of three tags each. ARM and the data
plane are each reached through bench/latency_proxy.py, which adds `--rtt-ms` of
round trip. The collector runs with concurrency 1 and with `--concurrency`; the
bench prints wall time, requests (total, per registry, per repository beyond the
per-registry calls) and the speedup.

Budget: <= 3 requests per repository beyond the per-registry calls. The registry
listing carries every registry setting; per registry come replications, tokens,
scope maps, diagnostic settings and the data plane's token exchange, catalog token
and catalog; per repository one access token and one `_tags` page (100 tags).

    .venv/bin/python bench/acr_scale.py [--repos 200] [--rtt-ms 20] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audits.collectors import acr  # noqa: E402
from audits.collectors.base import CollectOptions  # noqa: E402
from audits.model import REPOSITORIES, FactState, TargetFacts  # noqa: E402
from audits.targets import AcrTarget  # noqa: E402
from bench.latency_proxy import latency_proxy  # noqa: E402
from sandbox.acr_emulator import AcrEmulator  # noqa: E402
from sandbox.acr_estate import SUBSCRIPTION_ID, compliant_registry, signed_release  # noqa: E402

PER_REGISTRY_REQUESTS = 1 + 4 + 3  # Registries_List; 4 sub-resources; exchange, catalog token, catalog


def seed(emulator_dir: Path, repos: int) -> AcrEmulator:
    registry = compliant_registry("benchregistry")
    registry.repositories = {f"team{i // 20}/app{i:03d}": signed_release(f"app{i}", "1.0.0") for i in range(repos)}
    registry.repositories.update(
        {name: [*tags, *signed_release(name, "1.1.0")[:1]] for name, tags in list(registry.repositories.items())}
    )
    return AcrEmulator(emulator_dir, SUBSCRIPTION_ID, [registry]).start()


def collect(emulator: AcrEmulator, concurrency: int) -> tuple[TargetFacts, float]:
    os.environ.update(emulator.env())
    target = AcrTarget.model_validate(emulator.target("bench", ["benchregistry"]))
    started = time.perf_counter()
    facts = acr.collect(target, CollectOptions(concurrency=concurrency, max_repositories=100_000))
    return facts, time.perf_counter() - started


def report(label: str, facts: TargetFacts, seconds: float, repos: int) -> None:
    seen = facts.facts[REPOSITORIES]
    ok = seen.state is FactState.OK and not any(r.error for r in seen.value)
    per_repo = (facts.requests - PER_REGISTRY_REQUESTS) / repos
    print(
        f"  {label:<16} {seconds:6.2f} s  requests {facts.requests:5d}  per registry {PER_REGISTRY_REQUESTS}  "
        f"per repository {per_repo:.2f}  repositories {len(seen.value or ())}{'' if ok else '  (ERRORS)'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repos", type=int, default=200)
    parser.add_argument("--rtt-ms", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        emulator = seed(Path(work), args.repos)
        try:
            registry = emulator.registries["benchregistry"]
            arm_port = int(emulator.base_url.rsplit(":", 1)[1])
            data_port = int(registry.login_server.rsplit(":", 1)[1])
            with latency_proxy(arm_port, args.rtt_ms) as arm, latency_proxy(data_port, args.rtt_ms) as data:
                emulator.base_url = f"https://127.0.0.1:{arm}"  # authority, ARM and nextLinks through the proxy
                registry.login_server = f"127.0.0.1:{data}"
                print(f"ACR collector, {args.repos} repositories x 3 tags, {args.rtt_ms:g} ms round trip")
                slow, slow_s = collect(emulator, 1)
                report("concurrency 1", slow, slow_s, args.repos)
                fast, fast_s = collect(emulator, args.concurrency)
                report(f"concurrency {args.concurrency}", fast, fast_s, args.repos)
                print(
                    f"  speedup {slow_s / fast_s:.1f}x (target >= 4x); contract violations: {len(emulator.violations)}"
                )
        finally:
            emulator.stop()


if __name__ == "__main__":
    main()
