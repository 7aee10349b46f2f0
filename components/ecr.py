"""AWS ECR components: the shared Baseline translated into `aws.ecr.*`.

`EcrRegistry` holds the account/region-wide settings (enhanced scanning of
every repository, replication, the registry policy, pull-through caches);
`EcrRepository` one hardened repository (immutable tags, a rotated customer
KMS key, a lifecycle policy, a least-privilege repository policy, tags that
show every opt-out).

Policy documents are built by pure functions below so tests and the policy
pack can check them without the Pulumi engine. Every child resource is
declared at the top level of `__init__` (never inside `.apply()`), so all of
them appear in `pulumi preview`.

It is also ECR's provisioner in the kind table: `parse_registry` reads a
`kind: ecr` entry of the stack's `regguard:registries`, and the spec it
returns declares the components and the `auditConfig` target.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from audits.collectors.ecr_facts import PULL_ACTIONS, PUSH_ACTIONS
from components import stack_config as sc
from components.baseline import Baseline, tag_safe
from components.stack_config import StackConfigError, StackContext

# pulumi-aws 6.x has no `image_tag_mutability_exclusion_filters`; when a newer
# SDK has it, IMMUTABLE_WITH_EXCLUSION is used automatically.
SUPPORTS_TAG_EXCLUSIONS = (
    "image_tag_mutability_exclusion_filters"
    in inspect.signature(aws.ecr.Repository._internal_init).parameters
)

REPLICATION_ACTIONS: tuple[str, ...] = ("ecr:CreateRepository", "ecr:ReplicateImage")
SCAN_FREQUENCY = {"continuous": "CONTINUOUS_SCAN", "scan_on_push": "SCAN_ON_PUSH"}
# Upstreams that ECR only caches with a Secrets Manager credential.
_UPSTREAMS_NEEDING_CREDENTIALS = ("registry-1.docker.io", "ghcr.io", "registry.gitlab.com")

_PRINCIPAL_RE = re.compile(
    r"^arn:aws(?:-cn|-us-gov)?:iam::\d{12}:(?:root|role/[\w+=,.@/-]+|user/[\w+=,.@/-]+)$"
)
_REPO_NAME_RE = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")
_ACCOUNT_RE = re.compile(r"^\d{12}$")
_PREFIX_RE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
_SECRET_ARN_RE = re.compile(
    r"^arn:aws(?:-cn|-us-gov)?:secretsmanager:[a-z0-9-]+:\d{12}:secret:ecr-pullthroughcache/.+$"
)


# --------------------------------------------------------------------- documents


def lifecycle_policy_document(baseline: Baseline) -> str:
    """ECR lifecycle policy JSON: expire untagged images after D days (rule 1),
    keep the last N tagged images (rule 2). Priorities are unique and the
    tagged rule selects every tag with the `*` pattern, as ECR requires a
    tag filter when `tagStatus` is `tagged`."""
    rules = [
        {
            "rulePriority": 1,
            "description": f"Expire untagged images after {baseline.expire_untagged_days} days",
            "selection": {
                "tagStatus": "untagged",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": baseline.expire_untagged_days,
            },
            "action": {"type": "expire"},
        },
        {
            "rulePriority": 2,
            "description": f"Keep the last {baseline.keep_last} tagged images",
            "selection": {
                "tagStatus": "tagged",
                "tagPatternList": ["*"],
                "countType": "imageCountMoreThan",
                "countNumber": baseline.keep_last,
            },
            "action": {"type": "expire"},
        },
    ]
    return json.dumps({"rules": rules}, sort_keys=True)


def repository_policy_document(
    pull_principals: Sequence[str], push_principals: Sequence[str]
) -> str | None:
    """Repository policy JSON granting pull and push to the named principals
    only; None when nobody outside the account's IAM policies needs access.
    `*` is only ever written in the pull statement (validated by the args)."""
    statements: list[dict[str, Any]] = []
    if pull_principals:
        statements.append(_statement("RegguardPull", pull_principals, PULL_ACTIONS))
    if push_principals:
        statements.append(_statement("RegguardPush", push_principals, PUSH_ACTIONS))
    if not statements:
        return None
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


def registry_policy_document(source_accounts: Sequence[str], region: str, account_id: str) -> str:
    """Registry policy JSON letting the named source accounts replicate into
    this registry: only CreateRepository + ReplicateImage, only on this
    registry's repositories, never to `*`."""
    principals = [f"arn:aws:iam::{account}:root" for account in source_accounts]
    statement = _statement("RegguardReplicationFrom", principals, REPLICATION_ACTIONS)
    statement["Resource"] = f"arn:aws:ecr:{region}:{account_id}:repository/*"
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]}, sort_keys=True)


