"""Renderers: one module per output format behind the `Reporter` seam, and
the evidence bundle for auditors.

    write_reports(result, rules, ["html", "json"], Path("out"))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from audits.model import AuditResult
from audits.rules.registry import Rule
from audits.safe_files import write_replacing
from reports.base import Reporter, redact
from reports.evidence import write_evidence_bundle
from reports.html import HtmlReporter
from reports.json_report import JsonReporter
from reports.junit import JunitReporter
from reports.markdown import MarkdownReporter
from reports.oscal import OscalReporter
from reports.sarif import SarifReporter

_REPORTERS: dict[str, Callable[[], Reporter]] = {
    "html": HtmlReporter,
    "md": MarkdownReporter,
    "json": JsonReporter,
    "sarif": SarifReporter,
    "junit": JunitReporter,
    "oscal": OscalReporter,
}

FORMATS: tuple[str, ...] = tuple(_REPORTERS)

__all__ = [
    "FORMATS",
    "Reporter",
    "get_reporter",
    "redact",
    "write_evidence_bundle",
    "write_reports",
]


def get_reporter(fmt: str) -> Reporter:
    """The reporter for a format name (case-insensitive)."""
    factory = _REPORTERS.get(fmt.strip().lower())
    if factory is None:
        raise ValueError(f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return factory()


def write_reports(
    result: AuditResult,
    rules: Mapping[str, Rule],
    formats: Sequence[str],
    output_dir: Path,
) -> list[Path]:
    """Render each requested format into `output_dir` (created if needed)
    and return the written paths in request order; every format name is
    checked before anything is written. Each file replaces whatever entry
    had its name and never writes through a link (`audits.safe_files`)."""
    reporters = [get_reporter(fmt) for fmt in dict.fromkeys(formats)]
    return [
        write_replacing(output_dir, reporter.filename, reporter.render(result, rules).encode("utf-8"))
        for reporter in reporters
    ]
