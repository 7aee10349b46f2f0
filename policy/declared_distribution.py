"""Distribution's policy-pack declarer: the registry VMs a stack declares, as
the facts a live Distribution audit would produce, so the same rules judge them.

What declared state can show: NETWORK_EXPOSURE, from the ingress rules of the
security groups inside `regguard:distribution:DistributionVm` components (a
rule admitting 0.0.0.0/0 or ::/0 makes the registry reachable from the whole
internet). Everything else of a Distribution VM (TLS, accounts, storage
encryption, notifications) is in its user data, which is a secret and only
known after apply, so those facts are `not_observable` and the live audit of
the served registry judges them. Pure: no I/O, no Pulumi engine, no SDK.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from audits.model import (
    NETWORK_EXPOSURE,
    Fact,
    Finding,
    NetworkExposureFacts,
    TargetFacts,
    utcnow,
)
from audits.rules.registry import RuleContext
from audits.vocabulary import DEFAULT_FRAMEWORKS, is_production_environment
from policy.declared import ENVIRONMENT_TAG, OPT_OUT_PREFIX, DeclaredResource, Location, is_unknown, parent_type

KIND = "distribution"
VM_COMPONENT = "regguard:distribution:DistributionVm"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
TYPE_PREFIX = SECURITY_GROUP  # raw security groups are reported as not created through a component
MANAGED_REMEDIATION = (
    "Declare the registry VM with components.distribution_vm.DistributionVm (its security group admits "
    "only DistributionVmArgs.allowed_cidrs) instead of raw aws.ec2 resources."
)
DECLARED_STATE_RULES: tuple[str, ...] = ("RG-NET-001",)
PUBLIC_CIDRS = frozenset({"0.0.0.0/0", "::/0"})
# The opt-out tag DistributionVmArgs writes for a public network outside production.
_NETWORK_OPT_OUT = f"{OPT_OUT_PREFIX}allowed_cidrs"
_NOT_DECLARED = (
    "in the VM's user data, a secret known only after apply; the live audit of the registry checks it"
)


@dataclass(frozen=True)
class _Group:
    resource: DeclaredResource
    public: tuple[str, ...]  # ingress CIDRs open to everyone
    known: bool

    @property
    def environment(self) -> str:
        return self.resource.tags.get(ENVIRONMENT_TAG, "")


@dataclass(frozen=True)
class DeclaredVms:
    """Every declared registry VM's security group, judged as one target."""

    facts: TargetFacts
    context: RuleContext
    groups: tuple[_Group, ...]

    def locate(self, finding: Finding) -> list[Location]:
        """A network verdict lands on each open security group (every group when none is open)."""
        open_groups = [g for g in self.groups if g.public] or list(self.groups)
        return [
            Location(g.resource.urn, g.environment, _NETWORK_OPT_OUT in g.resource.tags) for g in open_groups
        ]


def declare(
    resources: Sequence[DeclaredResource],
    *,
    frameworks: tuple[str, ...] = DEFAULT_FRAMEWORKS,
    at: datetime | None = None,
) -> DeclaredVms | None:
    """The stack's registry-VM facts, or None when it declares no Distribution VM."""
    at = at or utcnow()
    by_urn = {r.urn: r for r in resources}
    groups = tuple(
        _group(r) for r in resources if r.type == SECURITY_GROUP and parent_type(r, by_urn) == VM_COMPONENT
    )
    if not groups:
        return None
    facts: dict[str, Fact[Any]] = {NETWORK_EXPOSURE: _exposure(groups, at)}
    envs = {g.environment for g in groups}
    environment = "prod" if any(is_production_environment(e) for e in envs) else (envs.pop() if len(envs) == 1 else "")
    target = "pulumi:distribution-vms"
    context = RuleContext(
        environment=environment or "unknown", frameworks=frameworks, target_name=target, target_kind=KIND, now=at
    )
    return DeclaredVms(
        facts=TargetFacts(target=target, kind=KIND, facts=_with_undeclared(facts, at), started_at=at, finished_at=at),
        context=context,
        groups=groups,
    )


def _group(resource: DeclaredResource) -> _Group:
    rules = resource.props.get("ingress")
    if is_unknown(rules) or not isinstance(rules, list):
        return _Group(resource, (), known=not is_unknown(rules))
    public: list[str] = []
    for rule in rules:
        if not isinstance(rule, Mapping):
            continue
        for key in ("cidrBlocks", "ipv6CidrBlocks"):
            blocks = rule.get(key)
            if is_unknown(blocks):
                return _Group(resource, (), known=False)
            public += [c for c in blocks or [] if c in PUBLIC_CIDRS]
    return _Group(resource, tuple(public), known=True)


def _exposure(groups: Sequence[_Group], at: datetime) -> Fact[NetworkExposureFacts]:
    source = f"declared {SECURITY_GROUP}"
    if not all(g.known for g in groups):
        return Fact.not_observable(
            "a security group's ingress is not known until apply (pulumi preview); judged again at `pulumi up`",
            source=source,
            at=at,
        )
    open_groups = [g for g in groups if g.public]
    if open_groups:
        detail = "; ".join(f"security group {g.resource.name} admits {', '.join(g.public)}" for g in open_groups)
        return Fact.ok(NetworkExposureFacts(True, detail), source, at)
    names = ", ".join(g.resource.name for g in groups)
    return Fact.ok(NetworkExposureFacts(False, f"security groups {names} admit only configured networks"), source, at)


def _with_undeclared(facts: dict[str, Fact[Any]], at: datetime) -> dict[str, Fact[Any]]:
    """Every other fact a Distribution collector produces, as not_observable."""
    from audits.collectors.distribution import ALL_FACTS

    for name in ALL_FACTS:
        facts.setdefault(name, Fact.not_observable(_NOT_DECLARED, source="declared", at=at))
    return facts
