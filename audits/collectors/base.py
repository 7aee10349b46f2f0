"""The collector seam: one module per kind, each exposing
`collect(target, options) -> TargetFacts`.

Collectors do I/O and return facts; they never judge. Anything they could not
observe is recorded as `Fact.error(...)` with the reason, so the rules that
need it say `error` instead of passing. Heavy SDKs are imported inside the
collector module, which the engine imports only when a target of that kind is
audited (keeps `regguard --help` fast).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from audits import kinds
from audits.model import TargetFacts

ProgressCallback = Callable[[str, int, int | None], None]  # (what, done, total)


@dataclass
class CollectOptions:
    """Knobs every collector honours.

    `concurrency` bounds requests in flight *within* one target; `timeout` is
    per request (seconds); `trusted_keys` are PEM public key paths for
    signature verification; `progress` receives coarse progress updates.
    """

    concurrency: int = 16
    timeout: float = 10.0
    trusted_keys: tuple[str, ...] = ()
    progress: ProgressCallback | None = None

    def report(self, what: str, done: int, total: int | None = None) -> None:
        if self.progress is not None:
            self.progress(what, done, total)


@dataclass
class RequestCounter:
    """Thread-safe count of API/HTTP requests, per call name, for bench figures."""

    total: int = 0
    by_call: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, call: str, n: int = 1) -> None:
        with self._lock:
            self.total += n
            self.by_call[call] = self.by_call.get(call, 0) + n


class Collector(Protocol):
    def __call__(self, target: Any, options: CollectOptions) -> TargetFacts: ...


def collector_for(kind: str) -> Collector:
    """The `collect` of `kind`'s collector module (from the kind table), imported on demand."""
    collect: Collector = kinds.get(kind).collect_function()
    return collect
