"""Runs collectors concurrently, applies every rule, and is fail-closed.

Fail-closed means: a collector that crashed, a fact that could not be
collected, or a rule that raised all become `error` findings with the reason;
none of them can ever turn into `pass`. Unsupported features fail with "not
supported by <kind>" where the rule is required for the environment. A target
that misses its deadline, or an audit stopped by a signal, keeps what was
observed and reports the rest as errors (`audits.scheduler`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from audits import __version__
from audits.collectors.base import CollectionRecord, CollectOptions, ProgressCallback, collector_for
from audits.config import AuditConfig
from audits.model import (
    AuditResult,
    Fact,
    FactState,
    Finding,
    Severity,
    Status,
    TargetFacts,
    TargetSummary,
    Verdict,
    finding_sort_key,
    utcnow,
)
from audits.rules.registry import (
    FactManaged,
    FactNotObservable,
    FactUnavailable,
    FactUnsupported,
    FactView,
    Rule,
    RuleContext,
    RuleMeta,
    Thresholds,
    catalog,
)
from audits.scheduler import STUCK_FACT, StopRequest, collect_all
from audits.scopes import PlannedScope, plan, plan_digest, shard_part
from audits.waivers import apply_waivers

COLLECTOR_CRASH = STUCK_FACT  # pseudo fact name recorded when a collector raised or never finished


@dataclass(frozen=True)
class AuditRun:
    """The result plus the raw facts (for the evidence bundle and history)."""

    result: AuditResult
    facts: Mapping[str, TargetFacts]
    interrupted: str | None = None  # why the audit was stopped early (a signal), if it was
    plan_sha256: str | None = None  # of every scope listed, before a shard took its part


def run_audit(
    config: AuditConfig,
    *,
    environment: str | None = None,
    concurrency: int = 16,
    target_concurrency: int = 4,
    progress: ProgressCallback | None = None,
    pull_history: Mapping[str, Mapping[str, Mapping[str, int]]] | None = None,
    deadline: float | None = None,
    max_repositories: int | None = None,
    stop: StopRequest | None = None,
    shard: tuple[int, int] | None = None,
) -> AuditRun:
    """List every target's scopes (`audits.scopes`), keep shard `(index, count)`'s
    part of them when sharded, collect them (at most `target_concurrency` at
    once, each with `concurrency` requests in flight and its own `deadline`),
    then judge all facts with the catalog. `deadline` bounds the whole
    collection (seconds); `max_repositories` overrides every target's cap;
    `stop` ends it early."""
    started = utcnow()
    env = environment or config.environment
    rules = catalog()
    stop = stop or StopRequest()
    base = CollectOptions(
        concurrency=concurrency,
        trusted_keys=tuple(str(k) for k in config.trusted_keys),
        progress=progress,
    )
    planned = plan(config.targets, timeout=base.timeout, progress=progress)
    digest = plan_digest(planned)
    if shard is not None:
        planned = shard_part(planned, *shard)
    collected = _collect_planned(planned, base, max_repositories, target_concurrency, deadline, stop)

    findings: list[Finding] = []
    summaries: list[TargetSummary] = []
    for scope, (facts, record) in zip(planned, collected, strict=True):
        ctx = _context_for(config, scope.target, env, (pull_history or {}).get(scope.name, {}))
        target_findings = judge(facts, ctx, rules)
        findings.extend(target_findings)
        summaries.append(_summarize(facts, target_findings, record))

    findings = apply_waivers(findings, config.waivers, started.date())
    result = AuditResult(
        tool="regguard",
        version=__version__,
        started_at=started,
        finished_at=utcnow(),
        environment=env,
        frameworks=tuple(config.frameworks),
        targets=tuple(summaries),
        findings=tuple(sorted(findings, key=finding_sort_key)),
    )
    facts_by_target = {scope.name: facts for scope, (facts, _) in zip(planned, collected, strict=True)}
    return AuditRun(result, facts_by_target, interrupted=stop.reason, plan_sha256=digest)


def _collect_planned(
    planned: Sequence[PlannedScope],
    base: CollectOptions,
    max_repositories: int | None,
    target_concurrency: int,
    deadline: float | None,
    stop: StopRequest,
) -> list[tuple[TargetFacts, CollectionRecord]]:
    """Collect the scopes that could be listed; a target whose scopes could not
    be is one crash fact, so every rule for it says `error` with the reason."""
    reachable = [p.target for p in planned if p.failure is None]
    options = [_options_for(t, base, max_repositories) for t in reachable]
    workers = max(1, min(target_concurrency, len(reachable)))
    done = collect_all(reachable, options, _collect_safely, workers=workers, audit_deadline=deadline, stop=stop)
    collected = iter(done)
    published = iter(options)
    out: list[tuple[TargetFacts, CollectionRecord]] = []
    for scope in planned:
        if scope.failure is None:
            out.append((next(collected), next(published).published))
        else:
            out.append((_failed_scope(scope), CollectionRecord()))
    return out


def _failed_scope(scope: PlannedScope) -> TargetFacts:
    now = utcnow()
    fact: Fact[Any] = Fact.error(scope.failure or "scopes not listed", source=f"scopes {scope.target.kind}")
    return TargetFacts(scope.name, scope.target.kind, {COLLECTOR_CRASH: fact}, started_at=now, finished_at=now)


def _options_for(target: Any, options: CollectOptions, max_repositories: int | None) -> CollectOptions:
    """Per-target options: the target's repository cap (unless the caller overrides
    it), a fresh record to publish facts into, and progress lines that say which
    target they are about."""
    cap = max_repositories if max_repositories is not None else target.max_repositories
    own = dataclasses.replace(options, max_repositories=cap, published=CollectionRecord())
    report = options.progress
    if report is None:
        return own

    def prefixed(what: str, done: int, total: int | None) -> None:
        report(f"{target.name}: {what}", done, total)

    return dataclasses.replace(own, progress=prefixed)


def _collect_safely(target: Any, options: CollectOptions) -> TargetFacts:
    """A collector must never raise; if it does anyway, its target becomes one
    `error` fact so every rule for it reports error with the reason."""
    started = utcnow()
    try:
        facts = collector_for(target.kind)(target, options)
    except Exception as exc:  # noqa: BLE001 - fail closed on anything
        detail = f"collector failed: {type(exc).__name__}: {exc}"
        facts = TargetFacts(
            target=target.name,
            kind=target.kind,
            facts={COLLECTOR_CRASH: Fact.error(detail, source=f"collect {target.kind}")},
            started_at=started,
            finished_at=utcnow(),
        )
    return facts


def _context_for(
    config: AuditConfig, target: Any, env: str, pull_history: Mapping[str, Mapping[str, int]]
) -> RuleContext:
    t = config.thresholds
    return RuleContext(
        environment=target.environment or env,
        use_cases=tuple(config.use_cases),
        frameworks=tuple(config.frameworks),
        thresholds=Thresholds(
            cert_min_days=t.cert_min_days,
            credential_max_age_days=t.credential_max_age_days,
            max_vuln_severity=t.max_vuln_severity,
            pull_spike_factor=t.pull_spike_factor,
        ),
        production_patterns=tuple(config.production_patterns),
        allowed_registries=tuple(config.allowed_registries),
        allowed_namespaces=tuple(config.allowed_namespaces),
        trusted_keys=tuple(str(k) for k in config.trusted_keys),
        target_name=target.name,
        target_kind=target.kind,
        pull_history=pull_history,
    )


def judge(facts: TargetFacts, ctx: RuleContext, rules: Mapping[str, Rule]) -> list[Finding]:
    """Apply every rule that covers this target's kind. Pure: no I/O."""
    view = FactView(facts)
    crash = facts.facts.get(COLLECTOR_CRASH)
    findings: list[Finding] = []
    for rule in rules.values():
        if not rule.meta.applies_to(facts.kind):
            continue
        if crash is not None:
            verdicts: Sequence[Verdict] = [
                Verdict(Status.ERROR, facts.target, crash.detail or "collector failed")
            ]
        else:
            verdicts = _apply(rule, ctx, view)
        findings.extend(_finding(rule, facts, v) for v in verdicts)
    return findings


