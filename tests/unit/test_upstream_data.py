"""Every upstream file the code and tests read is committed in `audits/data/`,
with its source, version and licence in that folder's README, and unchanged
since it was copied (its SHA-256 is the one the README records).

A bare clone must pass its own tests, so nothing may be read from outside the
repository; and a schema that was edited by hand would make the schema tests
prove nothing, so each file is checked against the digest of the upstream copy.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

DATA_DIR = Path(__file__).resolve().parents[2] / "audits" / "data"
README = DATA_DIR / "README.md"
COLUMNS = ("file", "read by", "upstream source", "version", "licence", "sha256")
# What the reporter and catalog tests validate against (tests/unit/report_fixtures.py)
# and what audits/controls.py resolves control ids with.
REQUIRED = {
    "sarif-schema-2.1.0.json",
    "junit.xsd",
    "oscal_assessment-results_schema.json",
    "nist-800-53-rev5-controls.json",
    "fedramp-rev5-baselines.json",
}


def readme_rows() -> dict[str, dict[str, str]]:
    """file name -> {column: cell} from the README's file table."""
    rows: dict[str, dict[str, str]] = {}
    for line in README.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) == len(COLUMNS):
            row = dict(zip(COLUMNS, cells, strict=True))
            rows[row["file"].strip("`")] = row
    return rows


def data_files() -> list[str]:
    return sorted(p.name for p in DATA_DIR.iterdir() if p.is_file() and p.name != "README.md")


def test_the_schemas_and_catalogs_the_tests_read_are_committed() -> None:
    assert set(data_files()) >= REQUIRED


def test_readme_lists_exactly_the_committed_files() -> None:
    assert sorted(readme_rows()) == data_files()


@pytest.mark.parametrize("name", data_files())
def test_each_file_notes_source_version_and_licence(name: str) -> None:
    row = readme_rows()[name]
    assert "github.com/" in row["upstream source"] or "https://" in row["upstream source"], row
    assert row["version"] and row["licence"] and row["read by"], row


@pytest.mark.parametrize("name", data_files())
def test_each_file_is_the_upstream_copy(name: str) -> None:
    digest = hashlib.sha256((DATA_DIR / name).read_bytes()).hexdigest()
    assert readme_rows()[name]["sha256"].strip("`") == digest, f"{name} differs from the copy the README records"
