"""A kind that exists only for tests: its target model and its collector, as a
new registry kind would ship them. Registered through the kind table alone
(tests/unit/test_kind_table.py); nothing else in regguard names it."""

from __future__ import annotations

from typing import Any

from audits.collectors.base import CollectOptions
from audits.model import (
    REPOSITORIES,
    TAG_IMMUTABILITY,
    Fact,
    ImmutabilitySetting,
    RepositoryFacts,
    TagFacts,
    TagImmutabilityFacts,
    TargetFacts,
    utcnow,
)
from audits.targets import TargetConfig

COLLECTED: list[str] = []  # targets this collector was asked for, in order


class FloppyTarget(TargetConfig):
    """A registry on a floppy disk: one key of its own."""

    drive: str


def collect(target: FloppyTarget, options: CollectOptions) -> TargetFacts:
    """One repository with a `latest` tag and mutable tags; every other fact missing."""
    COLLECTED.append(target.name)
    now = utcnow()
    source = f"floppy:{target.drive}"
    repo = RepositoryFacts("disk/app", tags=(TagFacts("latest", "sha256:" + "0" * 64, None),), source=source)
    facts: dict[str, Fact[Any]] = {
        REPOSITORIES: Fact.ok((repo,), source),
        TAG_IMMUTABILITY: Fact.ok(TagImmutabilityFacts({"disk/app": ImmutabilitySetting(immutable=False)}), source),
    }
    return TargetFacts(target.name, "floppy", facts, now, utcnow(), requests=1)


def drives(target: FloppyTarget, timeout: float, progress: Any) -> list[FloppyTarget]:
    """The scopes of a floppy target: one per drive letter in `drive` ("AB"
    -> A:, B:); the drive letter `X` cannot be listed."""
    from audits.scopes import ScopeError

    if "X" in target.drive:
        raise ScopeError(f"drive X of {target.name} is not inserted")
    return [target.model_copy(update={"name": f"{target.name}/{d}", "drive": f"{d}:"}) for d in target.drive]
