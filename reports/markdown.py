"""Markdown for platform-team reviews (pull requests, wiki pages): summary
tables, failures grouped by rule with the fix once per rule, then the
control view.

Jinja2 renders it with HTML autoescaping off (this is not HTML); instead
every untrusted value goes through `md_cell` or `md_inline`, which escape
Markdown syntax and raw HTML so a repository name cannot break a table or
inject markup. Control and bidi characters are shown as visible escapes
(`\\x1b`) in every value, filtered or not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from audits.model import AuditResult
from audits.rules.registry import Rule
from audits.untrusted import document_value, visible_controls
from reports.view import build_view

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#])")
_BACKTICK_RUN = re.compile(r"`+")


def md_inline(value: Any) -> str:
    """One line of text with control characters shown and Markdown and HTML
    syntax neutralised (controls first, so their backslashes are escaped too;
    newlines and tabs collapse to spaces)."""
    text = visible_controls(str(value), keep_lines=True).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return " ".join(text.split())


def md_cell(value: Any) -> str:
    """A table cell: like `md_inline`, but line breaks survive as `<br>`
    (only real ones: `splitlines` would also break at \\x1c or \\u2028)."""
    lines = [md_inline(line) for line in str(value).replace("\r\n", "\n").split("\n")]
    return "<br>".join(line for line in lines if line)


def md_fenced(value: Any) -> str:
    """A code block whose fence is longer than any backtick run inside."""
    text = visible_controls(str(value), keep_lines=True)
    longest = max((len(m) for m in _BACKTICK_RUN.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def markdown_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=False,  # Markdown, escaped per value by the filters below
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=document_value,
    )
    env.filters["cell"] = md_cell
    env.filters["inline"] = md_inline
    env.filters["fenced"] = md_fenced
    return env


class MarkdownReporter:
    format = "md"
    filename = "report.md"

    def render(self, result: AuditResult, rules: Mapping[str, Rule]) -> str:
        template = markdown_environment().get_template("report.md.j2")
        text = template.render(**build_view(result, rules))
        return re.sub(r"\n{3,}", "\n\n", text)
