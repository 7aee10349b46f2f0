"""ACR answers (ARM JSON as the REST API names it, data-plane tag lists) -> facts.

Pure: no SDK import, no I/O, so the policy pack can read a declared registry
with the same normalization the live audit uses. Every function takes the wire
shape of the 2025-11-01 ARM API (`properties.adminUserEnabled`, ...) or of the
2021-07-01 data plane (`/acr/v1/{repo}/_tags`), never an SDK model.

Judgement stays out: values are recorded as observed (`publicNetworkAccess`,
`networkRuleSet.defaultAction`, the bypass option) and the rules decide; the
only derived booleans are the ones the shared fact model asks for
(`publicly_reachable`, `customer_managed`, `immutable`), each with the raw
values in `detail`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from audits.collectors import cosign
from audits.collectors.base import parse_time
from audits.model import (
    ADMIN_ACCOUNT,
    CREDENTIALS,
    LOGGING,
    NETWORK_EXPOSURE,
    REPLICATION,
    AdminAccountFacts,
    CredentialFacts,
    EncryptionSetting,
    Fact,
    ImmutabilitySetting,
    LoggingFacts,
    NetworkExposureFacts,
    ReplicationFacts,
    RepositoryFacts,
    SignatureFacts,
    TagFacts,
)
from audits.vocabulary import cosign_artifact, is_artifact_tag

# The two resource log categories an audit trail of a registry needs (who logged in, what was pushed/pulled/deleted).
REQUIRED_LOG_CATEGORIES = ("ContainerRegistryLoginEvents", "ContainerRegistryRepositoryEvents")
# Category groups that include both (Azure Monitor's `allLogs` and `audit` groups).
COVERING_CATEGORY_GROUPS = frozenset({"allLogs", "audit"})
# Scope-map actions that let a token push or delete.
WRITE_ACTIONS = ("/content/write", "/content/delete", "/metadata/write")
GRANT_READER = "grant Reader on the subscription or resource group to read registry settings"
GRANT_MONITORING_READER = "grant Monitoring Reader on the registry to read its diagnostic settings"
GRANT_ACR_PULL = "grant AcrPull on the registry to list its repositories and tags"


@dataclass(frozen=True)
class RegistryView:
    """One registry as ARM describes it, with its sub-resources (each None when it
    could not be read) and what its data plane showed."""

    resource: Mapping[str, Any]
    replications: Sequence[Mapping[str, Any]] | None = None
    tokens: Sequence[Mapping[str, Any]] | None = None
    scope_maps: Sequence[Mapping[str, Any]] | None = None
    diagnostic_settings: Sequence[Mapping[str, Any]] | None = None
    errors: Mapping[str, str] = field(default_factory=dict)  # fact name -> why it could not be read

    @property
    def name(self) -> str:
        return str(self.resource.get("name", ""))

    @property
    def properties(self) -> Mapping[str, Any]:
        props = self.resource.get("properties")
        return props if isinstance(props, Mapping) else {}

    @property
    def id(self) -> str:
        return str(self.resource.get("id", ""))

    @property
    def login_server(self) -> str:
        return str(self.properties.get("loginServer", ""))


def resource_group_of(resource_id: str) -> str:
    """`/subscriptions/s/resourceGroups/<rg>/providers/...` -> `<rg>` ("" if absent)."""
    parts = resource_id.split("/")
    for i, part in enumerate(parts[:-1]):
        if part.lower() == "resourcegroups":
            return parts[i + 1]
    return ""


def _mapping(node: Any, key: str) -> Mapping[str, Any]:
    """`node[key]` when both are mappings, else empty: registry answers are untrusted."""
    value = node.get(key) if isinstance(node, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def _status(node: Any) -> str:
    return str(node.get("status", "")) if isinstance(node, Mapping) else ""


# --------------------------------------------------------------------------
# Registry-level settings
# --------------------------------------------------------------------------


def admin_account(registries: Sequence[RegistryView]) -> AdminAccountFacts:
    enabled = [r.name for r in registries if r.properties.get("adminUserEnabled") is True]
    detail = f"admin user enabled on {', '.join(enabled)}" if enabled else "adminUserEnabled false on every registry"
    return AdminAccountFacts(shared_admin_enabled=bool(enabled), detail=detail)


def network_exposure(registry: RegistryView) -> NetworkExposureFacts:
    """Reachable from the internet when public network access is on and the network
    rules allow by default, or when trusted Azure services (of any tenant) bypass them."""
    props = registry.properties
    public = props.get("publicNetworkAccess", "Enabled")
    rules = _mapping(props, "networkRuleSet")
    default_action = str(rules.get("defaultAction", "Allow"))
    ip_rules = [str(r.get("value", "")) for r in rules.get("ipRules", []) or [] if isinstance(r, Mapping)]
    bypass = str(props.get("networkRuleBypassOptions", "AzureServices"))
    endpoints = private_endpoints(registry)
    reachable = (public == "Enabled" and default_action == "Allow") or bypass == "AzureServices"
    sku = _mapping(registry.resource, "sku").get("name", "?")
    detail = (
        f"{registry.name} ({sku}): publicNetworkAccess={public}, defaultAction={default_action}, "
        f"ipRules={len(ip_rules)}, networkRuleBypassOptions={bypass}, private endpoints approved={len(endpoints)}; "
        f"{policy_summary(registry)}"
    )
    return NetworkExposureFacts(publicly_reachable=reachable, detail=detail)


def private_endpoints(registry: RegistryView) -> list[str]:
    """Names of the registry's private endpoint connections that are Approved."""
    out = []
    for conn in registry.properties.get("privateEndpointConnections", []) or []:
        if not isinstance(conn, Mapping):
            continue
        state = _mapping(_mapping(conn, "properties"), "privateLinkServiceConnectionState")
        if _status(state) == "Approved":
            out.append(str(conn.get("name", "")))
    return out


