"""Progress on a terminal (rich), silence otherwise.

Collectors report `(what, done, total)`; one progress bar per `what` (the
engine prefixes the target name). When stderr is not a TTY — CI, pipes — the
callback is None and nothing is printed. Descriptions are shown as plain
text (`markup=False`, control characters made visible): they may carry names
an audited system chose.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from audits.collectors.base import ProgressCallback
from audits.untrusted import terminal_text


@contextmanager
def terminal_progress(force: bool = False) -> Iterator[ProgressCallback | None]:
    if not (force or sys.stderr.isatty()):
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    lock = threading.Lock()
    tasks: dict[str, TaskID] = {}
    with Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:

        def update(what: str, done: int, total: int | None) -> None:
            with lock:
                if what not in tasks:
                    tasks[what] = progress.add_task(terminal_text(what), total=total)
                progress.update(tasks[what], completed=done, total=total)

        yield update
