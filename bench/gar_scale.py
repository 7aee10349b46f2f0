"""How the GAR collector scales: 200 repositories in the Artifact Registry emulator.

Seeds the emulator with REPOS Docker repositories (every other one compliant:
immutable tags, cleanup policies, CMEK, scanning; every fourth readable by
`allUsers`), each holding IMAGES images of one package, then collects through
bench/latency_proxy.py (every byte half a round trip late each way, default 20 ms
round trip) with concurrency 1 and 16 and prints wall time, API requests (total,
per repository beyond the per-project calls, per call) and the speedup.

Budget: <= 3 API requests per repository. Per repository only getIamPolicy and
dockerImages.list (1000 images a page) are needed; every setting comes with
repositories.list (1000 repositories a page). Per project: the token exchange,
projects.getProjectSettings, Resource Manager getIamPolicy and one
repositories.list page per location.

The emulator runs in this process (threads), the proxy in its own.

    .venv/bin/python bench/gar_scale.py [--repos 200] [--images 5] [--rtt-ms 20]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audits.collectors import gar  # noqa: E402
from audits.collectors.base import CollectOptions  # noqa: E402
from audits.model import REPOSITORIES, FactState, TargetFacts  # noqa: E402
from audits.targets import GarTarget  # noqa: E402
from bench.latency_proxy import latency_proxy  # noqa: E402
from sandbox.gar_emulator import EmulatedRepository, GarEmulator  # noqa: E402
from sandbox.gar_estate import PROJECT, compliant_settings, weak_settings  # noqa: E402

BUDGET_PER_REPO = 3.0
MIN_SPEEDUP = 4.0
LOCATIONS = ("europe", "us-central1")
PER_REPOSITORY_CALLS = ("repositories.getIamPolicy", "dockerImages.list")


def seed(emu: GarEmulator, repos: int, images: int) -> None:
    for index in range(repos):
        location = LOCATIONS[index % len(LOCATIONS)]
        settings = compliant_settings(PROJECT, location) if index % 2 == 0 else weak_settings()
        members = ["allUsers"] if index % 4 == 3 else ["group:deployers@acme.example"]
        emu.add_repository(
            EmulatedRepository(
                location,
                f"service-{index:04d}",
                settings,
                bindings=[{"role": "roles/artifactregistry.reader", "members": members}],
                images=[
                    {
                        "package": "app",
                        "digest": "sha256:" + f"{index:08x}{n:08x}".ljust(64, "0"),
                        "tags": [f"1.{n}.0"],
                        "uploadTime": "2026-11-20T09:00:00Z",
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    }
                    for n in range(images)
                ],
            )
        )


def run(target: GarTarget, concurrency: int) -> tuple[TargetFacts, float]:
    start = time.perf_counter()
    facts = gar.collect(target, CollectOptions(concurrency=concurrency, timeout=30))
    return facts, time.perf_counter() - start


def report(label: str, facts: TargetFacts, wall: float, emu: GarEmulator, repos: int) -> float:
    errors = [n for n, f in facts.facts.items() if f.state is FactState.ERROR]
    found = facts.facts[REPOSITORIES].value or ()
    per_repository = sum(v for k, v in emu.calls.items() if k.endswith(PER_REPOSITORY_CALLS))
    per_repo = per_repository / repos
    print(f"\n== {label}")
    print(f"wall time                 {wall:8.2f} s")
    print(f"repositories / images     {repos} / {sum(len(r.tags) for r in found)}")
    print(f"API requests              {facts.requests} (per repository {per_repository}, the rest per project)")
    print(f"requests per repository   {per_repo:8.2f}  (budget {BUDGET_PER_REPO:.0f})")
    print("by call                   " + ", ".join(f"{k.rsplit('.', 2)[-2]}.{k.rsplit('.', 1)[-1]} {v}"
                                                  for k, v in sorted(emu.calls.items())))  # fmt: skip
    print(f"fact errors               {errors or 'none'}")
    return per_repo


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repos", type=int, default=200)
    parser.add_argument("--images", type=int, default=5)
    parser.add_argument("--rtt-ms", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gar-bench-") as tmp, GarEmulator(PROJECT, Path(tmp)) as emu:
        seed(emu, args.repos, args.images)
        os.environ["GOOGLE_APPLICATION_CREDENTIALS"] = str(emu.write_key_file())
        port = int(emu.url.rsplit(":", 1)[1])
        with latency_proxy(port, args.rtt_ms) as proxied:
            url = f"http://127.0.0.1:{proxied}"
            target = GarTarget(
                name="bench", kind="gar", project=PROJECT, locations=list(LOCATIONS),
                endpoint_url=url, resource_manager_url=url,
            )  # fmt: skip
            emu.calls.clear()
            serial = run(target, 1)
            report(f"concurrency 1, {args.rtt_ms:g} ms round trip", *serial, emu, args.repos)
            emu.calls.clear()
            parallel = run(target, args.concurrency)
            per_repo = report(f"concurrency {args.concurrency}, {args.rtt_ms:g} ms round trip", *parallel, emu,
                              args.repos)  # fmt: skip
    speedup = serial[1] / parallel[1]
    print(f"\nspeedup {speedup:.2f}x with {args.concurrency} workers (target >= {MIN_SPEEDUP:g}x)")
    print(f"requests per repository {per_repo:.2f} (target <= {BUDGET_PER_REPO:g})")
    return 0 if per_repo <= BUDGET_PER_REPO and speedup >= MIN_SPEEDUP else 1


if __name__ == "__main__":
    raise SystemExit(main())
