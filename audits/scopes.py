"""From configured targets to the scopes an audit collects, and a shard's part of them.

Most kinds audit a target as one scope. A kind whose target spans several
places (ECR: accounts and regions) names a `scopes` function in the kind table
that lists them; each scope is then a target of its own to the collectors, the
rules, the reports and the history (`org-ecr/123456789012/us-east-1`).

Sharding (`--shard I/N`) partitions the scopes, not the configured targets, so
one organization of forty (account, region) scopes spreads over every shard.
The partition is contiguous blocks of the scopes in name order: deterministic
for the same config and estate, balanced to within one scope, and an account's
regions mostly stay together (one AssumeRole each, not one per shard).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from audits import kinds

Progress = Callable[[str, int, int | None], None]


class ScopeError(Exception):
    """A target's scopes could not be listed; the message says why and what is needed."""


@dataclass(frozen=True)
class PlannedScope:
    """A scope to collect, or a target whose scopes could not be listed
    (`failure` says why; the engine reports every rule for it as `error`)."""

    target: Any
    failure: str | None = None

    @property
    def name(self) -> str:
        return str(self.target.name)


def plan(targets: Sequence[Any], *, timeout: float = 10.0, progress: Progress | None = None) -> list[PlannedScope]:
    """Every scope of every target, in config order. A kind's `scopes` function
    that raises makes that target one failed scope; the others are unaffected."""
    planned: list[PlannedScope] = []
    for target in targets:
        expand = kinds.get(target.kind).scopes_function()
        if expand is None:
            planned.append(PlannedScope(target))
            continue
        report = _prefixed(progress, target.name)
        try:
            planned.extend(PlannedScope(scope) for scope in expand(target, timeout, report))
        except ScopeError as exc:
            planned.append(PlannedScope(target, str(exc)))
        except Exception as exc:  # noqa: BLE001 - one target's listing must not stop the audit of the others
            planned.append(PlannedScope(target, f"listing the scopes failed: {type(exc).__name__}: {exc}"))
    return planned


def plan_digest(planned: Sequence[PlannedScope]) -> str:
    """SHA-256 of every scope's name, in name order: what a shard's part was cut
    from. Shards of one run that disagree on it saw different estates or configs,
    so their parts need not add up (the merge says so)."""
    names = "\n".join(sorted(p.name for p in planned))
    return hashlib.sha256(names.encode("utf-8")).hexdigest()


def shard_part(planned: Sequence[PlannedScope], index: int, count: int) -> list[PlannedScope]:
    """Shard `index` (0-based) of `count`: a contiguous block of the scopes in
    name order. A shard may be empty when there are fewer scopes than shards."""
    if not 0 <= index < count:
        raise ValueError(f"shard {index}/{count}: the index counts from 0 to {count - 1}")
    ordered = sorted(planned, key=lambda p: p.name)
    start, end = index * len(ordered) // count, (index + 1) * len(ordered) // count
    return ordered[start:end]


def _prefixed(progress: Progress | None, name: str) -> Progress | None:
    if progress is None:
        return None
    report = progress

    def prefixed(what: str, done: int, total: int | None) -> None:
        report(f"{name}: {what}", done, total)

    return prefixed
