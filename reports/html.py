"""One self-contained HTML page for people: inline CSS, no scripts, no
external assets, so it can be mailed or archived as a single file.

Registry, repository and tag names come from the audited systems and are
untrusted; the Jinja2 environment autoescapes everything, shows control and
bidi characters as visible escapes (`finalize`), and evidence is rendered as
escaped, pretty-printed JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from audits.model import AuditResult
from audits.rules.registry import Rule
from audits.untrusted import document_value
from reports.base import pretty_json
from reports.view import build_view

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


def html_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=document_value,
    )
    env.filters["pretty_json"] = pretty_json
    return env


class HtmlReporter:
    format = "html"
    filename = "report.html"

    def render(self, result: AuditResult, rules: Mapping[str, Rule]) -> str:
        template = html_environment().get_template("report.html.j2")
        return template.render(**build_view(result, rules))
