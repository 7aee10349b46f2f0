"""RG-SRC-*: production pulls come from sources someone vouches for, over
transport that cannot be tampered with."""

from __future__ import annotations

from collections.abc import Iterator

from audits.model import (
    IMAGE_REFERENCES,
    SOURCE_RESTRICTION,
    ImageReference,
    ImageReferencesFacts,
    Severity,
    SourceRestrictionFacts,
    Verdict,
)
from audits.refs import is_ip_registry
from audits.rules.common import (
    DOCKERHUB_KIND,
    IMAGE_REFS_KIND,
    evidence,
    prod_reference_scope,
    reference_errors,
    reference_evidence,
    reference_resource,
    registry_resource,
    target_is_prod,
)
from audits.rules.registry import (
    FactView,
    Remediation,
    RuleContext,
    RuleMeta,
    failed,
    not_applicable,
    passed,
    rule,
)

DOCKER_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
OFFICIAL_NAMESPACE = "library"


def namespace_of(ref: ImageReference) -> str:
    return ref.repository.split("/", 1)[0] if "/" in ref.repository else OFFICIAL_NAMESPACE


@rule(
    RuleMeta(
        id="RG-SRC-001",
        title="Trusted image sources",
        rationale=(
            "Anyone can publish to Docker Hub under any free namespace, and typo-squatted or "
            "abandoned images carrying miners and backdoors are common. Production should pull "
            "Docker Hub images only from official images (`library/`) or namespaces the "
            "organisation has reviewed and allow-listed (better still, through its own mirror)."
        ),
        seed_section="Pro tips",
        severity=Severity.MEDIUM,
        kinds=frozenset({IMAGE_REFS_KIND, DOCKERHUB_KIND}),
        soc2=("CC6.8",),
        nist_800_53=("CM-7(5)", "SR-3"),
        remediation={
            IMAGE_REFS_KIND: Remediation(
                cli=(
                    "replace it with the official image, or mirror a reviewed copy into your registry (`skopeo copy "
                    "docker://docker.io/<ns>/<image>:<tag> docker://<your-registry>/<image>:<tag>`) and reference "
                    "that; or add the namespace to `allowed_namespaces` after review"
                ),
                component=(
                    "EcrRegistryArgs(pull_through_caches=(PullThroughCache(ecr_repository_prefix='docker-hub', "
                    "upstream_registry_url='registry-1.docker.io'),))"
                ),
            ),
            "dockerhub": Remediation(
                cli=(
                    "turn on restricted images: `curl -X PUT https://hub.docker.com/v2/orgs/<org>/settings -H "
                    "'Authorization: Bearer <jwt from POST /v2/auth/token>' -H 'Content-Type: application/json' "
                    '-d \'{"restricted_images": {"enabled": true, "allow_official_images": true, '
                    '"allow_verified_publishers": true}}\'`'
                ),
            ),
        },
        prod_only=True,
    )
)
def trusted_sources(ctx: RuleContext, facts: FactView) -> Iterator[Verdict]:
    """References in files, or, for a registry that can restrict what its
    members pull (SOURCE_RESTRICTION), that setting."""
    if not facts.has(IMAGE_REFERENCES):
        yield _judge_restriction(ctx, facts)
        return
    refs, preface = prod_reference_scope(ctx, facts)
    yield from preface
    if not refs:
        return
    hub = [r for r in refs if r.registry in DOCKER_HUB_HOSTS]
    if not hub:
        yield not_applicable(
            registry_resource(ctx, facts),
            "no production references to Docker Hub",
            references=len(refs),
            **facts.source(IMAGE_REFERENCES),
        )
    for ref in hub:
        ns = namespace_of(ref)
        ev = reference_evidence(facts, ref)
        if ns == OFFICIAL_NAMESPACE:
            yield passed(reference_resource(ref), "Docker Hub official image", **ev)
        elif ns in ctx.allowed_namespaces:
            yield passed(reference_resource(ref), f"namespace {ns!r} is allow-listed", **ev)
        else:
            yield failed(
                reference_resource(ref),
                f"Docker Hub namespace {ns!r} is neither official nor allow-listed",
                namespace=ns,
                **ev,
            )


