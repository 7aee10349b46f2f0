"""The kind table: every kind of target declared once.

A line says what a kind is called, which model its `regguard.yaml` entry
validates against, which module collects its facts, whether the registry rules
judge it, and — for kinds regguard provisions — the component module that
parses its stack config and the policy-pack module that reads its declared
resources. The config's target list, collector dispatch, rule scopes,
`regguard rules`, the Pulumi program, the policy pack and the sandbox all
derive from this table, so a new kind is a collector module, a component
module and one line here.

Only names of modules are kept, never the modules: nothing with an SDK is
imported until a target of that kind is audited (keeps `regguard --help` fast).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from audits.targets import (
    AcrTarget,
    DistributionTarget,
    DockerConfigTarget,
    DockerHubTarget,
    EcrTarget,
    GarTarget,
    GhcrTarget,
    HarborTarget,
    ImageRefsTarget,
    TargetConfig,
)

# Rule scope meaning "every kind whose `registry` is true" (see RuleMeta.kinds).
REGISTRIES = "registries"


@dataclass(frozen=True)
class Kind:
    """One kind of target. Module names are imported on first use.

    `collector` defines `collect(target, options) -> TargetFacts`.
    `provisioner` (components) defines `parse_registry(entry, stack, where)` for
    its `regguard:registries` entries; `declarer` (policy) defines
    `declare(resources)` and `TYPE_PREFIX` for the policy pack.
    `sandbox` is `module:function` starting this kind's local service for the
    demo; `title` is how reports name the kind. `scopes` is `module:function`
    listing the scopes of a target that spans several places
    (`expand(target, timeout, progress) -> targets`, see `audits.scopes`);
    without it a target is one scope.
    """

    name: str
    title: str
    target: type[TargetConfig]
    collector: str
    registry: bool
    provisioner: str | None = None
    declarer: str | None = None
    sandbox: str | None = None
    scopes: str | None = None

    def scopes_function(self) -> Callable[..., Any] | None:
        if self.scopes is None:
            return None
        expand: Callable[..., Any] = load(self.scopes)
        return expand

    def collect_function(self) -> Callable[..., Any]:
        module = importlib.import_module(self.collector)
        collect: Callable[..., Any] = module.collect
        return collect


_TABLE: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "distribution",
            "Docker Distribution (registry:2)",
            DistributionTarget,
            "audits.collectors.distribution",
            registry=True,
            provisioner="components.distribution_vm",
            declarer="policy.declared_distribution",
            sandbox="sandbox.distribution_vm:start_distribution_vm_estate",
        ),
        Kind(
            "ecr",
            "AWS ECR",
            EcrTarget,
            "audits.collectors.ecr",
            registry=True,
            provisioner="components.ecr",
            declarer="policy.declared_ecr",
            sandbox="sandbox.aws_org_estate:start_aws_estates",
            scopes="audits.collectors.ecr_scopes:expand",
        ),
        Kind(
            "harbor",
            "Harbor",
            HarborTarget,
            "audits.collectors.harbor",
            registry=True,
            provisioner="components.harbor_vm",
            declarer="policy.declared_harbor",
            sandbox="sandbox.harbor_estate:start_harbor_estate",
        ),
        Kind(
            "gar",
            "Google Artifact Registry",
            GarTarget,
            "audits.collectors.gar",
            registry=True,
            provisioner="components.artifact_registry",
            declarer="policy.declared_gar",
            sandbox="sandbox.gar_estate:start_gar_estate",
        ),
        Kind(
            "ghcr",
            "GitHub Container Registry",
            GhcrTarget,
            "audits.collectors.ghcr",
            registry=True,
            provisioner="components.ghcr",
            sandbox="sandbox.ghcr_estate:start_ghcr_estate",
        ),
        Kind(
            "docker-config",
            "docker client config",
            DockerConfigTarget,
            "audits.collectors.docker_config",
            registry=False,
        ),
        Kind("image-refs", "image references", ImageRefsTarget, "audits.collectors.image_refs", registry=False),
        Kind(
            "acr",
            "Azure Container Registry",
            AcrTarget,
            "audits.collectors.acr",
            registry=True,
            provisioner="components.acr",
            declarer="policy.declared_acr",
            sandbox="sandbox.acr_estate:start_acr_estate",
        ),
        Kind(
            "dockerhub",
            "Docker Hub",
            DockerHubTarget,
            "audits.collectors.dockerhub",
            registry=True,
            sandbox="sandbox.dockerhub_estate:start_dockerhub_estate",
        ),
    )
}


class UnknownKind(LookupError):
    """A kind name that is not in the table."""


def get(name: str) -> Kind:
    try:
        return _TABLE[name]
    except KeyError:
        raise UnknownKind(f"unknown kind {name!r}; expected one of {', '.join(names())}") from None


def names() -> tuple[str, ...]:
    return tuple(_TABLE)


def all_kinds() -> tuple[Kind, ...]:
    return tuple(_TABLE.values())


def registry_kinds() -> frozenset[str]:
    """The kinds the registry rules judge."""
    return frozenset(k.name for k in _TABLE.values() if k.registry)


def expand(scope: frozenset[str]) -> frozenset[str]:
    """A rule's `kinds` with the REGISTRIES scope replaced by today's registry kinds;
    names not in the table are dropped (nothing that cannot be audited is listed)."""
    out = {k for k in scope if k in _TABLE}
    if REGISTRIES in scope:
        out |= registry_kinds()
    return frozenset(out)


def with_provisioner() -> tuple[Kind, ...]:
    return tuple(k for k in _TABLE.values() if k.provisioner)


def with_declarer() -> tuple[Kind, ...]:
    return tuple(k for k in _TABLE.values() if k.declarer)


def load(qualified: str) -> Any:
    """`package.module:attribute` -> the attribute (imported now)."""
    module, _, attribute = qualified.partition(":")
    loaded = importlib.import_module(module)
    return getattr(loaded, attribute) if attribute else loaded


@contextmanager
def registered(kind: Kind) -> Iterator[Kind]:
    """Add `kind` to the table for the duration of a `with` block (tests, plugins)."""
    if kind.name in _TABLE:
        raise ValueError(f"kind {kind.name!r} is already in the table")
    _TABLE[kind.name] = kind
    try:
        yield kind
    finally:
        del _TABLE[kind.name]
