"""Harbor projects and system settings (pulumiverse-harbor), hardened by default.

`HarborProject` declares one project with:

* private unless the baseline declares it public; scan on push with Trivy;
  cosign enforcement (`enable_content_trust_cosign`) from the baseline's
  `require_signing` (always in production); deployment security blocking
  critical vulnerabilities, high and above in production;
* an immutable tag rule over every repository covering release tags (all
  tags, minus the baseline's exclusions, which the baseline never lets cover
  a release tag); a retention policy from the baseline (keep the last N
  tagged, untagged for D days);
* robot accounts with a finite `duration` (the provider's default never
  expires: refused) and least-privilege permissions on this project only
  (pull, or push + pull for a publisher);
* replication to a second Harbor or a cloud registry (required in production);
* every opt-out as a project label `regguard-opt-out-<field>` where reviewers
  and the auditor see it (Harbor projects take labels, not tags).

`HarborSystem` sets the instance-wide configuration: OIDC or LDAP
authentication (`db_auth` refused in production), a finite
`robot_token_expiration`, audit log forwarding, project creation by admins only.

The provider is pulumiverse-harbor's default one, configured by the stack's
`harbor:url` / `harbor:username` / `harbor:password` (secret).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import pulumi
import pulumiverse_harbor as harbor

from audits.vocabulary import is_production_environment
from components.baseline import Baseline

_PROJECT_RE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
_ROBOT_RE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
_ENDPOINT_RE = re.compile(r"^https://[A-Za-z0-9.-]+(:\d+)?(/\S*)?$")
_SYSLOG_RE = re.compile(r"^[A-Za-z0-9.-]+:\d{1,5}$")
MAX_ROBOT_DAYS = 365
REPLICATION_PROVIDERS = ("harbor", "aws-ecr", "google-gcr", "azure-acr", "docker-registry")
AuthMode = Literal["oidc_auth", "ldap_auth", "db_auth"]
AUTH_MODES: tuple[str, ...] = get_args(AuthMode)
PULL = ("pull",)
PUSH = ("pull", "push")


@dataclass(frozen=True)
class RobotSpec:
    """A robot account of one project: `can_push` for a publisher, else pull only."""

    name: str
    duration_days: int
    can_push: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _ROBOT_RE.match(self.name):
            raise ValueError(f"name: {self.name!r}: lowercase letters, digits, '.', '_', '-'")
        days = self.duration_days
        if isinstance(days, bool) or not isinstance(days, int) or days <= 0:
            raise ValueError(
                "duration_days: a positive number of days; a robot account that never expires "
                "(the provider's default, -1) is refused"
            )
        if days > MAX_ROBOT_DAYS:
            raise ValueError(f"duration_days: at most {MAX_ROBOT_DAYS}; rotate the robot instead")

    @property
    def actions(self) -> tuple[str, ...]:
        return PUSH if self.can_push else PULL


@dataclass(frozen=True)
class ReplicationTarget:
    """Where a project's artifacts are pushed to: a second Harbor or a cloud registry."""

    name: str
    endpoint_url: str
    provider_name: str = "harbor"
    schedule: str = "0 0 * * * *"  # hourly (Harbor's six-field cron)

    def __post_init__(self) -> None:
        if not isinstance(self.endpoint_url, str) or not _ENDPOINT_RE.match(self.endpoint_url):
            raise ValueError("endpoint_url: expected an https:// URL")
        if self.provider_name not in REPLICATION_PROVIDERS:
            raise ValueError(f"provider_name: expected one of {', '.join(REPLICATION_PROVIDERS)}")