def combined_exposure(registries: Sequence[RegistryView]) -> NetworkExposureFacts:
    parts = [network_exposure(r) for r in registries]
    if not parts:
        return NetworkExposureFacts(publicly_reachable=False, detail="no registry selected")
    return NetworkExposureFacts(any(p.publicly_reachable for p in parts), "; ".join(p.detail for p in parts))


def encryption_setting(registry: RegistryView) -> EncryptionSetting:
    enc = _mapping(registry.properties, "encryption")
    vault = _mapping(enc, "keyVaultProperties")
    customer = _status(enc) == "enabled" and bool(vault.get("keyIdentifier"))
    if not customer:
        return EncryptionSetting(False, None, "Microsoft-managed key (encryption.status disabled)")
    rotation = "key rotation on" if vault.get("keyRotationEnabled") else "key rotation off"
    identity = vault.get("identity") or "no identity"
    return EncryptionSetting(True, str(vault.get("keyIdentifier")), f"customer-managed key, {rotation}, {identity}")


def retention_summary(registry: RegistryView) -> str | None:
    """The untagged-manifest retention policy, None when it is off (ACR's only
    retention mechanism; tagged images are kept until deleted, e.g. by `acr purge`)."""
    policy = _mapping(_mapping(registry.properties, "policies"), "retentionPolicy")
    if _status(policy) != "enabled":
        return None
    return f"untagged manifests deleted after {policy.get('days', 7)} days"


def policy_summary(registry: RegistryView) -> str:
    """Export, quarantine, ARM-audience tokens and content trust, as observed."""
    policies = _mapping(registry.properties, "policies")
    names = ("exportPolicy", "quarantinePolicy", "azureADAuthenticationAsArmPolicy", "trustPolicy")
    return ", ".join(f"{n}={_status(policies.get(n)) or 'unset'}" for n in names)


def replication_facts(registry: RegistryView) -> ReplicationFacts:
    home = str(registry.resource.get("location", "")).lower()
    locations = sorted({str(r.get("location", "")).lower() for r in registry.replications or []} - {home, ""})
    zones = registry.properties.get("zoneRedundancy", "Disabled")
    detail = f"{registry.name}: home {home or '?'}, zoneRedundancy={zones}"
    return ReplicationFacts(enabled=bool(locations), destinations=tuple(locations), detail=detail)


def combined_replication(registries: Sequence[RegistryView]) -> ReplicationFacts:
    parts = [replication_facts(r) for r in registries]
    enabled = bool(parts) and all(p.enabled for p in parts)
    destinations = tuple(d for p in parts for d in p.destinations)
    unreplicated = [r.name for r, p in zip(registries, parts, strict=True) if not p.enabled]
    detail = "; ".join(p.detail for p in parts)
    if unreplicated:
        detail = f"(no geo-replication on {', '.join(unreplicated)}); {detail}"
    return ReplicationFacts(enabled=enabled, destinations=destinations, detail=detail)


