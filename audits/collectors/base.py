"""The collector seam: one module per kind, each exposing
`collect(target, options) -> TargetFacts`.

Collectors do I/O and return facts; they never judge. Anything they could not
observe is recorded as `Fact.error(...)` with the reason, so the rules that
need it say `error` instead of passing. Heavy SDKs are imported inside the
collector module, which the engine imports only when a target of that kind is
audited (keeps `regguard --help` fast).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from audits import kinds
from audits.model import Fact, TargetFacts
from audits.targets import DEFAULT_MAX_REPOSITORIES

T = TypeVar("T")

ProgressCallback = Callable[[str, int, int | None], None]  # (what, done, total)

LARGE_TARGET_REPOSITORIES = 2_000
"""From this many selected repositories on, the target's summary carries a warning."""


class CollectionRecord:
    """What one target's collector has observed so far, shared with the engine.

    A collector publishes each fact as soon as it is known, so when the target
    misses its deadline (or the audit is interrupted) the engine still reports
    what was seen — a TLS handshake that worked is evidence even if the
    repository listing never finished. Warnings and reasons why the target
    is incomplete ride along. Thread-safe; after `close()` (the engine gave up
    on the target) anything published is ignored.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._facts: dict[str, Fact[Any]] = {}
        self._warnings: list[str] = []
        self._gaps: list[str] = []
        self._closed = False

    def record(self, name: str, fact: Fact[T]) -> Fact[T]:
        with self._lock:
            if not self._closed:
                self._facts[name] = fact
        return fact

    def warn(self, message: str) -> None:
        with self._lock:
            if not self._closed:
                self._warnings.append(message)

    def gap(self, reason: str) -> None:
        """Something deliberately left out (e.g. repositories over the cap): the
        target cannot claim to be complete."""
        with self._lock:
            if not self._closed:
                self._gaps.append(reason)

    def close(self) -> None:
        with self._lock:
            self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed

    def facts(self) -> dict[str, Fact[Any]]:
        with self._lock:
            return dict(self._facts)

    def warnings(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._warnings)

    def gaps(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._gaps)


@dataclass
class CollectOptions:
    """Knobs every collector honours.

    `concurrency` bounds requests in flight *within* one target; `timeout` is
    per request (seconds; the target's whole collection is bounded by the
    engine's per-target deadline instead); `trusted_keys` are PEM public key
    paths for signature verification; `progress` receives coarse progress
    updates; `max_repositories` caps the repositories audited; `published`
    receives facts as they are observed (one record per target).
    """

    concurrency: int = 16
    timeout: float = 10.0
    trusted_keys: tuple[str, ...] = ()
    progress: ProgressCallback | None = None
    max_repositories: int = DEFAULT_MAX_REPOSITORIES
    published: CollectionRecord = field(default_factory=CollectionRecord)

    def report(self, what: str, done: int, total: int | None = None) -> None:
        if self.progress is not None and not self.published.closed:
            self.progress(what, done, total)

    def record(self, name: str, fact: Fact[T]) -> Fact[T]:
        """Publish `fact` now (see CollectionRecord); returns it for inline use."""
        return self.published.record(name, fact)

    def record_all(self, facts: Mapping[str, Fact[Any]]) -> None:
        for name, fact in facts.items():
            self.published.record(name, fact)

    def cap_repositories(self, selected: Sequence[T], name: Callable[[T], str] = str) -> list[T]:
        """`selected` if it is within `max_repositories`, else the first that many by
        `name` (so a capped audit covers the same repositories every run). A large
        target is warned about; a capped one is incomplete and says N of M were audited."""
        total, cap = len(selected), self.max_repositories
        if total >= LARGE_TARGET_REPOSITORIES:
            self.published.warn(
                f"large target: {total:,} repositories selected; every one costs requests and report "
                "space (narrow `repositories` or set `max_repositories` if that is not intended)"
            )
        if total <= cap:
            return list(selected)
        self.published.gap(
            f"repositories: audited {cap:,} of {total:,} (max_repositories {cap:,}); "
            f"the other {total - cap:,} were not audited"
        )
        return sorted(selected, key=name)[:cap]


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


def declared_facts(kind: str) -> tuple[str, ...]:
    """The fact names the kind's collector declares it produces (`ALL_FACTS`), so a
    target cut off by a deadline can show every fact it never got as an error;
    empty when the module declares none."""
    try:
        module = importlib.import_module(kinds.get(kind).collector)
    except kinds.UnknownKind:
        return ()
    return tuple(getattr(module, "ALL_FACTS", ()))


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time from an API answer; None when it is no string, longer
    than any real timestamp, unreadable, or has no timezone (a naive time cannot
    be compared with the aware times the rules compare it with)."""
    if not isinstance(value, str) or not value or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