@dataclass(frozen=True)
class HarborProjectArgs:
    """One project; `robots` get access to this project only."""

    name: str
    environment: str
    baseline: Baseline
    robots: tuple[RobotSpec, ...] = ()
    replication: ReplicationTarget | None = None
    storage_quota_gb: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _PROJECT_RE.match(self.name) or len(self.name) > 255:
            raise ValueError(f"name: {self.name!r} is not a Harbor project name")
        prod = is_production_environment(self.environment)
        if prod and not self.baseline.require_signing:
            raise ValueError("baseline.require_signing: production projects enforce cosign signatures")
        if prod and self.replication is None:
            raise ValueError("replication: production projects replicate to a second Harbor or a cloud registry")
        names = [r.name for r in self.robots]
        if len(set(names)) != len(names):
            raise ValueError("robots: a robot name is used twice")
        quota = self.storage_quota_gb
        if quota is not None and (isinstance(quota, bool) or not isinstance(quota, int) or quota <= 0):
            raise ValueError("storage_quota_gb: expected a positive number of GB")

    @property
    def deployment_security(self) -> str:
        """The lowest severity that blocks a pull: high in production, critical elsewhere."""
        return "high" if is_production_environment(self.environment) else "critical"

    def opt_outs(self) -> dict[str, str]:
        found = {k: v for k, v in self.baseline.opt_outs().items() if k not in ("replicate_to", "customer_managed_key")}
        if self.replication is None:
            found["replication"] = "none"
        return found


def immutable_tag_pattern(exclusions: tuple[str, ...]) -> str | None:
    """Harbor's doublestar `tag_excluding` for the baseline's exclusions (None: none)."""
    if not exclusions:
        return None
    return exclusions[0] if len(exclusions) == 1 else "{" + ",".join(exclusions) + "}"


def robot_permissions(project: str, robot: RobotSpec) -> list[harbor.RobotAccountPermissionArgs]:
    """Repository access on this one project, nothing system-wide, never `*`."""
    accesses = [harbor.RobotAccountPermissionAccessArgs(action=a, resource="repository") for a in robot.actions]
    return [harbor.RobotAccountPermissionArgs(kind="project", namespace=project, accesses=accesses)]