def logging_facts(registry: RegistryView) -> LoggingFacts:
    """On when one diagnostic setting sends both registry log categories somewhere."""
    for setting in registry.diagnostic_settings or []:
        props = _mapping(setting, "properties")
        destination = props.get("workspaceId") or props.get("storageAccountId") or props.get("eventHubName")
        enabled = {
            str(log.get("category") or log.get("categoryGroup"))
            for log in props.get("logs", []) or []
            if isinstance(log, Mapping) and log.get("enabled")
        }
        covered = bool(enabled & COVERING_CATEGORY_GROUPS) or set(REQUIRED_LOG_CATEGORIES) <= enabled
        if destination and covered:
            detail = f"{registry.name}: diagnostic setting {setting.get('name', '')} sends {', '.join(sorted(enabled))}"
            return LoggingFacts(True, str(destination), detail)
    found = len(registry.diagnostic_settings or [])
    needed = " and ".join(REQUIRED_LOG_CATEGORIES)
    return LoggingFacts(False, None, f"{registry.name}: {found} diagnostic setting(s), none sends {needed}")


def combined_logging(registries: Sequence[RegistryView]) -> LoggingFacts:
    parts = [logging_facts(r) for r in registries]
    if not parts:
        return LoggingFacts(False, None, "no registry selected")
    enabled = all(p.enabled for p in parts)
    destinations = sorted({p.destination for p in parts if p.destination})
    return LoggingFacts(enabled, ", ".join(destinations) or None, "; ".join(p.detail for p in parts))


# --------------------------------------------------------------------------
# Tokens and scope maps
# --------------------------------------------------------------------------


def token_credentials(registry: RegistryView) -> list[CredentialFacts]:
    """One credential per password of every enabled token (a token without
    passwords cannot log in and is not a credential yet)."""
    scope_actions = {
        str(m.get("id", "")).lower(): list(_mapping(m, "properties").get("actions", []) or [])
        for m in registry.scope_maps or []
    }
    out = []
    for token in registry.tokens or []:
        props = _mapping(token, "properties")
        if props.get("status") == "disabled":
            continue
        scope_id = str(props.get("scopeMapId", ""))
        actions = scope_actions.get(scope_id.lower(), [])
        can_push = any(str(a).endswith(suffix) for a in actions for suffix in WRITE_ACTIONS)
        passwords = _mapping(props, "credentials").get("passwords", []) or []
        for password in passwords:
            out.append(
                CredentialFacts(
                    id=f"{registry.name}/tokens/{token.get('name', '')}/{password.get('name', 'password')}",
                    kind="token",
                    created_at=parse_time(password.get("creationTime")) or parse_time(props.get("creationDate")),
                    expires_at=parse_time(password.get("expiry")),
                    can_push=can_push,
                    detail=f"scope map {scope_id.rsplit('/', 1)[-1] or '?'}: {', '.join(actions[:5])}",
                )
            )
    return out


# --------------------------------------------------------------------------
# Repositories (data plane)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class RepositoryListing:
    """What the data plane showed for one repository: its tags (`_tags` entries), or why not."""

    registry: str
    name: str
    tags: Sequence[Mapping[str, Any]] = ()
    error: str | None = None
    verifications: Mapping[str, Sequence[cosign.Verification]] = field(default_factory=dict)  # by `.sig` tag

    @property
    def qualified(self) -> str:
        return f"{self.registry}/{self.name}"


def _signatures_by_subject(names: Iterable[str]) -> dict[str, list[SignatureFacts]]:
    out: dict[str, list[SignatureFacts]] = {}
    for name in names:
        artifact = cosign_artifact(name)
        if artifact and artifact[1] == "sig":
            out.setdefault(artifact[0], []).append(SignatureFacts("cosign", "tag", name))
    return out


