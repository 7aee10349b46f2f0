"""How the ECR collector scales against a real moto server.

Seeds moto with REPOS x IMAGES images (mixed compliance: every other repository
IMMUTABLE, every third with a lifecycle policy, every fourth with a public pull
policy, every fifth with a real cosign signature on its first release), plus IAM
users with push keys and a CloudTrail trail. Then collects (with the signing key
trusted, so signatures are verified) with concurrency 1 and with `--concurrency`
and prints wall time, AWS API requests (total, per repository, per call),
throughput, verified signatures, and the speedup.

Budget: <= 4 requests per repository with the registry-level calls amortized. Per
repository only DescribeImages (1000 images a page), GetLifecyclePolicy and
GetRepositoryPolicy are needed: mutability, encryption and scan-on-push come with
DescribeRepositories (1000 repositories a page); a repository holding signatures
adds one BatchGetImage (100 signature manifests a call).

moto is one Python process (one GIL) on a 2-core machine, so the speedup shows
where moto saturates, not what AWS would allow. moto is always stopped.

    .venv/bin/python bench/ecr_scale.py [--repos 200] [--images 50] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audits.collectors import ecr  # noqa: E402
from audits.collectors.base import CollectOptions, RequestCounter  # noqa: E402
from audits.model import REPOSITORIES, FactState, TargetFacts  # noqa: E402
from audits.targets import EcrTarget  # noqa: E402
from bench.measure import process_cpu_seconds  # noqa: E402
from sandbox.ecr_estate import (  # noqa: E402
    FULL_ECR_POLICY,
    LIFECYCLE_POLICY,
    REGION,
    aws_session,
    image_manifest,
    pull_policy,
    put_signature,
)
from sandbox.moto_server import MOTO_CREDENTIALS, start_moto_server  # noqa: E402
from sandbox.signing import generate_key_pair  # noqa: E402

BUDGET_PER_REPO = 4.0


def seed_repository(client: Any, index: int, images: int, key: Path) -> int:
    """Create one repository and put `images` images; returns the images put."""
    name = f"team{index % 10}/service-{index:04d}"
    client.create_repository(
        repositoryName=name,
        imageTagMutability="IMMUTABLE" if index % 2 == 0 else "MUTABLE",
        imageScanningConfiguration={"scanOnPush": index % 3 == 0},
    )
    if index % 3 == 0:
        client.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=json.dumps(LIFECYCLE_POLICY))
    if index % 4 == 0:
        client.set_repository_policy(repositoryName=name, policyText=json.dumps(pull_policy("*")))
    signed = index % 5 == 0
    releases = images - (1 if signed else 0) - (1 if index % 2 else 0)
    first = ""
    for k in range(releases):
        digest = client.put_image(
            repositoryName=name, imageManifest=image_manifest(f"{name}:{k}"), imageTag=f"v1.{k}.0"
        )["image"]["imageId"]["imageDigest"]
        first = first or digest
    if index % 2:  # mutable repositories also carry `latest`
        client.put_image(repositoryName=name, imageManifest=image_manifest(f"{name}:latest"), imageTag="latest")
    if signed and first:
        put_signature(client, name, first, key)
    return images


def seed(endpoint: str, repos: int, images: int, threads: int, key: Path) -> int:
    session = aws_session(REGION)
    client = session.client("ecr", endpoint_url=endpoint)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        total = sum(pool.map(lambda i: seed_repository(client, i, images, key), range(repos)))
    iam = session.client("iam", endpoint_url=endpoint)
    policy = iam.create_policy(PolicyName="ecr-full", PolicyDocument=json.dumps(FULL_ECR_POLICY))["Policy"]["Arn"]
    for u in range(5):
        iam.create_user(UserName=f"ci-{u}")
        iam.attach_user_policy(UserName=f"ci-{u}", PolicyArn=policy)
        iam.create_access_key(UserName=f"ci-{u}")
    session.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench-trail")
    session.client("cloudtrail", endpoint_url=endpoint).create_trail(
        Name="bench-trail", S3BucketName="bench-trail", IsMultiRegionTrail=True
    )
    return total


def run(
    target: EcrTarget, concurrency: int, trusted: str, moto_pid: int
) -> tuple[TargetFacts, RequestCounter, float, float]:
    """Audit once; also return the moto server's CPU seconds meanwhile
    (moto serves from one Python process: ~1.0 s per wall second is saturation)."""
    options = CollectOptions(concurrency=concurrency, timeout=30, trusted_keys=(trusted,))
    counter = RequestCounter()
    clients = ecr.make_clients(target, options)
    cpu0, start = process_cpu_seconds(moto_pid), time.perf_counter()
    facts = ecr.collect_with_clients(target, options, clients, counter=counter)
    return facts, counter, time.perf_counter() - start, process_cpu_seconds(moto_pid) - cpu0


def report(label: str, facts: TargetFacts, counter: RequestCounter, wall: float, moto_cpu: float, repos: int) -> None:
    errors = [n for n, f in facts.facts.items() if f.state is FactState.ERROR]
    found = facts.facts[REPOSITORIES].value or ()
    tags = sum(len(r.tags) for r in found)
    signatures = [s for r in found for t in r.tags for s in t.signatures or ()]
    verified = sum(1 for s in signatures if s.verified is True)
    print(f"\n== {label}")
    print(f"wall time            {wall:8.2f} s")
    print(f"repositories / tags  {len(found)} / {tags}")
    print(f"API requests         {counter.total}")
    print(f"requests/repository  {counter.total / repos:8.2f}  (budget {BUDGET_PER_REPO:.0f})")
    print(f"throughput           {counter.total / wall:8.1f} requests/s, {len(found) / wall:8.1f} repositories/s")
    print(f"moto server CPU      {moto_cpu:8.2f} s = {moto_cpu / wall:.0%} of one core (its ceiling: one process)")
    print("by call              " + ", ".join(f"{k} {v}" for k, v in sorted(counter.by_call.items())))
    print(f"signatures verified  {verified} / {len(signatures)}")
    print(f"fact errors          {errors or 'none'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repos", type=int, default=200)
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=CollectOptions().concurrency)
    parser.add_argument("--seed-threads", type=int, default=8)
    args = parser.parse_args()
    os.environ.update(MOTO_CREDENTIALS)

    with tempfile.TemporaryDirectory(prefix="ecr-bench-") as tmp, start_moto_server(Path(tmp)) as server:
        t0 = time.perf_counter()
        keys = generate_key_pair(Path(tmp) / "keys", "bench")
        images = seed(server.url, args.repos, args.images, args.seed_threads, keys.private_key)
        seeded = time.perf_counter() - t0
        print(f"seeded {args.repos} repositories, {images} images in {seeded:.1f} s ({images / seeded:.0f} puts/s)")
        target = EcrTarget.model_validate(
            {"name": "bench", "kind": "ecr", "region": REGION, "endpoint_url": server.url}
        )
        serial = run(target, 1, str(keys.public_key), server.pid)
        report("concurrency 1", *serial, repos=args.repos)
        parallel = run(target, args.concurrency, str(keys.public_key), server.pid)
        report(f"concurrency {args.concurrency}", *parallel, repos=args.repos)
        print(f"\nspeedup {serial[2] / parallel[2]:.2f}x with {args.concurrency} workers (moto: one process)")
        per_repo = parallel[1].total / args.repos
        verdict = "within" if per_repo <= BUDGET_PER_REPO else "OVER"
        print(f"requests per repository {per_repo:.2f}: {verdict} the budget of {BUDGET_PER_REPO:.0f}")
        return 0 if per_repo <= BUDGET_PER_REPO else 1


if __name__ == "__main__":
    raise SystemExit(main())
