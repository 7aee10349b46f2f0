"""ACR's policy-pack declarer: what a stack *declares* for Azure Container Registry,
as the same `TargetFacts` a live ACR audit produces, so the same rules judge both.

The declared `azure-native:containerregistry:Registry` inputs are the ARM
registry properties under their REST names (`adminUserEnabled`,
`networkRuleSet`, `policies`, `encryption`, ...), so they are put in the ARM
shape and normalized by the pure helpers the collector itself uses
(`audits.collectors.acr_facts`): a declared `publicNetworkAccess: Enabled` and
an observed one become the very same fact. Sub-resources are linked to their
registry through the regguard component that parents them: replications,
tokens (password expiry), scope maps, the private endpoint (declared by the
same component, so approved) and the diagnostic setting (log categories and
workspace).

Repositories are not declared (ACR creates them on push), so each registry
stands in as one repository `<registry>/*` carrying the registry-wide anonymous
pull setting. Facts declared state cannot show (endpoint, tags, signatures,
scanning, pull counts) are `not_observable`: even a rule outside
`DECLARED_STATE_RULES` becomes `manual`, never a spurious `error`. A value only
known after apply makes the fact that needs it `not_observable` too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from audits.collectors.acr_facts import (
    RegistryView,
    encryption_setting,
    registry_facts,
    retention_summary,
)
from audits.model import (
    ANONYMOUS_ACCESS,
    CONTENT_TRUST,
    ENCRYPTION,
    ENDPOINT,
    PLAIN_HTTP,
    PULL_COUNTS,
    REPOSITORIES,
    RETENTION,
    SCANNING,
    TAG_IMMUTABILITY,
    TLS,
    TOKEN_REALM_ORIGIN,
    EncryptionFacts,
    Fact,
    Finding,
    RepositoryFacts,
    RetentionFacts,
    TargetFacts,
    utcnow,
)
from audits.rules.registry import RuleContext
from audits.vocabulary import DEFAULT_FRAMEWORKS
from policy.declared import (
    ENVIRONMENT_TAG,
    OPT_OUT_PREFIX,
    DeclaredResource,
    Location,
    UnknownAtPreview,
    is_unknown,
    known,
    stack_label,
)

KIND = "acr"
REGISTRY = "azure-native:containerregistry:Registry"
REPLICATION_TYPE = "azure-native:containerregistry:Replication"
TOKEN = "azure-native:containerregistry:Token"
SCOPE_MAP = "azure-native:containerregistry:ScopeMap"
PRIVATE_ENDPOINT = "azure-native:network:PrivateEndpoint"
DIAGNOSTIC_SETTING = "azure-native:monitor:DiagnosticSetting"
TYPE_PREFIX = "azure-native:containerregistry:"  # the resource types this declarer reads (unmanaged ones are reported)
MANAGED_REMEDIATION = (
    "Declare the registry with components.acr.AcrRegistry instead of raw azure-native containerregistry resources."
)

# The rules whose facts declared state shows. Left out on purpose: RG-TLS-*, RG-AUTH-002 (Azure's
# endpoint), RG-TAG-* and RG-SIGN-* (image content), RG-SCAN-* (Defender for Containers is a
# subscription plan), RG-MON-002 (pull counts), RG-CRED-002 (rotation happens after apply).
DECLARED_STATE_RULES: tuple[str, ...] = (
    "RG-AUTH-001",
    "RG-AUTH-003",
    "RG-CRED-001",
    "RG-ENC-001",
    "RG-MON-001",
    "RG-NET-001",
    "RG-REP-001",
    "RG-RET-001",
)
# Baseline fields whose explicit `regguard:opt-out:<field>` tag covers a failure of the rule.
OPT_OUT_FIELDS: Mapping[str, tuple[str, ...]] = {
    "RG-ENC-001": ("customer_managed_key",),
    "RG-REP-001": ("replicate_to",),
    "RG-NET-001": ("public_network_access",),
}
_NOT_DECLARED = "cannot be seen in declared state (Pulumi resource inputs); the live audit checks it"
_AFTER_APPLY = "not known until apply (pulumi preview); judged again at `pulumi up`"
_REGISTRY_KEYS = (
    "adminUserEnabled",
    "anonymousPullEnabled",
    "publicNetworkAccess",
    "networkRuleSet",
    "networkRuleBypassOptions",
    "zoneRedundancy",
    "policies",
    "encryption",
)


@dataclass(frozen=True)
class DeclaredStack:
    """One stack's declared ACR state as facts, and the way back from a finding to its registry."""

    facts: TargetFacts
    context: RuleContext
    registries: Mapping[str, DeclaredResource]  # registry name -> its Registry resource
    environment: str

    def locate(self, finding: Finding) -> list[Location]:
        """A `<registry>/*` or token verdict lands on that registry; a registry-wide one on every registry."""
        owner = finding.resource.split("/", 1)[0]
        targets = [self.registries[owner]] if owner in self.registries else list(self.registries.values())
        return [Location(r.urn, self.environment, _opted_out(r, finding.rule)) for r in targets]


def _opted_out(resource: DeclaredResource, rule_id: str) -> bool:
    return any(f"{OPT_OUT_PREFIX}{field}" in resource.tags for field in OPT_OUT_FIELDS.get(rule_id, ()))