def repository_facts(
    listing: RepositoryListing,
    *,
    anonymous_pull: bool,
    declared_patterns: Sequence[str],
    source: str,
    unverified_reason: str | None = None,
) -> RepositoryFacts:
    names = [str(t.get("name", "")) for t in listing.tags]
    signatures = {
        subject: _verified(found, listing.verifications, unverified_reason)
        for subject, found in _signatures_by_subject(names).items()
    }
    tags = tuple(
        TagFacts(
            name=str(t.get("name", "")),
            digest=str(t.get("digest")) if t.get("digest") else None,
            media_type=None,
            pushed_at=parse_time(t.get("lastUpdateTime")) or parse_time(t.get("createdTime")),
            signatures=signatures.get(str(t.get("digest")), ()),
        )
        for t in listing.tags
    )
    declared = any(fnmatch.fnmatchcase(listing.qualified, p) for p in declared_patterns)
    return RepositoryFacts(
        name=listing.qualified,
        tags=tags,
        anonymous_pull=anonymous_pull,
        declared_public=declared,
        error=listing.error,
        source=source,
    )


def _verified(
    found: Sequence[SignatureFacts],
    checks: Mapping[str, Sequence[cosign.Verification]],
    unverified_reason: str | None,
) -> tuple[SignatureFacts, ...]:
    """One SignatureFacts per signature layer that was checked; a signature manifest
    with no signature layer is no signature."""
    out: list[SignatureFacts] = []
    for sig in found:
        if sig.reference not in checks:
            out.append(replace(sig, verify_error=unverified_reason))
            continue
        out.extend(
            replace(sig, verified=c.verified, verified_by=c.verified_by, verify_error=c.error)
            for c in checks[sig.reference]
        )
    return tuple(out)


def tag_locks(listing: RepositoryListing) -> ImmutabilitySetting:
    """ACR has no immutability setting: a tag is immutable when it is locked
    (`writeEnabled: false`). Immutable means every image tag is locked;
    signature artifacts are left out (they are written after the image)."""
    image = [t for t in listing.tags if not is_artifact_tag(str(t.get("name", "")))]
    unlocked = [str(t.get("name", "")) for t in image if _mapping(t, "changeableAttributes").get("writeEnabled", True)]
    undeletable = sum(1 for t in image if _mapping(t, "changeableAttributes").get("deleteEnabled") is False)
    detail = f"{len(image) - len(unlocked)}/{len(image)} tags writeEnabled=false, {undeletable} deleteEnabled=false"
    if unlocked:
        detail += f"; writable: {', '.join(unlocked[:5])}"
    return ImmutabilitySetting(immutable=not unlocked, detail=detail)


# --------------------------------------------------------------------------
# Registry-level facts of the selected registries
# --------------------------------------------------------------------------


def registry_facts(views: Sequence[RegistryView]) -> dict[str, Fact[Any]]:
    """The registry-level facts of the selected registries (each aggregated: one
    weak registry makes the target's fact weak, and the detail names it)."""
    source = "arm:Registries_List"
    facts: dict[str, Fact[Any]] = {
        ADMIN_ACCOUNT: Fact.ok(admin_account(views), source=source),
        NETWORK_EXPOSURE: Fact.ok(combined_exposure(views), source=source),
    }
    facts[REPLICATION] = _sub_fact(views, "replications", "arm:Replications_List", GRANT_READER) or Fact.ok(
        combined_replication(views), source="arm:Replications_List"
    )
    facts[LOGGING] = _sub_fact(
        views, "diagnostic_settings", "arm:DiagnosticSettings_List", GRANT_MONITORING_READER
    ) or Fact.ok(combined_logging(views), source="arm:DiagnosticSettings_List")
    credentials = _sub_fact(views, "tokens", "arm:Tokens_List", GRANT_READER) or _sub_fact(
        views, "scope_maps", "arm:ScopeMaps_List", GRANT_READER
    )
    facts[CREDENTIALS] = credentials or Fact.ok(
        tuple(c for v in views for c in token_credentials(v)), source="arm:Tokens_List"
    )
    return facts


def _sub_fact(views: Sequence[RegistryView], key: str, source: str, grant: str) -> Fact[Any] | None:
    """None when every registry's `key` sub-resource was read; else the fact that says why not."""
    problems = [v.errors[key] for v in views if key in v.errors]
    if not problems:
        return None
    detail = "; ".join(p.removeprefix("forbidden: ") for p in problems[:3])
    if all(p.startswith("forbidden: ") for p in problems):
        return Fact.not_observable(f"{grant} ({detail})", source=source)
    return Fact.error(detail, source=source)