def _statement(sid: str, principals: Sequence[str], actions: Sequence[str]) -> dict[str, Any]:
    principal: Any = "*" if list(principals) == ["*"] else {"AWS": sorted(set(principals))}
    return {"Sid": sid, "Effect": "Allow", "Principal": principal, "Action": sorted(set(actions))}


def regguard_tags(
    environment: str, baseline: Baseline, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Tags every regguard resource carries: who manages it, for which
    environment, and one `regguard:opt-out:<field>` per weakened setting."""
    tags = dict(extra or {})
    tags["regguard:managed"] = "true"
    tags["regguard:environment"] = tag_safe(environment)
    for key, value in baseline.opt_outs().items():
        tags[f"regguard:opt-out:{key}"] = value
    return tags


# --------------------------------------------------------------------- registry


@dataclass(frozen=True)
class PullThroughCache:
    """One pull-through cache rule: `<prefix>/...` in ECR mirrors the upstream."""

    ecr_repository_prefix: str
    upstream_registry_url: str
    credential_arn: str | None = None

    def __post_init__(self) -> None:
        if not _PREFIX_RE.match(self.ecr_repository_prefix) or len(self.ecr_repository_prefix) < 2:
            raise ValueError(
                f"ecr_repository_prefix: {self.ecr_repository_prefix!r} is not a repository prefix"
            )
        url = self.upstream_registry_url
        if "://" in url or "/" in url.rstrip("/") or not url:
            raise ValueError(f"upstream_registry_url: {url!r}: expected a host such as quay.io")
        needs = url in _UPSTREAMS_NEEDING_CREDENTIALS or url.endswith(".azurecr.io")
        if needs and self.credential_arn is None:
            raise ValueError(
                f"credential_arn: {url} needs a Secrets Manager secret named ecr-pullthroughcache/..."
            )
        if self.credential_arn is not None and not _SECRET_ARN_RE.match(self.credential_arn):
            raise ValueError(
                "credential_arn: expected the ARN of a Secrets Manager secret named "
                "ecr-pullthroughcache/..."
            )


@dataclass(frozen=True)
class EcrRegistryArgs:
    """Registry-wide settings of one account/region.

    `replication_source_accounts` are accounts allowed to replicate into this
    registry (the registry policy); `account_id` is this registry's account,
    looked up from the caller identity when not given.
    """

    baseline: Baseline
    region: str
    account_id: str | None = None
    replication_source_accounts: tuple[str, ...] = ()
    pull_through_caches: tuple[PullThroughCache, ...] = ()

    def __post_init__(self) -> None:
        for i, account in enumerate(self.replication_source_accounts):
            if not _ACCOUNT_RE.match(account):
                raise ValueError(
                    f"replication_source_accounts[{i}]: expected a 12-digit account id"
                )
        if self.account_id is not None and not _ACCOUNT_RE.match(self.account_id):
            raise ValueError("account_id: expected a 12-digit account id")
        if self.region in self.baseline.replicate_to:
            raise ValueError(
                f"baseline.replicate_to: {self.region} is the registry's own region"
            )
        prefixes = [c.ecr_repository_prefix for c in self.pull_through_caches]
        if len(set(prefixes)) != len(prefixes):
            raise ValueError("pull_through_caches: a prefix is used twice")


class EcrRegistry(pulumi.ComponentResource):
    """Account/region-wide ECR settings: enhanced scanning with a `*` filter
    over every repository, replication, registry policy, pull-through caches."""

    scanning: aws.ecr.RegistryScanningConfiguration
    replication: aws.ecr.ReplicationConfiguration | None
    policy: aws.ecr.RegistryPolicy | None
    caches: list[aws.ecr.PullThroughCacheRule]

    def __init__(
        self, name: str, args: EcrRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("regguard:ecr:EcrRegistry", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account_id: pulumi.Input[str] = (
            args.account_id
            if args.account_id is not None
            else aws.get_caller_identity_output(opts=pulumi.InvokeOptions(parent=self)).account_id
        )

        self.scanning = aws.ecr.RegistryScanningConfiguration(
            f"{name}-scanning",
            scan_type="ENHANCED",
            rules=[
                aws.ecr.RegistryScanningConfigurationRuleArgs(
                    scan_frequency=SCAN_FREQUENCY[args.baseline.scan_mode],
                    repository_filters=[
                        aws.ecr.RegistryScanningConfigurationRuleRepositoryFilterArgs(
                            filter="*", filter_type="WILDCARD"
                        )
                    ],
                )
            ],
            opts=child,
        )

        self.replication = None
        if args.baseline.replicate_to:
            self.replication = aws.ecr.ReplicationConfiguration(
                f"{name}-replication",
                replication_configuration=aws.ecr.ReplicationConfigurationReplicationConfigurationArgs(
                    rules=[
                        aws.ecr.ReplicationConfigurationReplicationConfigurationRuleArgs(
                            destinations=[
                                aws.ecr.ReplicationConfigurationReplicationConfigurationRuleDestinationArgs(
                                    region=region, registry_id=account_id
                                )
                                for region in args.baseline.replicate_to
                            ]
                        )
                    ]
                ),
                opts=child,
            )

        self.policy = None
        if args.replication_source_accounts:
            sources = args.replication_source_accounts
            self.policy = aws.ecr.RegistryPolicy(
                f"{name}-policy",
                policy=pulumi.Output.from_input(account_id).apply(
                    lambda acct: registry_policy_document(sources, args.region, acct)
                ),
                opts=child,
            )

        self.caches = [
            aws.ecr.PullThroughCacheRule(
                f"{name}-cache-{cache.ecr_repository_prefix.replace('/', '-')}",
                ecr_repository_prefix=cache.ecr_repository_prefix,
                upstream_registry_url=cache.upstream_registry_url,
                credential_arn=cache.credential_arn,
                opts=child,
            )
            for cache in args.pull_through_caches
        ]

        self.register_outputs(
            {
                "scan_frequency": SCAN_FREQUENCY[args.baseline.scan_mode],
                "replicate_to": list(args.baseline.replicate_to),
            }
        )


# --------------------------------------------------------------------- repository


@dataclass(frozen=True)
class EcrRepositoryArgs:
    """One repository. `kms_key_arn` uses an existing customer key; without it
    and with `baseline.customer_managed_key`, the component creates a key with
    rotation. `*` may only appear in `pull_principals`, and only when the
    baseline declares the repository public; it never appears in push."""

    name: str
    baseline: Baseline
    environment: str
    pull_principals: tuple[str, ...] = ()
    push_principals: tuple[str, ...] = ()
    kms_key_arn: pulumi.Input[str] | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (2 <= len(self.name) <= 256) or not _REPO_NAME_RE.match(self.name):
            raise ValueError(f"name: {self.name!r} is not a valid ECR repository name")
        check_principals("pull_principals", self.pull_principals, allow_star=self.baseline.public)
        check_principals("push_principals", self.push_principals, allow_star=False)
        if self.kms_key_arn is not None and not self.baseline.customer_managed_key:
            raise ValueError("kms_key_arn: given, but baseline.customer_managed_key is false")
        for key in self.tags:
            if key.startswith("regguard:"):
                raise ValueError(f"tags: {key!r}: the regguard: prefix is reserved")

    def effective_pull_principals(self) -> tuple[str, ...]:
        """A public repository gets an anonymous *pull* statement; nothing else."""
        if self.baseline.public and "*" not in self.pull_principals:
            return ("*",)
        return ("*",) if "*" in self.pull_principals else self.pull_principals


def check_principals(key: str, principals: Sequence[str], *, allow_star: bool) -> None:
    """Raise ValueError `key[i]: problem` for anything but an IAM role, user or
    account-root ARN; `*` only where `allow_star` (public pull)."""
    if isinstance(principals, str):
        raise ValueError(f"{key}: expected a list of IAM principal ARNs")
    for i, principal in enumerate(principals):
        if principal == "*":
            if allow_star:
                continue
            why = "push is never anonymous" if key == "push_principals" else (
                "only allowed when the baseline declares the repository public"
            )
            raise ValueError(f"{key}[{i}]: '*' refused: {why}")
        if not isinstance(principal, str) or not _PRINCIPAL_RE.match(principal):
            raise ValueError(
                f"{key}[{i}]: expected an IAM role, user or account-root ARN "
                "such as arn:aws:iam::123456789012:role/ci"
            )


class EcrRepository(pulumi.ComponentResource):
    """A hardened ECR repository, the baseline translated into inputs."""

    repository_url: pulumi.Output[str]
    arn: pulumi.Output[str]
    name: pulumi.Output[str]
    tag_mutability: str
    kms_key: aws.kms.Key | None

    def __init__(
        self, name: str, args: EcrRepositoryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("regguard:ecr:EcrRepository", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        baseline = args.baseline
        tags = regguard_tags(args.environment, baseline, args.tags)
        self.tag_mutability, exclusion_inputs = _tag_mutability(baseline)
        if baseline.immutable_tag_exclusions and not SUPPORTS_TAG_EXCLUSIONS:
            # Stricter than asked: every tag is immutable. Said in a tag, not hidden.
            tags["regguard:not-applied:immutable_tag_exclusions"] = "sdk-lacks-exclusions"

        self.kms_key = None
        kms_key_arn: pulumi.Input[str] | None = args.kms_key_arn
        if baseline.customer_managed_key and kms_key_arn is None:
            self.kms_key = aws.kms.Key(
                f"{name}-key",
                description=f"regguard: encrypts ECR repository {args.name}",
                enable_key_rotation=True,
                deletion_window_in_days=30,
                tags=tags,
                opts=child,
            )
            aws.kms.Alias(
                f"{name}-key-alias",
                # KMS alias names allow [a-zA-Z0-9/_-]; ECR names may hold `.`.
                name=f"alias/regguard/ecr/{args.name.replace('.', '-')}",
                target_key_id=self.kms_key.key_id,
                opts=child,
            )
            kms_key_arn = self.kms_key.arn

        encryption = (
            aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS", kms_key=kms_key_arn)
            if baseline.customer_managed_key
            else aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="AES256")
        )
        repository = aws.ecr.Repository(
            f"{name}-repo",
            name=args.name,
            image_tag_mutability=self.tag_mutability,
            encryption_configurations=[encryption],
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(
                scan_on_push=True
            ),
            force_delete=False,
            tags=tags,
            opts=child,
            **exclusion_inputs,
        )

        aws.ecr.LifecyclePolicy(
            f"{name}-lifecycle",
            repository=repository.name,
            policy=lifecycle_policy_document(baseline),
            opts=child,
        )

        policy = repository_policy_document(args.effective_pull_principals(), args.push_principals)
        if policy is not None:
            aws.ecr.RepositoryPolicy(
                f"{name}-policy", repository=repository.name, policy=policy, opts=child
            )

        self.repository_url = repository.repository_url
        self.arn = repository.arn
        self.name = repository.name
        self.register_outputs(
            {"repository_url": self.repository_url, "arn": self.arn, "name": self.name}
        )


def _tag_mutability(baseline: Baseline) -> tuple[str, dict[str, Any]]:
    """The `image_tag_mutability` value and, when the SDK supports it, the
    exclusion filters. Without SDK support exclusions fall back to IMMUTABLE."""
    if not baseline.immutable_tags:
        return "MUTABLE", {}
    if baseline.immutable_tag_exclusions and SUPPORTS_TAG_EXCLUSIONS:
        filters = [
            {"filter": f, "filter_type": "WILDCARD"} for f in baseline.immutable_tag_exclusions
        ]
        return "IMMUTABLE_WITH_EXCLUSION", {"image_tag_mutability_exclusion_filters": filters}
    return "IMMUTABLE", {}


# --------------------------------------------------------------------- stack config (the kind table's provisioner)

# Settings that exist once per account/region; a repository cannot change them.
REGISTRY_WIDE_FIELDS = frozenset({"scan_mode", "replicate_to"})
_REGISTRY_KEYS = frozenset(
    {
        "name",
        "kind",
        "baseline",
        "account_id",
        "replication_source_accounts",
        "pull_through_caches",
        "pull_principals",
        "push_principals",
        "tags",
        "repositories",
    }
)
_REPOSITORY_KEYS = frozenset({"name", "baseline", "pull_principals", "push_principals", "kms_key_arn", "tags"})
_CACHE_KEYS = frozenset({"ecr_repository_prefix", "upstream_registry_url", "credential_arn"})


@dataclass(frozen=True)
class EcrRegistrySpec:
    """One `kind: ecr` entry of `regguard:registries`: the registry-wide args,
    its repositories, and the region the stack's AWS provider targets."""

    name: str
    region: str
    registry: EcrRegistryArgs
    repositories: tuple[EcrRepositoryArgs, ...]

    def declare(self) -> dict[str, Any]:
        """The EcrRegistry and one EcrRepository per repository; their URLs by repository name."""
        registry = EcrRegistry(self.name, self.registry)
        urls: dict[str, Any] = {}
        for repo in self.repositories:
            resource_name = f"{self.name}-{repo.name.replace('/', '-')}"
            component = EcrRepository(resource_name, repo, pulumi.ResourceOptions(depends_on=[registry]))
            urls[repo.name] = component.repository_url
        return urls

    def audit_targets(self) -> list[dict[str, Any]]:
        target: dict[str, Any] = {
            "name": self.name,
            "kind": "ecr",
            "region": self.region,
            "repositories": [r.name for r in self.repositories],
        }
        public = [r.name for r in self.repositories if r.baseline.public]
        if public:
            target["public_repositories"] = public
        return [target]


def parse_registry(raw: Any, stack: StackContext, where: str, earlier: Sequence[Any] = ()) -> EcrRegistrySpec:
    """A `kind: ecr` entry -> its spec. An account/region has exactly one
    registry, so a stack holds at most one ecr entry (`earlier`: the specs
    parsed before this one)."""
    entry = sc.mapping(raw, where, _REGISTRY_KEYS)
    name = sc.require_str(entry.get("name"), f"{where}.name")
    if not re.match(sc.TARGET_NAME_PATTERN, name):
        raise StackConfigError(f"{where}.name: letters, digits, '.', '_' and '-' only")
    region = stack.provider_value("aws:region")
    overrides = sc.mapping(entry.get("baseline", {}), f"{where}.baseline", None)
    baseline = sc.baseline_for(stack.environment, overrides, f"{where}.baseline")
    caches = tuple(
        _cache(c, f"{where}.pull_through_caches[{i}]")
        for i, c in enumerate(sc.as_list(entry.get("pull_through_caches"), f"{where}.pull_through_caches"))
    )
    registry = sc.build(
        where,
        lambda: EcrRegistryArgs(
            baseline=baseline,
            region=region,
            account_id=sc.opt_str(entry.get("account_id"), f"{where}.account_id"),
            replication_source_accounts=sc.str_list(
                entry.get("replication_source_accounts"), f"{where}.replication_source_accounts", default=()
            ),
            pull_through_caches=caches,
        ),
    )
    defaults = {
        "pull_principals": _principals(entry, "pull_principals", where, allow_star=baseline.public),
        "push_principals": _principals(entry, "push_principals", where, allow_star=False),
        "tags": sc.tags_mapping(entry.get("tags"), f"{where}.tags"),
    }
    repos_raw = entry.get("repositories")
    if not isinstance(repos_raw, list) or not repos_raw:
        raise StackConfigError(f"{where}.repositories: expected a non-empty list of repositories")
    repositories = tuple(
        _parse_repository(item, stack.environment, overrides, defaults, f"{where}.repositories[{i}]")
        for i, item in enumerate(repos_raw)
    )
    sc.check_unique([r.name for r in repositories], f"{where}.repositories", "name")
    if any(isinstance(spec, EcrRegistrySpec) for spec in earlier):
        raise StackConfigError(
            f"{where}: one ecr registry per stack "
            "(an account/region has exactly one registry); use another stack for another region"
        )
    return EcrRegistrySpec(name, region, registry, repositories)


def _parse_repository(
    raw: Any, env: str, registry_overrides: Mapping[str, Any], defaults: Mapping[str, Any], where: str
) -> EcrRepositoryArgs:
    """A repository is a name, or a mapping that adds principals, tags and
    repository-level baseline overrides on top of the registry's."""
    entry = {"name": raw} if isinstance(raw, str) else sc.mapping(raw, where, _REPOSITORY_KEYS)
    name = sc.require_str(entry.get("name"), f"{where}.name")
    own = sc.mapping(entry.get("baseline", {}), f"{where}.baseline", None)
    for key in own:
        if key in REGISTRY_WIDE_FIELDS:
            raise StackConfigError(f"{where}.baseline.{key}: registry-wide setting; set it on the registry")
    baseline = sc.baseline_for(env, {**registry_overrides, **own}, f"{where}.baseline")
    own_pull = _principals(entry, "pull_principals", where, allow_star=baseline.public)
    own_push = _principals(entry, "push_principals", where, allow_star=False)
    pull = defaults["pull_principals"] + own_pull
    push = defaults["push_principals"] + own_push
    tags = {**defaults["tags"], **sc.tags_mapping(entry.get("tags"), f"{where}.tags")}
    return sc.build(
        where,
        lambda: EcrRepositoryArgs(
            name=name,
            baseline=baseline,
            environment=env,
            pull_principals=tuple(dict.fromkeys(pull)),
            push_principals=tuple(dict.fromkeys(push)),
            kms_key_arn=sc.opt_str(entry.get("kms_key_arn"), f"{where}.kms_key_arn"),
            tags=tags,
        ),
    )


def _principals(entry: Mapping[str, Any], key: str, where: str, *, allow_star: bool) -> tuple[str, ...]:
    """Check principals where they are written, so the error names that key."""
    found = sc.str_list(entry.get(key), f"{where}.{key}", default=())
    sc.build(where, lambda: check_principals(key, found, allow_star=allow_star))
    return found


def _cache(raw: Any, where: str) -> PullThroughCache:
    entry = sc.mapping(raw, where, _CACHE_KEYS)
    return sc.build(
        where,
        lambda: PullThroughCache(
            ecr_repository_prefix=sc.require_str(entry.get("ecr_repository_prefix"), f"{where}.ecr_repository_prefix"),
            upstream_registry_url=sc.require_str(entry.get("upstream_registry_url"), f"{where}.upstream_registry_url"),
            credential_arn=sc.opt_str(entry.get("credential_arn"), f"{where}.credential_arn"),
        ),
    )