def declare(
    resources: Sequence[DeclaredResource],
    *,
    frameworks: tuple[str, ...] = DEFAULT_FRAMEWORKS,
    at: datetime | None = None,
) -> DeclaredStack | None:
    """The stack's ACR facts, or None when it declares no registry (then no ACR rule applies)."""
    at = at or utcnow()
    declared = [r for r in resources if r.type == REGISTRY]
    if not declared:
        return None
    environment = _environment(declared)
    try:
        views = [_view(r, resources) for r in declared]
    except UnknownAtPreview as exc:
        return _after_apply(declared, environment, frameworks, resources, at, str(exc))
    facts: dict[str, Fact[Any]] = {**_not_declared(at), **registry_facts(views)}
    facts.update(_registry_wide(views, declared, at))
    return _stack(facts, declared, environment, frameworks, resources, at)


def _stack(
    facts: dict[str, Fact[Any]],
    declared: Sequence[DeclaredResource],
    environment: str,
    frameworks: tuple[str, ...],
    resources: Sequence[DeclaredResource],
    at: datetime,
) -> DeclaredStack:
    target = stack_label(resources)
    context = RuleContext(
        environment=environment or "unknown", frameworks=frameworks, target_name=target, target_kind=KIND, now=at
    )
    return DeclaredStack(
        facts=TargetFacts(target=target, kind=KIND, facts=facts, started_at=at, finished_at=at),
        context=context,
        registries={_registry_name(r): r for r in declared},
        environment=environment,
    )


def _after_apply(
    declared: Sequence[DeclaredResource],
    environment: str,
    frameworks: tuple[str, ...],
    resources: Sequence[DeclaredResource],
    at: datetime,
    where: str,
) -> DeclaredStack:
    unknown: Fact[Any] = Fact.not_observable(f"{where} {_AFTER_APPLY}", source="declared")
    facts = {**_not_declared(at), **{name: unknown for name in _DECLARED_FACTS}}
    return _stack(facts, declared, environment, frameworks, resources, at)


_DECLARED_FACTS = (
    "admin_account",
    "network_exposure",
    "replication",
    "logging",
    "credentials",
    REPOSITORIES,
    RETENTION,
    ENCRYPTION,
)


def _not_declared(at: datetime) -> dict[str, Fact[Any]]:
    names = (ENDPOINT, TLS, PLAIN_HTTP, TOKEN_REALM_ORIGIN, SCANNING, TAG_IMMUTABILITY, CONTENT_TRUST, PULL_COUNTS)
    facts: dict[str, Fact[Any]] = {n: Fact.not_observable(_NOT_DECLARED, source="declared", at=at) for n in names}
    facts[ANONYMOUS_ACCESS] = Fact.managed("Azure's endpoint; anonymous pull is a registry setting", "declared", at)
    return facts


def _registry_wide(
    views: Sequence[RegistryView], declared: Sequence[DeclaredResource], at: datetime
) -> dict[str, Fact[Any]]:
    """Anonymous pull, retention and encryption on the `<registry>/*` stand-in repository."""
    source = f"declared {REGISTRY}"
    repos = tuple(
        RepositoryFacts(
            name=f"{v.name}/*",
            anonymous_pull=v.properties.get("anonymousPullEnabled") is True,
            declared_public=f"{OPT_OUT_PREFIX}public" in r.tags,
            source=source,
        )
        for v, r in zip(views, declared, strict=True)
    )
    summaries = {f"{v.name}/*": retention_summary(v) for v in views}
    retention = RetentionFacts(
        registry_wide=None,
        by_repository={k: s for k, s in summaries.items() if s},
        uncovered_repositories=tuple(sorted(k for k, s in summaries.items() if not s)),
    )
    encryption = EncryptionFacts(by_repository={f"{v.name}/*": encryption_setting(v) for v in views})
    return {
        REPOSITORIES: Fact.ok(repos, source, at),
        RETENTION: Fact.ok(retention, source, at),
        ENCRYPTION: Fact.ok(encryption, source, at),
    }


def _view(registry: DeclaredResource, resources: Sequence[DeclaredResource]) -> RegistryView:
    props = registry.props
    properties = {key: known(props[key], key) for key in _REGISTRY_KEYS if key in props}
    siblings = [r for r in resources if r.parent_urn == registry.parent_urn and r.urn != registry.urn]
    endpoints = [r for r in siblings if r.type == PRIVATE_ENDPOINT]
    properties["privateEndpointConnections"] = [
        {"name": r.name, "properties": {"privateLinkServiceConnectionState": {"status": "Approved"}}} for r in endpoints
    ]
    tokens = [
        {
            "name": r.props.get("tokenName", r.name),
            "properties": {
                "status": r.props.get("status", "enabled"),
                "credentials": known(r.props.get("credentials", {}), f"{r.name}.credentials"),
            },
        }
        for r in siblings
        if r.type == TOKEN
    ]
    diagnostics = [
        {
            "name": r.props.get("name", r.name),
            "properties": {
                "workspaceId": known(r.props.get("workspaceId"), f"{r.name}.workspaceId"),
                "logs": known(r.props.get("logs", []), f"{r.name}.logs"),
            },
        }
        for r in siblings
        if r.type == DIAGNOSTIC_SETTING
    ]
    return RegistryView(
        resource={"name": _registry_name(registry), "location": props.get("location", ""), "properties": properties},
        replications=[{"location": r.props.get("location", "")} for r in siblings if r.type == REPLICATION_TYPE],
        tokens=tokens,
        scope_maps=[],
        diagnostic_settings=diagnostics,
    )


def _registry_name(resource: DeclaredResource) -> str:
    name = resource.props.get("registryName")
    return name if isinstance(name, str) and name and not is_unknown(name) else resource.name


def _environment(declared: Sequence[DeclaredResource]) -> str:
    envs = {r.tags[ENVIRONMENT_TAG] for r in declared if ENVIRONMENT_TAG in r.tags}
    if "prod" in envs or "production" in envs:
        return "prod"
    return envs.pop() if len(envs) == 1 else ""
