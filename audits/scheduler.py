"""Runs the collectors of an audit under deadlines, and stops when asked.

A registry that drips one byte a second never trips a per-read timeout, and a
Python thread blocked in a read cannot be interrupted. So every target is
collected in its own daemon thread and the main thread only waits, in short
slices: when a target passes its deadline (its own `deadline`, or the audit's
`--deadline`), or a stop is requested (SIGTERM, Ctrl-C), the target is given up
— its thread is abandoned, never joined — and its facts are what the collector
had published by then, with an `error` for every fact it never delivered.

Not a ThreadPoolExecutor: its `shutdown` and the interpreter's exit both join
the worker threads, so one stuck target would hold the report (and the process)
hostage.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from audits.collectors.base import CollectOptions, declared_facts
from audits.model import Fact, TargetFacts, utcnow

POLL_S = 0.1
"""How often the waiting main thread looks at stop requests: the bound on how
long a signal waits before the audit starts winding down."""

STUCK_FACT = "collector"
"""Pseudo fact recorded when a collector raised or never finished and declares no
fact names: the engine then turns every rule of the target into an error."""


class StopRequest:
    """A request to end the audit now; `reason` becomes every unfinished fact's error.

    Set from a signal handler, so it is a plain attribute write: a handler that
    took a lock the interrupted main thread already holds would deadlock."""

    def __init__(self) -> None:
        self.reason: str | None = None

    def request(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason


@dataclass
class _Running:
    index: int
    target: Any
    options: CollectOptions
    started: datetime
    due: float  # time.monotonic() by which the target must be done
    late: str  # the error for its missing facts if it is not
    worker: threading.Thread


_abandoned: list[threading.Thread] = []  # every collector thread given up on, process-wide


def abandoned_collectors_running() -> bool:
    """True while a collector thread the audit gave up on is still stuck somewhere.
    The program then ends with `os._exit`: the interpreter's normal exit joins
    concurrent.futures workers (a collector's own pool, asyncio's to_thread), and
    a thread blocked in a read would keep the finished process alive."""
    return any(thread.is_alive() for thread in _abandoned)


Collect = Callable[[Any, CollectOptions], TargetFacts]


class _Schedule:
    """One audit's collection: at most `workers` targets at a time, each under its deadline."""

    def __init__(
        self,
        targets: Sequence[Any],
        options: Sequence[CollectOptions],
        collect: Collect,
        workers: int,
        audit_deadline: float | None,
        stop: StopRequest,
    ) -> None:
        self.targets, self.options, self.collect = targets, options, collect
        self.workers = max(1, workers)
        self.stop = stop
        self.audit_deadline = audit_deadline
        self.audit_due = time.monotonic() + audit_deadline if audit_deadline is not None else math.inf
        self.pending = deque(range(len(targets)))
        self.running: dict[int, _Running] = {}
        self.results: dict[int, TargetFacts] = {}
        self.finished: queue.Queue[tuple[int, TargetFacts]] = queue.Queue()

    def run(self) -> list[TargetFacts]:
        while (self.pending or self.running) and not self._must_end():
            self._start_what_fits()
            self._give_up_on_late_targets()
            self._wait_for_one()
        self._take_finished()
        if self.running or self.pending:
            reason = self.stop.reason or self._audit_late()
            for run in list(self.running.values()):
                self._give_up(run, reason)
            for index in self.pending:
                self.results[index] = unfinished_facts(self.targets[index], {}, utcnow(), reason)
        return [self.results[i] for i in range(len(self.targets))]

    def _must_end(self) -> bool:
        return self.stop.reason is not None or time.monotonic() >= self.audit_due

    def _audit_late(self) -> str:
        return f"target did not finish within the audit deadline of {self.audit_deadline or 0:g} s (--deadline)"

    def _start_what_fits(self) -> None:
        while self.pending and len(self.running) < self.workers:
            index = self.pending.popleft()
            target, options = self.targets[index], self.options[index]
            now = time.monotonic()
            own_due = now + float(target.deadline)
            late = f"target did not finish within {float(target.deadline):g} s (its deadline)"
            if self.audit_due < own_due:
                own_due, late = self.audit_due, self._audit_late()
            worker = threading.Thread(
                target=self._collect_into_queue,
                args=(index, target, options),
                name=f"collect-{target.name}",
                daemon=True,
            )
            self.running[index] = _Running(index, target, options, utcnow(), own_due, late, worker)
            worker.start()

    def _collect_into_queue(self, index: int, target: Any, options: CollectOptions) -> None:
        self.finished.put((index, self.collect(target, options)))

    def _give_up_on_late_targets(self) -> None:
        now = time.monotonic()
        for run in [r for r in self.running.values() if now >= r.due]:
            self._give_up(run, run.late)

    def _give_up(self, run: _Running, reason: str) -> None:
        """Abandon the target's thread; keep what it published."""
        del self.running[run.index]
        _abandoned.append(run.worker)
        run.options.published.close()
        published = run.options.published.facts()
        self.results[run.index] = unfinished_facts(run.target, published, run.started, reason)

    def _wait_for_one(self) -> None:
        if not self.running:
            return
        next_due = min(r.due for r in self.running.values())
        wait = max(0.0, min(POLL_S, next_due - time.monotonic()))
        try:
            index, facts = self.finished.get(timeout=wait)
        except queue.Empty:
            return
        self._finish(index, facts)
        self._take_finished()

    def _take_finished(self) -> None:
        while True:
            try:
                index, facts = self.finished.get_nowait()
            except queue.Empty:
                return
            self._finish(index, facts)

    def _finish(self, index: int, facts: TargetFacts) -> None:
        if index in self.running:  # a late answer from a target already given up is dropped
            del self.running[index]
            self.results[index] = facts


def collect_all(
    targets: Sequence[Any],
    options: Sequence[CollectOptions],
    collect: Collect,
    *,
    workers: int,
    audit_deadline: float | None = None,
    stop: StopRequest | None = None,
) -> list[TargetFacts]:
    """Facts for every target, in order, within the deadlines. `options[i]` is
    target i's (each with its own `published` record). Never raises for a
    target; returns within about POLL_S of a deadline or a stop request."""
    schedule = _Schedule(targets, options, collect, workers, audit_deadline, stop or StopRequest())
    return schedule.run()


def unfinished_facts(
    target: Any, published: dict[str, Fact[Any]], started: datetime, reason: str
) -> TargetFacts:
    """The facts of a target that did not finish: what it published, and `reason`
    as the error of every fact its collector declares but did not deliver."""
    source = f"collect {target.kind}"
    facts = dict(published)
    declared = declared_facts(target.kind)
    for name in declared:
        facts.setdefault(name, Fact.error(reason, source))
    if not declared:
        facts[STUCK_FACT] = Fact.error(reason, source)
    return TargetFacts(target=target.name, kind=target.kind, facts=facts, started_at=started, finished_at=utcnow())


__all__ = ["StopRequest", "collect_all", "unfinished_facts", "abandoned_collectors_running", "STUCK_FACT", "POLL_S"]
