"""Markdown for reviews: tables stay tables, failures grouped by rule."""

from __future__ import annotations

import re

from reports import get_reporter
from reports.markdown import md_cell, md_fenced, md_inline
from tests.unit import report_fixtures as fx


def render() -> str:
    return get_reporter("md").render(fx.audit_result(), fx.rules())


def _columns(row: str) -> int:
    """Unescaped pipes delimit columns."""
    return len(re.findall(r"(?<!\\)\|", row)) - 1


def test_every_table_row_has_its_header_column_count() -> None:
    lines = render().splitlines()
    header_cols = None
    for line in lines:
        if not line.startswith("|"):
            header_cols = None
            continue
        if header_cols is None:
            header_cols = _columns(line)
        assert _columns(line) == header_cols, line


def test_cells_escape_pipes_newlines_and_markup() -> None:
    md = render()
    row = next(line for line in md.splitlines() if "pullable anonymously" in line)
    assert r"repository pullable anonymously \| see evidence<br>second line" in row
    assert "app/&lt;script&gt;alert(1)&lt;/script&gt;" in row
    assert fx.SCRIPT not in md


def test_failures_grouped_by_rule_with_remediation_once() -> None:
    md = render()
    section = md.split("## Failures and errors by rule", 1)[1].split("## Controls", 1)[0]
    headings = re.findall(r"^### (RG-[A-Z]+-\d+)", section, re.M)
    assert headings == ["RG-AUTH-001", "RG-TLS-001", "RG-TAG-001"]
    assert section.count("fix-rg-auth-001 on distribution --now") == 1
    assert "RG-TLS-003" not in section  # passing rules are not listed


def test_summary_and_control_tables() -> None:
    md = render()
    assert "| fail | 2 |" in md
    assert "| critical | 1 | 0 | 0 | 0 | 0 | 1 | 2 |" in md
    assert "| IA-5(1) | Password-based Authentication | MODERATE | not_applicable |" in md
    assert "| CC6.7 | error |" in md
    assert "- **RG-LOG-001** on edge / registry.internal:5000:" in md
    assert not fx.has_secret(md)


def test_escaping_helpers() -> None:
    assert md_inline("a|b\nc") == r"a\|b c"
    assert md_inline("[x](javascript:y)") == r"\[x\](javascript:y)"
    assert md_cell("one\n\ntwo|") == r"one<br>two\|"
    assert md_fenced("has ``` inside") == "````text\nhas ``` inside\n````"
