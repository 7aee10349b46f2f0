"""Declared resources as the policy pack sees them, whatever their kind.

CrossGuard hands a stack policy `StackValidationArgs.resources` (type token,
camelCase props, URN, name, parent); `from_policy_resources` turns them into
plain `DeclaredResource`s (tests build the same from the mocked program). Each
kind's declarer module (named in the kind table, e.g. `policy.declared_ecr`)
turns them into the facts a live audit of that kind would produce; this
module holds what every declarer shares: the resources, the tags regguard
components write, where a finding lands, and which resources are managed.
Pure: no I/O, no Pulumi engine, no SDK.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from audits.vocabulary import is_production_environment

COMPONENT_PREFIX = "regguard:"
MANAGED_TAG = "regguard:managed"
ENVIRONMENT_TAG = "regguard:environment"
OPT_OUT_PREFIX = "regguard:opt-out:"


# The CLI's "unknown during preview" sentinels (pulumi_policy.proxy / pulumi.runtime.rpc).
_UNKNOWN_SENTINELS = frozenset(
    {
        "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",
        "3eeb2bf0-c639-47a8-9e75-3b44932eb421",
        "04da6b54-80e4-46f7-96ec-b56ff0331ba9",
        "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",
        "030794c1-ac77-496b-92df-f27374a8bd58",
        "e48ece36-62e2-4504-bad9-02848725956a",
        "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",
    }
)

# --------------------------------------------------------------------------
# Resources as declared
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class DeclaredResource:
    """One resource of the stack with plain props (unknowns kept as the
    engine's sentinel strings, so they can be detected instead of raising)."""

    type: str
    name: str
    urn: str
    parent_urn: str
    props: Mapping[str, Any]

    @property
    def tags(self) -> dict[str, str]:
        """`tagsAll` (provider default tags) overlaid with `tags`; unknown or
        non-string values are dropped, so a tag lookup never sees a sentinel."""
        merged: dict[str, str] = {}
        for key in ("tagsAll", "tags"):
            value = self.props.get(key)
            if isinstance(value, Mapping):
                merged.update({str(k): v for k, v in value.items() if isinstance(v, str) and not is_unknown(v)})
        return merged


def is_unknown(value: Any) -> bool:
    return isinstance(value, str) and value in _UNKNOWN_SENTINELS


class UnknownAtPreview(Exception):
    """A value needed for a fact is not known yet (preview); the message is where it sits."""


def known(value: Any, where: str) -> Any:
    """`value` when nothing inside it is unknown; raise `UnknownAtPreview` otherwise."""
    if is_unknown(value):
        raise UnknownAtPreview(where)
    if isinstance(value, Mapping):
        for k, v in value.items():
            known(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            known(v, f"{where}[{i}]")
    return value


def stack_label(resources: Sequence[DeclaredResource]) -> str:
    """`pulumi:<project>/<stack>` from a URN (`urn:pulumi:<stack>::<project>::...`):
    a label for registry-wide verdicts that no repository name can equal."""
    for r in resources:
        parts = r.urn.split("::")
        if len(parts) >= 4 and parts[0].startswith("urn:pulumi:"):
            return f"pulumi:{parts[1]}/{parts[0].removeprefix('urn:pulumi:')}"
    return "pulumi:stack"


def plain(value: Any) -> Any:
    """Props as plain dicts/lists. CrossGuard wraps props in proxies that raise
    on an unknown value; their `["__target"]` is the wrapped container (the
    SDK's own serializer unwraps them the same way), and a `Secret` holds
    its value in `.value`."""
    if isinstance(value, Mapping):
        if not isinstance(value, dict):
            try:
                value = value["__target"]
            except KeyError:
                value = dict(value)
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return plain(value["__target"])  # type: ignore[call-overload]
    if type(value).__name__ == "Secret" and hasattr(value, "value"):
        return plain(value.value)
    return value


def from_policy_resources(resources: Iterable[Any]) -> list[DeclaredResource]:
    """`StackValidationArgs.resources` (PolicyResource: resource_type, props,
    urn, name, parent) -> DeclaredResource."""
    out: list[DeclaredResource] = []
    for r in resources:
        parent = getattr(r, "parent", None)
        out.append(
            DeclaredResource(
                type=str(r.resource_type),
                name=str(r.name),
                urn=str(r.urn),
                parent_urn=str(parent.urn) if parent is not None else "",
                props=plain(r.props) or {},
            )
        )
    return out


@dataclass(frozen=True)
class Location:
    """A resource a finding is about: its URN (None: the stack as a whole),
    its environment ("" when nothing says), and whether an explicit
    `regguard:opt-out:*` tag covers the rule there."""

    urn: str | None
    environment: str
    opted_out: bool

    @property
    def is_prod(self) -> bool:
        return is_production_environment(self.environment)



def is_managed(resource: DeclaredResource, by_urn: Mapping[str, DeclaredResource]) -> bool:
    """Created through a regguard component: tagged `regguard:managed=true`,
    or (for the ECR types that take no tags: lifecycle/repository/registry
    policies, scanning and replication configurations) parented to one."""
    if resource.tags.get(MANAGED_TAG) == "true":
        return True
    return parent_type(resource, by_urn).startswith(COMPONENT_PREFIX)


def parent_type(resource: DeclaredResource, by_urn: Mapping[str, DeclaredResource]) -> str:
    """The parent's type token; from the URN's qualified type
    (`parent$child`) when the parent is not among the resources."""
    parent = by_urn.get(resource.parent_urn)
    if parent is not None:
        return parent.type
    parts = resource.urn.split("::")
    qualified = parts[2].split("$") if len(parts) >= 4 else []
    return qualified[-2] if len(qualified) >= 2 else ""
