"""The rule catalog's machinery: metadata, the decorator that registers a rule
beside its function, and the context a rule is judged in.

A rule is a pure function `(ctx, facts) -> Iterable[Verdict]`. It reads facts
through `FactView.require(name)`, which raises instead of returning a missing
or failed fact; the engine turns those exceptions into `error` findings (or
"not supported by <kind>" failures), so no rule can pass on facts it never got.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from audits import kinds as kind_table
from audits.model import Fact, FactState, Severity, Status, TargetFacts, Verdict, utcnow
from audits.model import Remediation as Remediation  # rule modules import it from here, beside RuleMeta
from audits.vocabulary import is_production_environment


@dataclass(frozen=True)
class RuleMeta:
    id: str
    title: str
    rationale: str
    seed_section: str
    severity: Severity
    kinds: frozenset[str]
    soc2: tuple[str, ...]
    nist_800_53: tuple[str, ...]
    remediation: Mapping[str, Remediation]  # kind -> how to fix a failure there
    prod_only: bool = False  # judged only for production targets/repositories
    cis: tuple[str, ...] = ()  # CIS Docker Benchmark ids (informative)

    def implemented_for(self) -> frozenset[str]:
        """The kinds in today's kind table this rule judges (`kinds` may name
        the REGISTRIES scope, which means every registry kind)."""
        return kind_table.expand(self.kinds)

    def applies_to(self, kind: str) -> bool:
        return kind in self.implemented_for()

    def remediation_for(self, kind: str) -> Remediation | None:
        return self.remediation.get(kind)


RuleFunc = Callable[["RuleContext", "FactView"], Iterable[Verdict]]


@dataclass(frozen=True)
class Rule:
    meta: RuleMeta
    func: RuleFunc


_CATALOG: dict[str, Rule] = {}


def rule(meta: RuleMeta) -> Callable[[RuleFunc], RuleFunc]:
    """Register `func` under `meta.id`; ids are unique and stable."""

    def register(func: RuleFunc) -> RuleFunc:
        if meta.id in _CATALOG:
            raise ValueError(f"rule {meta.id} registered twice")
        _CATALOG[meta.id] = Rule(meta, func)
        return func

    return register


def catalog() -> dict[str, Rule]:
    """All rules, importing the rule modules on first use."""
    from audits.rules import load_all

    load_all()
    return dict(sorted(_CATALOG.items()))


# --------------------------------------------------------------------------
# What a rule sees
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Thresholds:
    cert_min_days: int = 30
    credential_max_age_days: int = 90
    max_vuln_severity: str = "high"
    pull_spike_factor: float = 5.0


@dataclass(frozen=True)
class RuleContext:
    """The judgement's settings: environment, thresholds and history.

    `pull_history` is the per-repository daily pull baseline kept by earlier
    audits (repo -> {day: pulls}); the engine loads it, rules only read it.
    """

    environment: str = "dev"
    use_cases: tuple[str, ...] = ()
    frameworks: tuple[str, ...] = ()
    thresholds: Thresholds = field(default_factory=Thresholds)
    production_patterns: tuple[str, ...] = ()
    allowed_registries: tuple[str, ...] = ()  # RG-SRC-002 allow-list (host[:port])
    allowed_namespaces: tuple[str, ...] = ()  # RG-SRC-001 Docker Hub namespaces
    trusted_keys: tuple[str, ...] = ()
    target_name: str = ""
    target_kind: str = ""
    pull_history: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    now: datetime = field(default_factory=utcnow)

    @property
    def is_prod_environment(self) -> bool:
        return is_production_environment(self.environment)

    def is_prod(self, repository: str | None = None) -> bool:
        """Production if the environment is, or the repository matches a
        configured production pattern (`prod/*`)."""
        if self.is_prod_environment:
            return True
        if repository is None:
            return False
        return any(fnmatch.fnmatchcase(repository, p) for p in self.production_patterns)

    def any_prod(self, repositories: Iterable[str]) -> bool:
        return self.is_prod_environment or any(self.is_prod(r) for r in repositories)


class FactUnavailable(Exception):
    """A needed fact is missing or failed: the rule's verdict is `error`."""

    def __init__(self, name: str, fact: Fact[Any] | None) -> None:
        self.name = name
        self.fact = fact
        detail = fact.detail if fact is not None else "not collected"
        super().__init__(f"fact '{name}' unavailable: {detail}")


class FactUnsupported(Exception):
    """The registry kind has no such feature."""

    def __init__(self, name: str, fact: Fact[Any]) -> None:
        self.name = name
        self.fact = fact
        super().__init__(fact.detail or f"'{name}' not supported")


class FactManaged(Exception):
    """The provider runs this and it was deliberately not probed."""

    def __init__(self, name: str, fact: Fact[Any]) -> None:
        self.name = name
        self.fact = fact
        super().__init__(fact.detail or f"'{name}' is managed by the provider")


class FactNotObservable(Exception):
    """Cannot be seen from where the collector stands: a person must check."""

    def __init__(self, name: str, fact: Fact[Any]) -> None:
        self.name = name
        self.fact = fact
        super().__init__(fact.detail or f"'{name}' cannot be observed remotely")


class FactView:
    """Read-only access to one target's facts that refuses to hand out
    anything but an `ok` value."""

    def __init__(self, target: TargetFacts) -> None:
        self.target = target

    @property
    def kind(self) -> str:
        return self.target.kind

    def has(self, name: str) -> bool:
        return name in self.target.facts

    def fact(self, name: str) -> Fact[Any] | None:
        return self.target.facts.get(name)

    def require(self, name: str) -> Any:
        fact = self.target.facts.get(name)
        if fact is None or fact.state is FactState.ERROR:
            raise FactUnavailable(name, fact)
        if fact.state is FactState.UNSUPPORTED:
            raise FactUnsupported(name, fact)
        if fact.state is FactState.MANAGED:
            raise FactManaged(name, fact)
        if fact.state is FactState.NOT_OBSERVABLE:
            raise FactNotObservable(name, fact)
        return fact.value

    def source(self, name: str) -> dict[str, Any]:
        """Evidence provenance for a fact: where and when it was observed."""
        fact = self.target.facts.get(name)
        if fact is None:
            return {}
        return {"source": fact.source, "observed_at": fact.observed_at.isoformat()}


# Shorthands so rule bodies read as judgements, not plumbing.


def passed(resource: str, message: str, **evidence: Any) -> Verdict:
    return Verdict(Status.PASS, resource, message, evidence)


def failed(
    resource: str, message: str, severity: Severity | None = None, **evidence: Any
) -> Verdict:
    return Verdict(Status.FAIL, resource, message, evidence, severity)


def errored(resource: str, message: str, **evidence: Any) -> Verdict:
    return Verdict(Status.ERROR, resource, message, evidence)


def not_applicable(resource: str, message: str, **evidence: Any) -> Verdict:
    return Verdict(Status.NOT_APPLICABLE, resource, message, evidence)


def manual(resource: str, message: str, **evidence: Any) -> Verdict:
    return Verdict(Status.MANUAL, resource, message, evidence)
