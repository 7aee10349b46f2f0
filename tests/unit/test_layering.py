"""The packages depend one way: components and policy may use the auditor's
vocabulary, never the reverse (a cycle would make every change two changes)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported_packages(package: str) -> dict[str, set[str]]:
    """file -> top-level packages it imports (at any depth, lazily or not)."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


def test_auditor_and_reports_import_neither_components_nor_policy() -> None:
    for package in ("audits", "reports"):
        offenders = {f: sorted(n & {"components", "policy", "pulumi", "pulumi_aws"})
                     for f, n in imported_packages(package).items() if n & {"components", "policy", "pulumi"}}
        assert offenders == {}, offenders


def test_the_kind_table_and_vocabulary_import_no_sdk() -> None:
    for module in ("audits/kinds.py", "audits/vocabulary.py", "audits/targets.py", "audits/config.py"):
        names = imported_packages("audits")[module]
        assert not names & {"boto3", "botocore", "httpx", "pulumi", "components"}, (module, names)
