"""Audit history: what earlier audits saw, kept as one JSON file per audit.

RG-MON-002 needs a trailing baseline of pulls per day, and platform teams want
to see a registry's findings over time. Each audit appends one record; the
baseline is rebuilt from the records, so deleting a file simply shortens the
history. Records hold counts and statuses only — never evidence or secrets.

The directory is shared with whatever else lives beside the config, so a
record is read as untrusted input: a file that is not a regular file, is too
large, is not UTF-8 JSON or does not have the record's shape is skipped with a
warning (stderr by default), and a history that cannot be written (including
a directory `audits.safe_files` refuses, such as a link) is a warning too.
Neither may stop an audit. History now lives in a database (`audits.store`),
which imports these records once.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from audits.model import PULL_COUNTS, AuditResult, FactState, TargetFacts
from audits.safe_files import UnsafeLocation, write_replacing
from audits.untrusted import terminal_text

MAX_RECORDS_READ = 400  # about a year of daily audits
# A record of 3,000 repositories x 90 days of pulls is about 5 MB; anything far
# beyond that is not ours, and reading it whole would cost the audit its memory.
MAX_RECORD_BYTES = 16 * 1024 * 1024

PullCounts = dict[str, dict[str, dict[str, int]]]  # target -> repository -> {day: pulls}


class _Record(BaseModel):
    """The part of a record this store reads back; other keys are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    started_at: str | None = None
    environment: str | None = None
    summary: dict[str, int] = Field(default_factory=dict)
    pull_counts: dict[str, dict[str, dict[str, Annotated[int, Field(strict=True, ge=0)]]]] = Field(
        default_factory=dict
    )


class HistoryError(Exception):
    """The history database cannot be used: one line for the user (exit 2).
    Defined here, light to import, so the CLI can catch it without loading
    SQLAlchemy for commands that never touch the history."""


def _warn_on_stderr(message: str) -> None:
    print(f"regguard: warning: {terminal_text(message, limit=1000)}", file=sys.stderr)


@dataclass(frozen=True)
class HistoryStore:
    directory: Path
    warn: Callable[[str], None] = field(default=_warn_on_stderr, compare=False, repr=False)

    def pull_baseline(self) -> PullCounts:
        """target -> repository -> {day: pulls}, merged over earlier audits
        (a later audit's count for the same day wins)."""
        merged: PullCounts = {}
        for record in self._records():
            for target, repos in record.pull_counts.items():
                for repo, days in repos.items():
                    merged.setdefault(target, {}).setdefault(repo, {}).update(days)
        return merged

    def record(self, result: AuditResult, facts: Mapping[str, TargetFacts]) -> Path | None:
        """Append this audit; return the file written, or None (with a
        warning) when the history cannot be written."""
        stamp = result.started_at.strftime("%Y%m%dT%H%M%S%fZ")
        payload = {
            "started_at": result.started_at.isoformat(),
            "finished_at": result.finished_at.isoformat(),
            "environment": result.environment,
            "summary": result.summary(),
            "targets": {t.name: {"kind": t.kind, "complete": t.complete} for t in result.targets},
            "failing": sorted(
                {f"{f.rule} {f.target}" for f in result.findings if f.status.value == "fail"}
            ),
            "pull_counts": pull_counts(facts),
        }
        data = json.dumps(payload, indent=1, sort_keys=True).encode("utf-8")
        try:
            return write_replacing(self.directory, f"audit-{stamp}.json", data)
        except UnsafeLocation as exc:
            self.warn(f"history not written: {exc}")
            return None

    def records(self) -> Iterator[_Record]:
        """The readable records, oldest first (the database import reads them once)."""
        return self._records()

    def _records(self) -> Iterator[_Record]:
        """The readable records, oldest first, one in memory at a time."""
        try:
            files = sorted(self.directory.glob("audit-*.json"))[-MAX_RECORDS_READ:]
        except OSError as exc:
            self.warn(f"{self.directory}: history not read ({exc.strerror})")
            return
        for path in files:
            try:
                yield _Record.model_validate(json.loads(_read_record(path)))
            except (OSError, ValueError, ValidationError) as exc:  # JSON and UTF-8 errors are ValueErrors
                self.warn(f"{path}: skipped, not a regguard history record ({_reason(exc)})")


def _read_record(path: Path) -> str:
    """The file's text, refusing what is not a small regular file; opened
    without following links and without blocking (a FIFO would hang)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as stream:
        info = os.fstat(stream.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("not a regular file")
        if info.st_size > MAX_RECORD_BYTES:
            raise ValueError(f"larger than {MAX_RECORD_BYTES // (1024 * 1024)} MiB")
        return stream.read(MAX_RECORD_BYTES + 1).decode("utf-8")


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "unexpected shape"
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8"
    if isinstance(exc, json.JSONDecodeError):
        return "not JSON"
    return str(exc)


def pull_counts(facts: Mapping[str, TargetFacts]) -> dict[str, dict[str, dict[str, int]]]:
    """Pulls per day per repository, per target, as observed in this audit."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for target, tf in facts.items():
        fact = tf.facts.get(PULL_COUNTS)
        if fact is None or fact.state is not FactState.OK or fact.value is None:
            continue
        out[target] = {repo: dict(days) for repo, days in fact.value.daily.items()}
    return out
