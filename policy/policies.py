"""The CrossGuard policies: the rule catalog applied to a stack's declared
resources at `pulumi preview` / `pulumi up`, for every kind whose declarer the
kind table names (today `policy.declared_ecr`).

Importing this module builds nothing and starts nothing; `build_policies()`
returns plain `StackValidationPolicy` objects and only `policy/__main__.py`
hands them to `PolicyPack` (which starts the analyzer's gRPC server).

Per rule some declarer lists in its `DECLARED_STATE_RULES` there are two policies, because one
policy has one enforcement level and the level depends on the environment
of the resource a finding is about (its `regguard:environment` tag, which
our components write on every taggable resource; see policy/README.md):

* `rg-tag-002` (mandatory): findings about production resources;
* `rg-tag-002-advisory` (advisory): findings about every other resource,
  and production findings covered by an explicit `regguard:opt-out:*` tag.

Both build the same facts and run `audits.engine.judge` with just that rule,
so the pack cannot disagree with the live audit. `regguard-unmanaged-<kind>`
(advisory, e.g. `regguard-unmanaged-ecr`) lists that kind's resources that
were not created through a regguard component.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy import Severity as PolicySeverity

from audits import kinds
from audits.engine import judge
from audits.model import Finding, Severity, Status
from audits.rules.registry import Rule, RuleMeta, catalog
from policy.declared import MANAGED_TAG, DeclaredResource, Location, from_policy_resources, is_managed

ADVISORY_SUFFIX = "-advisory"
UNMANAGED_PREFIX = "regguard-unmanaged-"
UNMANAGED_POLICY = f"{UNMANAGED_PREFIX}ecr"
# The findings a preview must show: a failure, or a rule that could not judge.
REPORTED = frozenset({Status.FAIL, Status.ERROR})

_SEVERITY = {
    Severity.CRITICAL: PolicySeverity.CRITICAL,
    Severity.HIGH: PolicySeverity.HIGH,
    Severity.MEDIUM: PolicySeverity.MEDIUM,
    Severity.LOW: PolicySeverity.LOW,
    Severity.INFO: PolicySeverity.LOW,
}


def policy_name(rule_id: str, level: EnforcementLevel) -> str:
    """`RG-TAG-002` -> `rg-tag-002` (mandatory) / `rg-tag-002-advisory`."""
    base = rule_id.lower()
    return base if level is EnforcementLevel.MANDATORY else base + ADVISORY_SUFFIX


def enforcement_for(location: Location) -> EnforcementLevel | None:
    """Which policy reports a finding at `location`; None: nobody.

    Production is mandatory unless an explicit opt-out tag covers the rule
    there (then advisory: visible, never blocking, since the opt-out was a
    reviewed decision in the stack config). Elsewhere advisory, and an
    explicit opt-out outside production is the environment's accepted
    profile (e.g. dev's AWS-owned encryption): not reported.
    """
    if location.opted_out:
        return EnforcementLevel.ADVISORY if location.is_prod else None
    return EnforcementLevel.MANDATORY if location.is_prod else EnforcementLevel.ADVISORY


def violation_message(finding: Finding) -> str:
    return f"{finding.rule}: {finding.message} ({finding.resource})"


def declarers() -> dict[str, Any]:
    """kind -> its declarer module (from the kind table), imported now."""
    return {k.name: kinds.load(str(k.declarer)) for k in kinds.with_declarer()}


def declared_state_rules() -> tuple[str, ...]:
    """Every rule some declarer can judge on declared state, in catalog order."""
    wanted = {rule_id for declarer in declarers().values() for rule_id in declarer.DECLARED_STATE_RULES}
    return tuple(rule_id for rule_id in catalog() if rule_id in wanted)


def violations(
    rule: Rule, resources: Sequence[DeclaredResource], level: EnforcementLevel
) -> Iterator[tuple[str, str | None]]:
    """(message, urn) for every failing/erroring finding of `rule` on the
    declared `resources` that the `level` policy reports, kind by kind."""
    for declarer in declarers().values():
        if rule.meta.id not in declarer.DECLARED_STATE_RULES:
            continue
        stack = declarer.declare(resources)
        if stack is None:
            continue  # nothing of this kind declared: its rules do not apply
        for finding in judge(stack.facts, stack.context, {rule.meta.id: rule}):
            if finding.status not in REPORTED:
                continue
            for location in stack.locate(finding):
                if enforcement_for(location) is level:
                    yield violation_message(finding), location.urn


def _rule_validator(rule: Rule, level: EnforcementLevel) -> Callable[[StackValidationArgs, ReportViolation], None]:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        for message, urn in violations(rule, from_policy_resources(args.resources), level):
            report_violation(message, urn)

    return validate


def _remediation_steps(meta: RuleMeta) -> str:
    """The fixes for the kinds the pack declares (a policy runs on declared resources of those kinds)."""
    declared = [k.name for k in kinds.with_declarer()]
    return "\n".join(f"{kind}: {fix.as_text()}" for kind in declared if (fix := meta.remediation_for(kind)))


def rule_policy(rule: Rule, level: EnforcementLevel) -> StackValidationPolicy:
    """One stack policy for `rule` at `level` (mandatory or advisory)."""
    meta = rule.meta
    scope = (
        "production resources"
        if level is EnforcementLevel.MANDATORY
        else "non-production resources and production opt-outs"
    )
    return StackValidationPolicy(
        name=policy_name(meta.id, level),
        description=meta.title,
        validate=_rule_validator(rule, level),
        enforcement_level=level,
        display_name=f"{meta.id} {meta.title} ({scope})",
        severity=_SEVERITY[meta.severity],
        remediation_steps=_remediation_steps(meta),
        tags=["regguard", meta.id, *meta.soc2, *meta.nist_800_53],
    )


def unmanaged_resources(resources: Sequence[DeclaredResource], type_prefix: str) -> Iterator[tuple[str, str]]:
    """(message, urn) for every resource of a declarer's types not created through a regguard component."""
    by_urn = {r.urn: r for r in resources}
    for r in resources:
        if r.type.startswith(type_prefix) and not is_managed(r, by_urn):
            yield (
                f"{r.type} '{r.name}' is not created through a regguard component "
                f"(no {MANAGED_TAG} tag, no regguard parent): the catalog's secure defaults "
                "are not guaranteed for it",
                r.urn,
            )


def unmanaged_policy(kind: str, declarer: Any) -> StackValidationPolicy:
    """Advisory: resources of `kind` declared without a regguard component."""

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        for message, urn in unmanaged_resources(from_policy_resources(args.resources), declarer.TYPE_PREFIX):
            report_violation(message, urn)

    return StackValidationPolicy(
        name=f"{UNMANAGED_PREFIX}{kind}",
        description=f"{kinds.get(kind).title} resources are created through regguard components",
        validate=validate,
        enforcement_level=EnforcementLevel.ADVISORY,
        severity=PolicySeverity.LOW,
        remediation_steps=declarer.MANAGED_REMEDIATION,
        tags=["regguard"],
    )


def build_policies(rule_ids: Sequence[str] | None = None) -> list[Policy]:
    """Every policy of the pack: mandatory + advisory per rule (default: every
    rule a declarer can judge), then one unmanaged-resource check per declared
    kind. Raises KeyError for an id not in the catalog."""
    rules = catalog()
    policies: list[Policy] = []
    for rule_id in declared_state_rules() if rule_ids is None else rule_ids:
        for level in (EnforcementLevel.MANDATORY, EnforcementLevel.ADVISORY):
            policies.append(rule_policy(rules[rule_id], level))
    policies += [unmanaged_policy(kind, declarer) for kind, declarer in declarers().items()]
    return policies
