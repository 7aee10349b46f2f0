"""Audit history in a database (SQLite by default, PostgreSQL on request).

    db = open_history(history_url(cli=None, configured=None))
    stored = db.record(result, pull_counts)

Where the history lives, first match wins: `--history URL`, the environment
variable REGGUARD_HISTORY_URL, `history:` in regguard.yaml, else
`$XDG_DATA_HOME/regguard/history.sqlite` (~/.local/share/... by default).
A URL is `sqlite:///path`, `postgresql://user@host/db` (the password from
PGPASSWORD or ~/.pgpass, as libpq reads them) or a plain file path.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from audits.store.db import HistoryDB, HistoryError, StoredFinding, StoredRun, display_url
from audits.store.legacy import import_json_history
from audits.store.verify import ChainCheck, verify_chain

HISTORY_ENV = "REGGUARD_HISTORY_URL"


def default_history_path() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "regguard" / "history.sqlite"


def history_url(cli: str | None, configured: str | None) -> str:
    return cli or os.environ.get(HISTORY_ENV) or configured or str(default_history_path())


def open_history(url: str) -> HistoryDB:
    """Connect and bring the schema up to date; HistoryError (one line) if
    the database cannot be reached or is newer than this code."""
    db = HistoryDB(url)
    try:
        db.migrate()
    except SQLAlchemyError as exc:
        db.close()
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise HistoryError(f"history {display_url(url)}: {reason}") from None
    except HistoryError:
        db.close()
        raise
    return db


__all__ = [
    "HISTORY_ENV",
    "ChainCheck",
    "HistoryDB",
    "HistoryError",
    "StoredFinding",
    "StoredRun",
    "default_history_path",
    "history_url",
    "import_json_history",
    "open_history",
    "verify_chain",
]