def _apply(rule: Rule, ctx: RuleContext, view: FactView) -> Sequence[Verdict]:
    """Run one rule, converting the FactView's refusals into verdicts."""
    target = view.target.target
    kind = view.kind
    try:
        verdicts = list(rule.func(ctx, view))
    except FactUnavailable as exc:
        return [
            _fact_verdict(Status.ERROR, target, f"could not be judged: {exc}", exc.fact, exc.name)
        ]
    except FactUnsupported as exc:
        if _required(rule, ctx):
            return [_fact_verdict(Status.FAIL, target, _unsupported(kind, exc), exc.fact, exc.name)]
        return [
            _fact_verdict(
                Status.NOT_APPLICABLE,
                target,
                f"{_unsupported(kind, exc)}; not required in {ctx.environment}",
                exc.fact,
                exc.name,
            )
        ]
    except FactManaged as exc:
        return [_fact_verdict(Status.NOT_APPLICABLE, target, str(exc), exc.fact, exc.name)]
    except FactNotObservable as exc:
        return [_fact_verdict(Status.MANUAL, target, f"check by hand: {exc}", exc.fact, exc.name)]
    except Exception as exc:  # noqa: BLE001 - a crashing rule must not look like a pass
        return [Verdict(Status.ERROR, target, f"rule failed: {type(exc).__name__}: {exc}")]
    if not verdicts:
        # A rule always says something about what it judges, if only "nothing in
        # scope"; silence is a bug in the rule and must not read as an absence.
        return [Verdict(Status.ERROR, target, "rule returned no verdict (a bug in the rule)")]
    return verdicts


