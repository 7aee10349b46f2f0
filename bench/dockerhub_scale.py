"""How the Docker Hub collector scales: requests per repository and speedup.

Starts the Docker Hub API emulator (a process, every answer checked against
the committed hub-api.yaml) holding one organization of REPOS repositories x
TAGS tags, and a real docker-registry (TLS + htpasswd) holding the same images
(every SIGN_EVERY-th repository's first tag cosign-signed). Audits it at
concurrency 16 and 1, both through bench/latency_proxy.py (default 20 ms round
trip, Docker Hub seen from another region), and prints wall times, requests by
kind of call, the Hub API requests per repository beyond the OCI tag walk
(tags/list, manifest HEADs, signature manifests; target <= 3) and the speedup
(target >= 4x). Everything started is stopped.

    .venv/bin/python bench/dockerhub_scale.py [--repos 300] [--tags 20] [--rtt-ms 20]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audits.collectors.base import CollectOptions, RequestCounter  # noqa: E402
from audits.collectors.dockerhub import collect  # noqa: E402
from audits.model import REPOSITORIES, TAG_IMMUTABILITY, FactState, RepositoryFacts, TargetFacts  # noqa: E402
from audits.targets import DockerHubTarget  # noqa: E402
from bench.latency_proxy import latency_proxy  # noqa: E402
from sandbox.dockerhub_emulator import HOST, HubNamespace, HubRepository, HubState  # noqa: E402
from sandbox.dockerhub_estate import start_emulator  # noqa: E402
from sandbox.images import build_image  # noqa: E402
from sandbox.oci import Manifest, with_annotations  # noqa: E402
from sandbox.process import stop_child  # noqa: E402
from sandbox.pusher import OciPusher  # noqa: E402
from sandbox.registry import RegistrySpec, RunningRegistry, start_registry  # noqa: E402
from sandbox.signing import generate_key_pair, signature_for  # noqa: E402

SIGN_EVERY = 3
NAMESPACE = "bench-org"
USER = "bench-auditor"
OCI_TAG_WALK = frozenset({"GET tags", "HEAD manifest", "GET manifest", "GET blob"})


def seed_registry(reg: RunningRegistry, repos: int, tags: int, private_key: Path) -> int:
    """One PUT per tag (tags share blobs, differ by an annotation); returns signatures pushed."""
    base = build_image("hub-bench")
    items: list[tuple[str, str, Manifest]] = []
    signatures: list[tuple[str, str, Manifest]] = []
    for r in range(repos):
        repo = f"{NAMESPACE}/service-{r:04d}"
        for t in range(tags):
            image = with_annotations(base, {"bench.repo": repo, "bench.tag": str(t)})
            items.append((repo, f"v1.{t}.0", image))
            if t == 0 and r % SIGN_EVERY == 0:
                signatures.append((repo, *signature_for("index.docker.io", repo, image.digest, private_key)))
    OciPusher.for_registry(reg, concurrency=16).push_many_sync(items)
    OciPusher.for_registry(reg, concurrency=16).push_many_sync(signatures)
    return len(signatures)


def hub_state(repos: int, tags: int, token: str) -> HubState:
    pushed = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    repositories = {
        f"service-{r:04d}": HubRepository(
            f"service-{r:04d}", True, 1000 + r, True, ["v.*"], {f"v1.{t}.0": pushed for t in range(tags)}
        )
        for r in range(repos)
    }
    namespace = HubNamespace(NAMESPACE, owners=[USER], repositories=repositories)
    return HubState(accounts={USER: token}, namespaces={NAMESPACE: namespace})


@dataclass(frozen=True)
class Run:
    facts: TargetFacts
    counter: RequestCounter
    wall_s: float


def audit(target: DockerHubTarget, concurrency: int, key_file: str) -> Run:
    counter = RequestCounter()
    t0 = time.perf_counter()
    facts = collect(target, CollectOptions(concurrency=concurrency, trusted_keys=(key_file,)), counter=counter)
    run = Run(facts, counter, time.perf_counter() - t0)
    for name in (REPOSITORIES, TAG_IMMUTABILITY):
        if facts.facts[name].state is not FactState.OK:
            raise SystemExit(f"audit failed: {name}: {facts.facts[name].detail}")
    return run


def summarize(facts: TargetFacts) -> tuple[int, int, int]:
    repos: tuple[RepositoryFacts, ...] = facts.facts[REPOSITORIES].value or ()
    errors = sum(1 for r in repos if r.error) + sum(1 for r in repos for t in r.tags if t.error)
    if errors:
        raise SystemExit(f"{errors} repository/tag errors during the audit")
    tags = sum(len(r.tags) for r in repos)
    verified = sum(1 for r in repos for t in r.tags for s in (t.signatures or ()) if s.verified)
    return len(repos), tags, verified


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=300)
    parser.add_argument("--tags", type=int, default=20)
    parser.add_argument("--rtt-ms", type=float, default=20.0)
    args = parser.parse_args()
    token = "dckr_pat_" + os.urandom(12).hex()
    os.environ.update({"BENCH_HUB_USER": USER, "BENCH_HUB_TOKEN": token})
    with tempfile.TemporaryDirectory(prefix="regguard-hub-bench-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        keys = generate_key_pair(work / "keys", "release")
        reg = start_registry(RegistrySpec("hub-bench", tls=True, users={USER: token}, bcrypt_rounds=4), work)
        stack.callback(reg.stop)
        t0 = time.perf_counter()
        signed = seed_registry(reg, args.repos, args.tags, keys.private_key)
        try:
            emulator, hub_port = start_emulator(hub_state(args.repos, args.tags, token), work)
        except RuntimeError as exc:
            raise SystemExit(str(exc)) from exc
        stack.callback(stop_child, emulator, emulator.pid, None)
        seeded_s = time.perf_counter() - t0
        print(f"seeded {args.repos} repositories x {args.tags} tags ({signed} signed) in {seeded_s:.1f}s")
        hub_proxy = stack.enter_context(latency_proxy(hub_port, args.rtt_ms))
        oci_proxy = stack.enter_context(latency_proxy(reg.port, args.rtt_ms))
        target = DockerHubTarget(
            name="bench", kind="dockerhub", namespace=NAMESPACE, username_env="BENCH_HUB_USER",
            token_env="BENCH_HUB_TOKEN", hub_url=f"http://{HOST}:{hub_proxy}",
            registry_url=f"https://{HOST}:{oci_proxy}", ca_file=reg.ca_file, allowed_token_realms=[], timeout=60,
        )  # fmt: skip
        fast = audit(target, 16, str(keys.public_key))
        slow = audit(target, 1, str(keys.public_key))
        report(fast, slow, signed, args.rtt_ms)


def report(fast: Run, slow: Run, signed: int, rtt_ms: float) -> None:
    repos, tags, verified = summarize(fast.facts)
    if summarize(slow.facts) != (repos, tags, verified):
        raise SystemExit("the two audits disagree")
    walk = sum(n for call, n in fast.counter.by_call.items() if call in OCI_TAG_WALK)
    beyond = fast.counter.total - walk
    print(f"\n== through the latency proxy, {rtt_ms:g} ms round trip (Hub API and registry) ==")
    print(f"audited {repos} repositories, {tags} tags, {verified}/{signed} signatures verified")
    for label, run in (("concurrency 16", fast), ("concurrency  1", slow)):
        print(f"{label}: {run.wall_s:7.2f}s wall  {run.counter.total} requests")
    print("requests by call: " + ", ".join(f"{k} {v}" for k, v in sorted(fast.counter.by_call.items())))
    print(f"OCI tag walk (tags/list, manifest HEAD/GET, blobs): {walk}; everything else: {beyond}")
    print(f"requests per repository beyond the OCI tag walk: {beyond / repos:.2f}  (target <= 3)")
    print(f"speedup (concurrency 16 vs 1): {slow.wall_s / fast.wall_s:.2f}x  (target >= 4x)")


if __name__ == "__main__":
    main()
