"""What the terminal shows after an audit: a summary table and the paths
written. Formatting only; counts come from the result.

Names and messages come from the audited systems, so they reach rich only as
`Text` (never parsed as markup) made safe by `audits.untrusted.terminal_text`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from audits.model import AuditResult, Status
from audits.untrusted import terminal_text

_STATUS_COLUMNS = (Status.PASS, Status.FAIL, Status.ERROR, Status.MANUAL, Status.WAIVED, Status.NOT_APPLICABLE)
_SHORT = {Status.NOT_APPLICABLE: "n/a"}
_STATUS_STYLE = {
    Status.PASS: "green",
    Status.FAIL: "red",
    Status.ERROR: "magenta",
    Status.MANUAL: "yellow",
    Status.WAIVED: "cyan",
}


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def _text(*parts: str | tuple[str, str]) -> Any:
    """A rich `Text` from untrusted parts; `(text, style)` pairs are styled.
    Text is never parsed for markup, so `[/x]` or `[link=...]` stay text."""
    from rich.text import Text

    text = Text()
    for part in parts:
        value, style = part if isinstance(part, tuple) else (part, "")
        text.append(terminal_text(value), style=style)
    return text


def print_summary(result: AuditResult, paths: Sequence[Path], console: Any = None) -> None:
    """A counts table per target, then the failing rules of each target as
    wrapped text (rule ids in a table column wrap into unreadable stubs)."""
    from rich.table import Table

    console = console or _console()
    table = Table(title=_text(f"regguard audit — environment {result.environment}"))
    table.add_column("target", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    for status in _STATUS_COLUMNS:
        table.add_column(_SHORT.get(status, status.value), justify="right", style=_STATUS_STYLE.get(status, ""))
    for target in result.targets:
        counts = Counter(f.status for f in result.findings if f.target == target.name)
        table.add_row(_text(target.name), _text(target.kind), *(str(counts.get(s, 0)) for s in _STATUS_COLUMNS))
    console.print(table)
    for target in result.targets:
        failing = sorted({f.rule for f in result.findings if f.target == target.name and f.status is Status.FAIL})
        if failing:
            console.print(_text((target.name, "bold"), " fails: ", ", ".join(failing)))
    totals = result.summary()
    console.print("total: " + ", ".join(f"{k} {v}" for k, v in totals.items()))
    for t in result.targets:
        if not t.complete:
            console.print(_text(("incomplete", "magenta"), ": ", t.name, ": ", t.errors[0] if t.errors else "errors"))
        for warning in t.warnings:
            console.print(_text(("warning", "yellow"), ": ", t.name, ": ", warning))
    _print_since_last(result, console)
    for path in paths:
        console.print(_text("wrote ", str(path)))


def _print_since_last(result: AuditResult, console: Any) -> None:
    diff = result.since_last
    if result.run_id:
        console.print(_text("stored as run ", result.run_id))
    if diff is not None:
        console.print(_text(
            f"since run {diff.base}: {len(diff.new_failures)} new failure(s), {len(diff.fixed)} fixed, "
            f"{len(diff.persisting)} persisting, {len(diff.changed)} other change(s) (regguard diff)"
        ))


def print_recommendations(use_cases: Sequence[str], ranking: Sequence[Any]) -> None:
    from rich.table import Table

    table = Table(title="registry decision matrix: " + ", ".join(use_cases))
    table.add_column("rank", justify="right")
    table.add_column("kind")
    table.add_column("fits")
    table.add_column("why")
    for i, rec in enumerate(ranking, 1):
        table.add_row(
            str(i),
            rec.kind,
            f"{len(rec.satisfied)}/{len(use_cases)}",
            "; ".join(rec.reasons),
        )
    _console().print(table)


def print_lint_findings(result: AuditResult) -> None:
    """One line per failure; a reference that could not be judged is one line
    naming every rule it blocked, instead of the same error once per rule."""
    console = _console()
    for f in result.findings:
        if f.status is Status.FAIL:
            console.print(_text(_location(f), f": [{f.severity.value}] {f.rule} ", f.message))
    blocked: dict[tuple[str, str], list[str]] = {}
    for f in result.findings:
        if f.status is Status.ERROR:
            blocked.setdefault((_location(f), f.message), []).append(f.rule)
    for (loc, message), rules in blocked.items():
        console.print(_text(loc, ": [error] ", message, f" (blocks {', '.join(sorted(rules))})"))
    counts = result.summary()
    console.print(f"{counts['fail']} failing, {counts['error']} errors, {counts['pass']} passing")


def _location(finding: Any) -> str:
    where = finding.evidence.get("file")
    line = finding.evidence.get("line")
    return f"{where}:{line}" if where and line else str(finding.resource)
