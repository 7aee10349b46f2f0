"""Comparing two runs by finding identity (rule, target, resource).

Pure: it takes two lists of findings (live `Finding`s or stored ones) and says
which failures are new, fixed or persisting, and which other statuses changed.
"Fixed" means a failure that now passes, is not applicable or no longer exists;
a failure that became `waived`, `error` or `manual` is a changed status, not a
fix — nobody has shown it is fixed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from audits.model import FindingChange, RunDiff
from audits.untrusted import terminal_text

_FIXED_STATUSES = frozenset({"pass", "not_applicable", None})


class _Comparable(Protocol):
    @property
    def rule(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def resource(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def status(self) -> Any: ...
    @property
    def severity(self) -> Any: ...


def _text(value: Any) -> str:
    return str(getattr(value, "value", value))


def _by_identity(findings: Iterable[_Comparable]) -> dict[tuple[str, str, str], _Comparable]:
    return {(f.rule, f.target, f.resource): f for f in findings}


def compare_runs(base_id: str, base: Iterable[_Comparable], head_id: str, head: Iterable[_Comparable]) -> RunDiff:
    before, after = _by_identity(base), _by_identity(head)
    buckets: dict[str, list[FindingChange]] = {"new_failures": [], "fixed": [], "persisting": [], "changed": []}
    for identity in sorted(before.keys() | after.keys()):
        old, new = before.get(identity), after.get(identity)
        was = _text(old.status) if old else None
        now = _text(new.status) if new else None
        bucket = _bucket(was, now)
        if bucket is None:
            continue
        shown = new or old
        assert shown is not None
        buckets[bucket].append(
            FindingChange(*identity, severity=_text(shown.severity), before=was, after=now, message=shown.message)
        )
    return RunDiff(base=base_id, head=head_id, **{k: tuple(v) for k, v in buckets.items()})


def _bucket(was: str | None, now: str | None) -> str | None:
    if now == "fail":
        return "persisting" if was == "fail" else "new_failures"
    if was == "fail":
        return "fixed" if now in _FIXED_STATUSES else "changed"
    if was is not None and now is not None and was != now:
        return "changed"
    return None


def diff_text(diff: RunDiff) -> str:
    """The plain-text `regguard diff` form; names and messages come from the
    audited registries, so control characters are shown escaped."""
    lines = [f"from run {terminal_text(diff.base)} to run {terminal_text(diff.head)}:"]
    sections = (
        ("new failures", diff.new_failures),
        ("fixed", diff.fixed),
        ("persisting failures", diff.persisting),
        ("changed statuses", diff.changed),
    )
    for title, changes in sections:
        lines.append(f"{title}: {len(changes)}")
        for c in changes:
            line = f"{c.rule} {c.target} {c.resource}: {c.before or '(none)'} -> {c.after or '(gone)'} [{c.severity}]"
            lines.append(f"  {terminal_text(line)} {terminal_text(c.message, limit=300)}")
    return "\n".join(lines)