def _unsupported(kind: str, exc: FactUnsupported) -> str:
    """"not supported by <kind>", with the collector's word on what to use instead."""
    detail = exc.fact.detail
    return f"not supported by {kind}: {detail}" if detail else f"not supported by {kind}"


def _required(rule: Rule, ctx: RuleContext) -> bool:
    """A rule is required unless it is production-only and nothing here is prod."""
    return not rule.meta.prod_only or ctx.is_prod_environment or bool(ctx.production_patterns)


def _fact_verdict(
    status: Status, resource: str, message: str, fact: Fact[Any] | None, name: str
) -> Verdict:
    evidence: dict[str, Any] = {"fact": name}
    if fact is not None:
        evidence.update(
            state=fact.state.value,
            source=fact.source,
            observed_at=fact.observed_at.isoformat(),
        )
        if fact.detail:
            evidence["detail"] = fact.detail
    else:
        evidence["state"] = "not collected"
    return Verdict(status, resource, message, evidence)


def _finding(rule: Rule, facts: TargetFacts, verdict: Verdict) -> Finding:
    meta = rule.meta
    return Finding(
        rule=meta.id,
        status=verdict.status,
        severity=verdict.severity or meta.severity,
        target=facts.target,
        kind=facts.kind,
        resource=verdict.resource,
        message=verdict.message,
        evidence=dict(verdict.evidence),
        **catalog_fields(meta, facts.kind, verdict.status),
    )


def catalog_fields(meta: RuleMeta | None, kind: str, status: Status) -> dict[str, Any]:
    """What a finding takes from the rule catalog: its title, controls and — for a
    failure, waived or not — the kind's fix. For a live finding and for one read
    back from the history alike (`meta` None: a rule the catalog no longer has)."""
    from audits.controls import controls_for
    from audits.model import Controls

    if meta is None:
        return {"title": "", "controls": Controls((), ()), "remediation": None}
    failed = status in (Status.FAIL, Status.WAIVED)
    return {
        "title": meta.title,
        "controls": controls_for(meta),
        "remediation": meta.remediation_for(kind) if failed else None,
    }


def _summarize(facts: TargetFacts, findings: Sequence[Finding], record: CollectionRecord) -> TargetSummary:
    errors = tuple(
        f"{name}: {fact.detail}"
        for name, fact in facts.facts.items()
        if fact.state is FactState.ERROR
    ) + tuple(
        f"{f.rule} {f.resource}: {f.message}"
        for f in findings
        if f.status is Status.ERROR and f.evidence.get("state") != FactState.ERROR.value
    ) + record.gaps()
    return TargetSummary(
        name=facts.target,
        kind=facts.kind,
        complete=not errors,
        errors=errors,
        requests=facts.requests,
        duration_s=round((facts.finished_at - facts.started_at).total_seconds(), 3),
        warnings=record.warnings(),
    )


def exit_code(result: AuditResult, fail_on: Severity) -> int:
    """0 clean, 1 failing at/above `fail_on`, 3 incomplete (errors win: an
    audit that could not see everything cannot vouch for anything)."""
    if not result.complete or any(f.status is Status.ERROR for f in result.findings):
        return 3
    if any(f.status is Status.FAIL and f.severity.rank >= fail_on.rank for f in result.findings):  # not WAIVED
        return 1
    return 0


__all__ = ["AuditRun", "StopRequest", "run_audit", "judge", "exit_code"]
