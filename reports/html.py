"""One self-contained HTML page for people: inline CSS, inline SVG charts and
one small inline script (the findings filters), no external assets, so it can
be mailed or archived as a single file.

A Content-Security-Policy in the page forbids every request (`default-src
'none'`) and allows only the page's own style and script by their SHA-256, so
even markup that slipped through escaping could neither run nor fetch.

Registry, repository and tag names come from the audited systems and are
untrusted; the Jinja2 environment autoescapes everything, shows control and
bidi characters as visible escapes (`finalize`), and evidence is rendered as
escaped, pretty-printed JSON. The script never writes HTML: it only hides rows.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from audits.model import STATUS_ORDER, AuditResult, Finding
from audits.rules.registry import Rule
from audits.untrusted import document_value
from reports.base import SEVERITY_ORDER, pretty_json
from reports.charts import BAR_WIDTH, TREND_HEIGHT, TREND_WIDTH, framework_bars, stacked_bars, trend_lines
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


@cache
def _asset(name: str) -> str:
    return (TEMPLATES_DIR / name).read_text(encoding="utf-8")


def _sha256_source(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def content_security_policy(css: str, js: str) -> str:
    return (
        f"default-src 'none'; style-src {_sha256_source(css)}; script-src {_sha256_source(js)}; "
        "img-src 'none'; connect-src 'none'; base-uri 'none'; form-action 'none'"
    )


def filter_options(findings: Sequence[Finding]) -> list[tuple[str, str, list[str]]]:
    """(data key, label, values present) for each filter select."""
    present = {f.status.value for f in findings}
    severities = {f.severity.value for f in findings}
    controls = sorted({c for f in findings for c in (*f.controls.soc2, *f.controls.nist_800_53)})
    return [
        ("status", "status", [s.value for s in STATUS_ORDER if s.value in present]),
        ("severity", "severity", [s.value for s in SEVERITY_ORDER if s.value in severities]),
        ("target", "target", sorted({f.target for f in findings})),
        ("rule", "rule", sorted({f.rule for f in findings})),
        ("control", "control", controls),
    ]


def chart_view(view: Mapping[str, Any], result: AuditResult) -> dict[str, Any]:
    targets = [(row.target.name, row.counts) for row in view["targets"]]
    return {
        "target_bars": stacked_bars(targets),
        "framework_bars": framework_bars(
            [row.state for row in view["soc2"]], [(row.state, row.levels) for row in view["nist"]]
        ),
        "trend_lines": trend_lines(result.trend),
        "bar_width": BAR_WIDTH,
        "trend_size": (TREND_WIDTH, TREND_HEIGHT),
    }


class HtmlReporter:
    format = "html"
    filename = "report.html"

    def render(self, result: AuditResult, rules: Mapping[str, Rule]) -> str:
        template = html_environment().get_template("report.html.j2")
        view = build_view(result, rules)
        css, js = _asset("report.css"), _asset("report.js")
        return template.render(
            **view,
            **chart_view(view, result),
            filter_options=filter_options(view["findings"]),
            css=Markup(css),  # noqa: S704 - our own file, hashed into the CSP
            js=Markup(js),  # noqa: S704
            csp=content_security_policy(css, js),
        )
