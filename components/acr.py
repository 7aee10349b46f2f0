"""Azure Container Registry components: the shared Baseline as `azure-native` resources.

`AcrRegistry` declares one hardened registry, stricter than the Azure Verified
Module's defaults (which leave public network access and export on):

* Premium SKU (private endpoints, geo-replication, customer-managed keys and the
  retention policy all need it); admin user off; anonymous pull off unless the
  baseline says the registry is public;
* public network access disabled with a private endpoint — or, when public access
  is kept, network rules that deny by default and allow listed IP ranges only;
  `networkRuleBypassOptions: None` (trusted Azure services of *any* tenant would
  bypass the rules otherwise); export policy disabled;
* retention of untagged manifests (`expire_untagged_days`), soft delete; zone
  redundancy and a replication per `replicate_to` region in prod;
* a customer-managed key (Key Vault key + user-assigned identity) when the
  baseline asks for one — ACR can only get it at creation, so it is refused
  without one rather than added later;
* one scope map + token per CI pipeline, each token password with an expiry
  (a token without one is refused: it would never expire);
* a diagnostic setting sending ContainerRegistryLoginEvents and
  ContainerRegistryRepositoryEvents to a Log Analytics workspace (required in prod).

Signing: Docker Content Trust is retired on ACR (no new registries after
2026-05-31), so no `trustPolicy` is declared. Sign in CI with Notation (Azure Key
Vault plugin) or cosign — both store signatures as OCI artifacts in the registry —
and enforce at admission (Ratify, Kyverno); `regguard audit` finds them through the
registry's own API.

It is also ACR's provisioner in the kind table: `parse_registry` reads a `kind: acr`
entry of `regguard:registries`; its spec declares the component and the `auditConfig` target.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pulumi
import pulumi_azure_native as azure

from audits.vocabulary import is_production_environment
from components import stack_config as sc
from components.baseline import Baseline, tag_safe
from components.stack_config import StackConfigError, StackContext

LOG_CATEGORIES = ("ContainerRegistryLoginEvents", "ContainerRegistryRepositoryEvents")
MAX_TOKEN_LIFETIME_DAYS = 90  # the audit's default credential_max_age_days
_REGISTRY_NAME_RE = re.compile(r"^[A-Za-z0-9]{5,50}$")
_REPO_RE = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")


class AcrConfigError(ValueError):
    """An ACR argument that would make the registry weaker than its baseline."""


@dataclass(frozen=True)
class AcrTokenArgs:
    """A scope-map token for one pipeline: `push` grants content/write (and read);
    `password_expiry` (ISO 8601, UTC) is required and at most 90 days away."""

    name: str
    repositories: tuple[str, ...]
    password_expiry: str
    push: bool = True

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9-]{5,50}", self.name):
            raise AcrConfigError(f"token {self.name!r}: 5-50 letters, digits or '-'")
        if not self.repositories or not all(_REPO_RE.match(r) for r in self.repositories):
            raise AcrConfigError(f"token {self.name}: repositories must be repository names")
        expiry = _parse_expiry(self.password_expiry, self.name)
        if expiry - datetime.now(UTC) > timedelta(days=MAX_TOKEN_LIFETIME_DAYS):
            raise AcrConfigError(
                f"token {self.name}: password_expiry is more than {MAX_TOKEN_LIFETIME_DAYS} days away; rotate sooner"
            )

    def actions(self) -> list[str]:
        verbs = ("content/read", "metadata/read") + (("content/write",) if self.push else ())
        return [f"repositories/{repo}/{verb}" for repo in self.repositories for verb in verbs]


def _parse_expiry(text: str, token: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise AcrConfigError(f"token {token}: password_expiry must be an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise AcrConfigError(f"token {token}: password_expiry needs a time zone (e.g. ...Z)")
    return parsed


@dataclass(frozen=True)
class AcrRegistryArgs:
    """Everything one registry is declared with; defaults are the secure choice."""

    name: str
    resource_group_name: str
    location: str
    environment: str
    baseline: Baseline
    sku: str = "Premium"
    admin_user_enabled: bool = False
    anonymous_pull_enabled: bool = False
    public_network_access: bool = False
    allowed_ip_ranges: tuple[str, ...] = ()
    trusted_services_bypass: bool = False
    private_endpoint_subnet_id: str | None = None
    export_enabled: bool = False
    soft_delete_days: int = 7
    zone_redundancy: bool | None = None  # None: on in prod
    key_vault_key_id: str | None = None
    identity_id: str | None = None  # user-assigned identity resource id (reads the key)
    identity_client_id: str | None = None
    log_analytics_workspace_id: str | None = None
    tokens: tuple[AcrTokenArgs, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for flag in (
            "admin_user_enabled",
            "anonymous_pull_enabled",
            "public_network_access",
            "trusted_services_bypass",
            "export_enabled",
        ):
            if not isinstance(getattr(self, flag), bool):
                raise AcrConfigError(f"{flag}: expected true or false")
        if not isinstance(self.soft_delete_days, int) or not 1 <= self.soft_delete_days <= 90:
            raise AcrConfigError("soft_delete_days: expected 1 to 90")
        if not _REGISTRY_NAME_RE.match(self.name):
            raise AcrConfigError(f"registry name {self.name!r}: 5-50 letters and digits")
        if self.sku != "Premium" and is_production_environment(self.environment):
            raise AcrConfigError("prod registries are Premium (private endpoints, geo-replication, CMK, retention)")
        if self.admin_user_enabled and is_production_environment(self.environment):
            raise AcrConfigError("admin_user_enabled: never in prod; use Entra identities or scope-map tokens")
        if self.anonymous_pull_enabled and not self.baseline.public:
            raise AcrConfigError("anonymous_pull_enabled needs baseline.public: true")
        self._check_network()
        self._check_keys()
        if is_production_environment(self.environment) and not self.log_analytics_workspace_id:
            raise AcrConfigError("log_analytics_workspace_id: prod registries send their audit logs somewhere")

    def _check_network(self) -> None:
        if self.public_network_access and not self.allowed_ip_ranges:
            raise AcrConfigError("public_network_access needs allowed_ip_ranges (the rules deny by default)")
        if not self.public_network_access and not self.private_endpoint_subnet_id:
            raise AcrConfigError(
                "private_endpoint_subnet_id: a registry without public access needs a private endpoint"
            )

    def _check_keys(self) -> None:
        if not self.baseline.customer_managed_key:
            return
        if not (self.key_vault_key_id and self.identity_id and self.identity_client_id):
            raise AcrConfigError(
                "customer_managed_key: ACR takes a key only at creation; set key_vault_key_id, identity_id and "
                "identity_client_id (or baseline customer_managed_key: false, a tagged opt-out)"
            )

    @property
    def zone_redundant(self) -> bool:
        return is_production_environment(self.environment) if self.zone_redundancy is None else self.zone_redundancy


def registry_arguments(args: AcrRegistryArgs) -> dict[str, Any]:
    """The `containerregistry.Registry` arguments (plain data: tests and the policy pack read them)."""
    cn = azure.containerregistry
    out: dict[str, Any] = {
        "registry_name": args.name,
        "resource_group_name": args.resource_group_name,
        "location": args.location,
        "sku": cn.SkuArgs(name=args.sku),
        "admin_user_enabled": args.admin_user_enabled,
        "anonymous_pull_enabled": args.anonymous_pull_enabled,
        "public_network_access": "Enabled" if args.public_network_access else "Disabled",
        "network_rule_set": cn.NetworkRuleSetArgs(
            default_action="Deny", ip_rules=[cn.IPRuleArgs(i_p_address_or_range=r) for r in args.allowed_ip_ranges]
        ),
        "network_rule_bypass_options": "AzureServices" if args.trusted_services_bypass else "None",
        "zone_redundancy": "Enabled" if args.zone_redundant else "Disabled",
        "policies": cn.PoliciesArgs(
            export_policy=cn.ExportPolicyArgs(status="enabled" if args.export_enabled else "disabled"),
            retention_policy=cn.RetentionPolicyArgs(days=args.baseline.expire_untagged_days, status="enabled"),
            soft_delete_policy=cn.SoftDeletePolicyArgs(retention_days=args.soft_delete_days, status="enabled"),
            azure_ad_authentication_as_arm_policy=cn.AzureADAuthenticationAsArmPolicyArgs(status="disabled"),
        ),
        "tags": {**args.tags, **_opt_out_tags(args)},
    }
    if args.baseline.customer_managed_key:
        out["identity"] = cn.IdentityPropertiesArgs(
            type=cn.ResourceIdentityType.USER_ASSIGNED,
            user_assigned_identities={str(args.identity_id): cn.UserIdentityPropertiesArgs()},
        )
        out["encryption"] = cn.EncryptionPropertyArgs(
            status="enabled",
            key_vault_properties=cn.KeyVaultPropertiesArgs(
                key_identifier=args.key_vault_key_id, identity=args.identity_client_id
            ),
        )
    return out


def _opt_out_tags(args: AcrRegistryArgs) -> dict[str, str]:
    tags = {f"regguard:opt-out:{k}": v for k, v in args.baseline.opt_outs().items()}
    if args.public_network_access:
        tags["regguard:opt-out:public_network_access"] = tag_safe(" ".join(args.allowed_ip_ranges))
    return {"regguard:environment": args.environment, **tags}


class AcrRegistry(pulumi.ComponentResource):
    """One registry with its replications, tokens, private endpoint and diagnostic setting."""

    registry: azure.containerregistry.Registry
    login_server: pulumi.Output[str]

    def __init__(self, name: str, args: AcrRegistryArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("regguard:azure:AcrRegistry", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cn = azure.containerregistry
        self.registry = cn.Registry(name, opts=child, **registry_arguments(args))
        group, registry_name = args.resource_group_name, args.name
        self.replications = [
            cn.Replication(
                f"{name}-{region}",
                opts=child,
                registry_name=registry_name,
                resource_group_name=group,
                location=region,
                zone_redundancy="Enabled" if args.zone_redundant else "Disabled",
                replication_name=region.replace("-", ""),
            )
            for region in args.baseline.replicate_to
        ]
        self.tokens = [self._token(name, args, token, child) for token in args.tokens]
        self.private_endpoint = self._private_endpoint(name, args, child)
        self.diagnostics = self._diagnostics(name, args, child)
        self.login_server = self.registry.login_server
        self.register_outputs({"loginServer": self.login_server, "id": self.registry.id})

    def _token(self, name: str, args: AcrRegistryArgs, token: AcrTokenArgs, opts: pulumi.ResourceOptions) -> Any:
        cn = azure.containerregistry
        depends = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[self.registry]))
        scope = cn.ScopeMap(
            f"{name}-{token.name}-scope",
            opts=depends,
            registry_name=args.name,
            resource_group_name=args.resource_group_name,
            scope_map_name=f"{token.name}-scope",
            actions=token.actions(),
        )
        return cn.Token(
            f"{name}-{token.name}",
            opts=depends,
            registry_name=args.name,
            resource_group_name=args.resource_group_name,
            token_name=token.name,
            scope_map_id=scope.id,
            status="enabled",
            credentials=cn.TokenCredentialsPropertiesArgs(
                passwords=[cn.TokenPasswordArgs(name="password1", expiry=token.password_expiry)]
            ),
        )

    def _private_endpoint(self, name: str, args: AcrRegistryArgs, opts: pulumi.ResourceOptions) -> Any:
        if not args.private_endpoint_subnet_id:
            return None
        net = azure.network
        return net.PrivateEndpoint(
            f"{name}-pe",
            opts=opts,
            resource_group_name=args.resource_group_name,
            location=args.location,
            subnet=net.SubnetArgs(id=args.private_endpoint_subnet_id),
            private_link_service_connections=[
                net.PrivateLinkServiceConnectionArgs(
                    name=f"{args.name}-registry", private_link_service_id=self.registry.id, group_ids=["registry"]
                )
            ],
        )

    def _diagnostics(self, name: str, args: AcrRegistryArgs, opts: pulumi.ResourceOptions) -> Any:
        if not args.log_analytics_workspace_id:
            return None
        mon = azure.monitor
        return mon.DiagnosticSetting(
            f"{name}-audit-logs",
            opts=opts,
            name="regguard-audit",
            resource_uri=self.registry.id,
            workspace_id=args.log_analytics_workspace_id,
            logs=[mon.DiagnosticsLogSettingsArgs(category=c, enabled=True) for c in LOG_CATEGORIES],
        )


# --------------------------------------------------------------------------
# Provisioner: `kind: acr` entries of regguard:registries
# --------------------------------------------------------------------------

_REGISTRY_KEYS = frozenset(
    {
        "name",
        "kind",
        "registry_name",
        "resource_group",
        "location",
        "baseline",
        "sku",
        "admin_user_enabled",
        "anonymous_pull_enabled",
        "public_network_access",
        "allowed_ip_ranges",
        "trusted_services_bypass",
        "private_endpoint_subnet_id",
        "export_enabled",
        "soft_delete_days",
        "zone_redundancy",
        "key_vault_key_id",
        "identity_id",
        "identity_client_id",
        "log_analytics_workspace_id",
        "tokens",
        "tags",
    }
)
_TOKEN_KEYS = frozenset({"name", "repositories", "password_expiry", "push"})


@dataclass(frozen=True)
class AcrRegistrySpec:
    """One `kind: acr` entry: the registry args and the subscription it lives in."""

    name: str
    subscription_id: str
    registry: AcrRegistryArgs

    def declare(self) -> dict[str, Any]:
        component = AcrRegistry(self.name, self.registry)
        return {self.registry.name: component.login_server}

    def audit_targets(self) -> list[dict[str, Any]]:
        return [
            {
                "name": self.name,
                "kind": "acr",
                "subscription_id": self.subscription_id,
                "resource_group": self.registry.resource_group_name,
                "registries": [self.registry.name],
            }
        ]


def parse_registry(raw: Any, stack: StackContext, where: str, earlier: Sequence[Any] = ()) -> AcrRegistrySpec:
    entry = sc.mapping(raw, where, _REGISTRY_KEYS)
    name = sc.require_str(entry.get("name"), f"{where}.name")
    if not re.match(sc.TARGET_NAME_PATTERN, name):
        raise StackConfigError(f"{where}.name: letters, digits, '.', '_' and '-' only")
    overrides = sc.mapping(entry.get("baseline", {}), f"{where}.baseline", None)
    baseline = sc.baseline_for(stack.environment, overrides, f"{where}.baseline")
    tokens = tuple(
        _token(t, f"{where}.tokens[{i}]") for i, t in enumerate(sc.as_list(entry.get("tokens"), f"{where}.tokens"))
    )
    registry = sc.build(where, lambda: _registry_args(entry, stack, baseline, tokens, name, where))
    if any(isinstance(s, AcrRegistrySpec) and s.registry.name == registry.name for s in earlier):
        raise StackConfigError(f"{where}.registry_name: {registry.name} is declared twice")
    return AcrRegistrySpec(name, stack.provider_value("azure-native:subscriptionId"), registry)


def _registry_args(
    entry: dict[str, Any],
    stack: StackContext,
    baseline: Baseline,
    tokens: tuple[AcrTokenArgs, ...],
    name: str,
    where: str,
) -> AcrRegistryArgs:
    flags: dict[str, Any] = {
        key: entry[key]
        for key in (
            "admin_user_enabled",
            "anonymous_pull_enabled",
            "public_network_access",
            "trusted_services_bypass",
            "export_enabled",
            "zone_redundancy",
            "soft_delete_days",
        )
        if key in entry
    }
    optional: dict[str, Any] = {
        key: sc.opt_str(entry.get(key), f"{where}.{key}")
        for key in (
            "private_endpoint_subnet_id",
            "key_vault_key_id",
            "identity_id",
            "identity_client_id",
            "log_analytics_workspace_id",
        )
    }
    return AcrRegistryArgs(
        name=sc.opt_str(entry.get("registry_name"), f"{where}.registry_name") or name.replace("-", ""),
        resource_group_name=sc.require_str(entry.get("resource_group"), f"{where}.resource_group"),
        location=sc.opt_str(entry.get("location"), f"{where}.location")
        or stack.provider_value("azure-native:location"),
        environment=stack.environment,
        baseline=baseline,
        sku=sc.opt_str(entry.get("sku"), f"{where}.sku") or "Premium",
        allowed_ip_ranges=sc.str_list(entry.get("allowed_ip_ranges"), f"{where}.allowed_ip_ranges", default=()),
        tokens=tokens,
        tags=sc.tags_mapping(entry.get("tags"), f"{where}.tags"),
        **flags,
        **optional,
    )


def _token(raw: Any, where: str) -> AcrTokenArgs:
    entry = sc.mapping(raw, where, _TOKEN_KEYS)
    if not entry.get("password_expiry"):
        raise StackConfigError(f"{where}.password_expiry: every token password expires (ISO 8601, at most 90 days)")
    return sc.build(
        where,
        lambda: AcrTokenArgs(
            name=sc.require_str(entry.get("name"), f"{where}.name"),
            repositories=sc.str_list(entry.get("repositories"), f"{where}.repositories", default=()),
            password_expiry=str(entry["password_expiry"]),
            push=bool(entry.get("push", True)),
        ),
    )
