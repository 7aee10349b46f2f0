"""How fast `regguard --help` starts (target: under 0.5 s).

Heavy SDKs (boto3, jinja2, rich, cryptography, pulumi) must be imported
lazily; this prints the median wall time over several runs and the modules
that the help path imported, so a regression names its culprit.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = 7
HEAVY = ("boto3", "botocore", "jinja2", "rich", "cryptography", "pulumi", "httpx", "pydantic", "yaml", "trestle")


def time_help() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "audits.cli", "--help"], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - t0


def heavy_imports() -> list[str]:
    code = "import sys, audits.cli as c; c.build_parser().format_help(); print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    loaded = set(out.split())
    return [m for m in HEAVY if m in loaded]


def main() -> None:
    times = [time_help() for _ in range(RUNS)]
    median = statistics.median(times)
    print(f"regguard --help: median {median * 1000:.0f} ms over {RUNS} runs (min {min(times) * 1000:.0f} ms)")
    print(f"heavy modules imported on the help path: {', '.join(heavy_imports()) or 'none'}")
    print(f"target < 500 ms: {'met' if median < 0.5 else 'MISSED'}")


if __name__ == "__main__":
    main()
