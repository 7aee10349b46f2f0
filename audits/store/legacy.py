"""The JSON-file history of earlier regguard versions, imported into the
database once and then left alone (the files are neither changed nor read
again). A record holds counts and pull baselines only, so an imported run has
no findings; its `source` says "json-import"."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from audits import __version__
from audits.history import HistoryStore
from audits.model import AuditResult, utcnow
from audits.store.db import HistoryDB, new_run_id


def import_json_history(db: HistoryDB, directory: Path) -> int:
    """Import `directory`'s audit-*.json records (unreadable ones are skipped
    with a warning by HistoryStore); return how many runs were imported, 0 if
    the directory was imported before or has no records."""
    directory = directory.resolve()
    if not directory.is_dir():
        return 0
    with db.write() as conn:  # one transaction: two first audits at once import it once
        if db.imported(conn, directory):
            return 0
        records = sorted(HistoryStore(directory).records(), key=lambda r: r.started_at or "")
        for record in records:
            started = _parse_time(record.started_at)
            result = AuditResult(
                tool="regguard", version=f"{__version__} (imported)", started_at=started, finished_at=started,
                environment=record.environment or "", frameworks=(), targets=(), findings=(),
            )
            db.append(conn, result, record.pull_counts, source="json-import",
                      run_id=f"json-{new_run_id(result)}", summary=record.summary)
        db.mark_imported(conn, directory, len(records))
    return len(records)


def _parse_time(text: str | None) -> datetime:
    try:
        return datetime.fromisoformat(text) if text else utcnow()
    except ValueError:
        return utcnow()
