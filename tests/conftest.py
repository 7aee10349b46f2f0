"""Session-wide test hygiene."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _history_in_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """An audit's default history is the user's data directory; tests (and the
    processes they start, which inherit the environment) keep theirs in tmp."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))
    monkeypatch.delenv("REGGUARD_HISTORY_URL", raising=False)


def default_history(tmp: Path | None = None) -> Path:
    import os

    return Path(os.environ["XDG_DATA_HOME"]) / "regguard" / "history.sqlite"