class HarborProject(pulumi.ComponentResource):
    """A hardened Harbor project with its rules, robots, replication and opt-out labels."""

    project: harbor.Project
    robots: dict[str, harbor.RobotAccount]

    def __init__(self, name: str, args: HarborProjectArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("regguard:harbor:HarborProject", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        baseline = args.baseline
        self.project = harbor.Project(
            f"{name}-project",
            name=args.name,
            public=baseline.public,
            vulnerability_scanning=True,
            enable_content_trust_cosign=baseline.require_signing,
            deployment_security=args.deployment_security,
            storage_quota=args.storage_quota_gb,
            force_destroy=False,
            opts=child,
        )
        project_child = pulumi.ResourceOptions(parent=self, depends_on=[self.project])
        harbor.ImmutableTagRule(
            f"{name}-immutable",
            project_id=self.project.id,
            repo_matching="**",
            # mutable by opt-out: release tags stay immutable all the same
            tag_matching="**" if baseline.immutable_tags else "{v[0-9]*,[0-9]*}",
            tag_excluding=immutable_tag_pattern(baseline.immutable_tag_exclusions) if baseline.immutable_tags else None,
            opts=project_child,
        )
        _retention(name, self.project, baseline, project_child)
        self.robots = {
            robot.name: harbor.RobotAccount(
                f"{name}-robot-{robot.name}",
                name=robot.name,
                description=robot.description or f"regguard: {'publisher' if robot.can_push else 'puller'}",
                level="project",
                duration=robot.duration_days,
                permissions=robot_permissions(args.name, robot),
                opts=project_child,
            )
            for robot in args.robots
        }
        if args.replication is not None:
            _replication(name, args.name, args.replication, project_child)
        for key, value in args.opt_outs().items():
            harbor.Label(
                f"{name}-opt-out-{key}",
                name=f"regguard-opt-out-{key.replace('_', '-')}",
                description=value,
                project_id=self.project.id,
                opts=project_child,
            )
        self.register_outputs({"project_id": self.project.id, "name": args.name})


def _retention(name: str, project: harbor.Project, baseline: Baseline, child: pulumi.ResourceOptions) -> None:
    """Keep the last N tagged artifacts; untagged ones for D days; run daily."""
    harbor.RetentionPolicy(
        f"{name}-retention",
        scope=project.id,
        schedule="Daily",
        rules=[
            harbor.RetentionPolicyRuleArgs(
                most_recently_pushed=baseline.keep_last, repo_matching="**", tag_matching="**"
            ),
            harbor.RetentionPolicyRuleArgs(
                n_days_since_last_push=baseline.expire_untagged_days, repo_matching="**", tag_matching="**",
                untagged_artifacts=True,
            ),
        ],
        opts=child,
    )


def _replication(name: str, project: str, target: ReplicationTarget, child: pulumi.ResourceOptions) -> None:
    endpoint = harbor.Registry(
        f"{name}-replica",
        name=f"{project}-{target.name}",  # endpoint names are unique per Harbor
        endpoint_url=target.endpoint_url,
        provider_name=target.provider_name,
        insecure=False,
        opts=child,
    )
    harbor.Replication(
        f"{name}-replication",
        name=f"{project}-to-{target.name}",
        action="push",
        registry_id=endpoint.registry_id,
        schedule=target.schedule,
        filters=[harbor.ReplicationFilterArgs(name=f"{project}/**")],
        override=False,
        deletion=False,
        opts=child,
    )


# --------------------------------------------------------------------- system configuration


@dataclass(frozen=True)
class HarborSystemArgs:
    """Instance-wide settings. OIDC/LDAP settings are the provider's own
    inputs (`auth_settings`: e.g. oidc_endpoint, oidc_client_id; secrets as
    Pulumi secrets)."""

    environment: str
    auth_mode: AuthMode
    audit_log_forward_endpoint: str | None = None
    robot_token_expiration_days: int = 30
    auth_settings: Mapping[str, pulumi.Input[str] | bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        prod = is_production_environment(self.environment)
        if self.auth_mode not in AUTH_MODES:
            raise ValueError(f"auth_mode: expected one of {', '.join(AUTH_MODES)}")
        if prod and self.auth_mode == "db_auth":
            raise ValueError("auth_mode: db_auth (local accounts) is refused in production; use oidc_auth or ldap_auth")
        endpoint = self.audit_log_forward_endpoint
        if endpoint is None and prod:
            raise ValueError("audit_log_forward_endpoint: required in production (host:port of your syslog)")
        if endpoint is not None and not _SYSLOG_RE.match(str(endpoint)):
            raise ValueError("audit_log_forward_endpoint: expected host:port")
        days = self.robot_token_expiration_days
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_ROBOT_DAYS:
            raise ValueError(f"robot_token_expiration_days: between 1 and {MAX_ROBOT_DAYS}")


class HarborSystem(pulumi.ComponentResource):
    """Harbor's system and authentication configuration."""

    def __init__(self, name: str, args: HarborSystemArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("regguard:harbor:HarborSystem", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        harbor.ConfigSystem(
            f"{name}-system",
            project_creation_restriction="adminonly",
            robot_token_expiration=args.robot_token_expiration_days,
            audit_log_forward_endpoint=args.audit_log_forward_endpoint,
            skip_audit_log_database=False,
            read_only=False,
            opts=child,
        )
        harbor.ConfigAuth(f"{name}-auth", auth_mode=args.auth_mode, opts=child, **dict(args.auth_settings))
        self.register_outputs({"auth_mode": args.auth_mode})


# --------------------------------------------------------------------- stack config (used by components.harbor_vm)

_SYSTEM_KEYS = frozenset({"auth_mode", "audit_log_forward_endpoint", "robot_token_expiration_days", "auth", "secrets"})
_PROJECT_KEYS = frozenset({"name", "baseline", "robots", "replication", "storage_quota_gb"})
_ROBOT_KEYS = frozenset({"name", "duration_days", "can_push", "description"})
_REPLICATION_KEYS = frozenset({"name", "endpoint_url", "provider_name", "schedule"})
# ConfigAuth inputs a stack may set in `system.auth` (plain values) and `system.secrets` (config key names).
AUTH_SETTINGS = frozenset(
    {
        "ldap_url", "ldap_base_dn", "ldap_search_dn", "ldap_uid", "ldap_filter", "ldap_scope", "ldap_verify_cert",
        "ldap_group_base_dn", "ldap_group_admin_dn", "ldap_group_filter", "ldap_group_gid",
        "oidc_name", "oidc_endpoint", "oidc_client_id", "oidc_scope", "oidc_verify_cert", "oidc_user_claim",
        "oidc_groups_claim", "oidc_admin_group", "oidc_auto_onboard", "oidc_group_filter",
    }
)
AUTH_SECRETS = frozenset({"ldap_search_password", "oidc_client_secret"})


def parse_system(raw: Any, environment: str, where: str) -> tuple[HarborSystemArgs, dict[str, str]]:
    """`system:` -> (args, secret input -> `regguard:` config key)."""
    from components import stack_config as sc

    entry = sc.mapping(raw, where, _SYSTEM_KEYS)
    auth = sc.mapping(entry.get("auth", {}), f"{where}.auth", AUTH_SETTINGS)
    secrets = sc.mapping(entry.get("secrets", {}), f"{where}.secrets", AUTH_SECRETS)
    for key, value in secrets.items():
        sc.require_str(value, f"{where}.secrets.{key}")
    optional = {k: entry[k] for k in ("audit_log_forward_endpoint", "robot_token_expiration_days") if k in entry}
    args = sc.build(
        where,
        lambda: HarborSystemArgs(
            environment=environment,
            auth_mode=sc.require_str(entry.get("auth_mode"), f"{where}.auth_mode"),  # type: ignore[arg-type]
            auth_settings=auth,
            **optional,
        ),
    )
    return args, secrets


def parse_projects(raw: Any, environment: str, where: str) -> tuple[HarborProjectArgs, ...]:
    from components import stack_config as sc

    items = sc.as_list(raw, where)
    if not items:
        raise sc.StackConfigError(f"{where}: expected a non-empty list of projects")
    projects = tuple(_parse_project(item, environment, f"{where}[{i}]") for i, item in enumerate(items))
    sc.check_unique([p.name for p in projects], where, "name")
    return projects


def _parse_robot(raw: Any, where: str) -> RobotSpec:
    from components import stack_config as sc

    entry = sc.mapping(raw, where, _ROBOT_KEYS)
    return sc.build(where, lambda: RobotSpec(**entry))


def _parse_project(raw: Any, environment: str, where: str) -> HarborProjectArgs:
    from components import stack_config as sc

    entry = sc.mapping(raw, where, _PROJECT_KEYS)
    # Harbor replicates to registries (`replication`), not regions: the region list is not asked for.
    overrides = {"replicate_to": [], **sc.mapping(entry.get("baseline", {}), f"{where}.baseline", None)}
    baseline = sc.baseline_for(environment, overrides, f"{where}.baseline")
    listed = sc.as_list(entry.get("robots"), f"{where}.robots")
    robots = tuple(_parse_robot(r, f"{where}.robots[{i}]") for i, r in enumerate(listed))
    replication = None
    if entry.get("replication") is not None:
        target = sc.mapping(entry["replication"], f"{where}.replication", _REPLICATION_KEYS)
        replication = sc.build(f"{where}.replication", lambda: ReplicationTarget(**target))
    return sc.build(
        where,
        lambda: HarborProjectArgs(
            name=sc.require_str(entry.get("name"), f"{where}.name"),
            environment=environment,
            baseline=baseline,
            robots=robots,
            replication=replication,
            storage_quota_gb=entry.get("storage_quota_gb"),
        ),
    )
