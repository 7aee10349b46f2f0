"""CLI behaviour that does not need servers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_help_path_imports_no_heavy_sdk() -> None:
    """`regguard --help` must stay fast: no SDK is imported to print help."""
    code = "import sys, audits.cli as c; c.build_parser().format_help(); print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    loaded = set(out.split())
    for heavy in ("boto3", "botocore", "jinja2", "rich", "cryptography", "pulumi", "httpx", "pydantic"):
        assert heavy not in loaded, heavy


def test_no_command_prints_help_and_exits_2() -> None:
    proc = subprocess.run([sys.executable, "-m", "audits.cli"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "audit" in proc.stdout and "lint-refs" in proc.stdout