def _judge_restriction(ctx: RuleContext, facts: FactView) -> Verdict:
    """The organization lets its members pull official / verified publisher
    images (or only its own) instead of any public image."""
    restriction: SourceRestrictionFacts = facts.require(SOURCE_RESTRICTION)
    resource = registry_resource(ctx, facts)
    ev = evidence(
        facts,
        SOURCE_RESTRICTION,
        enabled=restriction.enabled,
        allow_official_images=restriction.allow_official_images,
        allow_verified_publishers=restriction.allow_verified_publishers,
    )
    if not target_is_prod(ctx, facts):
        return not_applicable(resource, f"not a production registry in {ctx.environment}", **ev)
    if not restriction.enabled:
        return failed(resource, "members may pull any public image (restricted images is off)", **ev)
    allowed = [
        name
        for name, on in (
            ("official images", restriction.allow_official_images),
            ("verified publishers", restriction.allow_verified_publishers),
        )
        if on
    ]
    return passed(resource, f"members may pull only {' and '.join([*allowed, 'the organization’s own images'])}", **ev)


def split_host_port(registry: str) -> tuple[str, str | None]:
    """`10.0.0.5:5000` -> ("10.0.0.5", "5000"); `[::1]:5000` -> ("::1", "5000")."""
    if registry.startswith("["):
        host, _, rest = registry[1:].partition("]")
        return host, rest[1:] if rest.startswith(":") else None
    if registry.count(":") == 1:
        host, port = registry.split(":")
        return host, port
    return registry, None


def is_allow_listed(registry: str, allowed: tuple[str, ...]) -> bool:
    """An entry `host:port` allows exactly that; a bare `host` allows any port."""
    host, _ = split_host_port(registry)
    return registry in allowed or host in allowed


def insecure_reason(ref: ImageReference) -> str | None:
    if ref.explicit_scheme == "http":
        return "plain-HTTP registry"
    if is_ip_registry(ref.registry):
        return "registry addressed by IP (no certificate name to verify)"
    return None


@rule(
    RuleMeta(
        id="RG-SRC-002",
        title="No insecure registries referenced",
        rationale=(
            "A reference to an `http://` registry or a bare `IP:port` only works when the "
            "node's runtime lists it under `insecure-registries`, which turns off TLS "
            "verification for it: whoever can reach the network path can serve any image "
            "under that name. Such references must be replaced or explicitly allow-listed."
        ),
        seed_section="TLS",
        severity=Severity.HIGH,
        kinds=frozenset({IMAGE_REFS_KIND}),
        soc2=("CC6.7",),
        nist_800_53=("SC-8", "CM-7"),
        remediation={
            IMAGE_REFS_KIND: Remediation(
                cli=(
                    "serve the registry under a DNS name with a trusted certificate, update the reference, and "
                    "remove the registry from `insecure-registries` in /etc/docker/daemon.json"
                ),
            ),
        },
    )
)
def no_insecure_registries(ctx: RuleContext, facts: FactView) -> Iterator[Verdict]:
    found: ImageReferencesFacts = facts.require(IMAGE_REFERENCES)
    errors = reference_errors(facts, found)
    yield from errors
    if not found.references and not errors:
        yield not_applicable(
            registry_resource(ctx, facts),
            "no image references found",
            files_scanned=found.files_scanned,
            **facts.source(IMAGE_REFERENCES),
        )
    for ref in (r for r in found.references if r.error is None):
        ev = reference_evidence(facts, ref)
        reason = insecure_reason(ref)
        if reason is None:
            yield passed(reference_resource(ref), f"{ref.registry} is a named registry", **ev)
        elif is_allow_listed(ref.registry, ctx.allowed_registries):
            yield passed(reference_resource(ref), f"{reason}, but allow-listed", **ev)
        else:
            yield failed(reference_resource(ref), f"{reason}: {ref.registry}", **ev)
