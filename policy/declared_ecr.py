"""ECR's policy-pack declarer: what a Pulumi stack *declares* for ECR, as the
same `TargetFacts` a live ECR audit produces, so the same rules judge both.

Input is the list of resources CrossGuard hands a stack policy
(`StackValidationArgs.resources`: type token, camelCase props, URN, name,
parent) or, in tests, what `tests/pulumi/mocks.py` records. Everything here
is pure: no I/O, no Pulumi engine, no AWS SDK; the settings are normalized by
the pure helpers the ECR collector itself uses (`audits.collectors.ecr_facts`:
`immutability_setting`, `encryption_setting`, `grants_anonymous_pull`,
`scanning_facts`, `summarize_lifecycle`) so a declared `MUTABLE` and an
observed `MUTABLE` become the very same fact.

What declared state can show, and how:

* REPOSITORIES: every `aws:ecr/repository:Repository` (its `name` input, else
  its logical name); `declared_public` from the `regguard:opt-out:public` tag;
  `anonymous_pull` from the linked `RepositoryPolicy` (Principal `*`).
* TAG_IMMUTABILITY: `imageTagMutability` (+ exclusion filters); absent means
  AWS's default, MUTABLE.
* SCANNING: the declared registry scanning configuration(s), else the legacy
  per-repository `scanOnPush` flag.
* RETENTION: `LifecyclePolicy` resources linked to their repository: first by
  sharing the repository's parent component (at preview the `repository`
  input is often unknown), then by the `repository` name.
* ENCRYPTION: `encryptionConfigurations`; KMS with a key other than the AWS
  managed `aws/ecr` one is a customer key.
* REPLICATION: declared replication configuration(s); none means off.
* ANONYMOUS_ACCESS is `managed`: the ECR endpoint is AWS's and always wants a
  signed token; only repository policies open a repository (judged above).

Everything else (TLS, plain HTTP, endpoint, logging, network exposure,
credentials, admin account, content trust, pull counts) cannot be seen in
declared state and is `not_observable`, so even a rule outside
`DECLARED_STATE_RULES` becomes `manual`, never a spurious `error`.

A value Pulumi does not know yet at preview (an output of a resource still to
be created) makes the fact that needs it `not_observable` ("known after
apply"): preview stays quiet and the policies judge again at `pulumi up`,
when CrossGuard hands them the real values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from audits.collectors.ecr_facts import (
    encryption_setting,
    grants_anonymous_pull,
    immutability_setting,
    replication_facts,
    scanning_facts,
    summarize_lifecycle,
)
from audits.model import (
    ADMIN_ACCOUNT,
    ANONYMOUS_ACCESS,
    CONTENT_TRUST,
    CREDENTIALS,
    ENCRYPTION,
    ENDPOINT,
    LOGGING,
    NETWORK_EXPOSURE,
    PLAIN_HTTP,
    PULL_COUNTS,
    REPLICATION,
    REPOSITORIES,
    RETENTION,
    SCANNING,
    TAG_IMMUTABILITY,
    TLS,
    EncryptionFacts,
    EncryptionSetting,
    Fact,
    Finding,
    ImmutabilitySetting,
    ReplicationFacts,
    RepositoryFacts,
    RetentionFacts,
    TagImmutabilityFacts,
    TargetFacts,
    utcnow,
)
from audits.rules.registry import RuleContext
from audits.vocabulary import DEFAULT_FRAMEWORKS, is_production_environment
from policy.declared import (
    COMPONENT_PREFIX,
    ENVIRONMENT_TAG,
    OPT_OUT_PREFIX,
    DeclaredResource,
    Location,
    UnknownAtPreview,
    is_unknown,
    known,
    parent_type,
    stack_label,
)

KIND = "ecr"

REPOSITORY = "aws:ecr/repository:Repository"
LIFECYCLE_POLICY = "aws:ecr/lifecyclePolicy:LifecyclePolicy"
REPOSITORY_POLICY = "aws:ecr/repositoryPolicy:RepositoryPolicy"
SCANNING_CONFIGURATION = "aws:ecr/registryScanningConfiguration:RegistryScanningConfiguration"
REPLICATION_CONFIGURATION = "aws:ecr/replicationConfiguration:ReplicationConfiguration"
KMS_KEY = "aws:kms/key:Key"
ECR_TYPE_PREFIX = "aws:ecr/"
TYPE_PREFIX = ECR_TYPE_PREFIX  # the resource types this declarer reads (unmanaged ones are reported)
MANAGED_REMEDIATION = (
    "Declare the repository with components.ecr.EcrRepository "
    "(and registry settings with EcrRegistry) instead of raw aws.ecr resources."
)
REGISTRY_COMPONENT = "regguard:ecr:EcrRegistry"


# The rules whose facts declared state can show. Left out on purpose:
# RG-TLS-*, RG-AUTH-002 (endpoint/transport), RG-AUTH-003 and RG-CRED-* (IAM
# identities and keys, not declared by our components), RG-TAG-001/003,
# RG-SCAN-002, RG-SIGN-* (image content), RG-MON-* (CloudTrail and pull
# counts), RG-NET-001 (VPC endpoints), RG-FIT-001 (use cases), RG-SRC-*
# (image references).
DECLARED_STATE_RULES: tuple[str, ...] = (
    "RG-AUTH-001",
    "RG-ENC-001",
    "RG-REP-001",
    "RG-RET-001",
    "RG-SCAN-001",
    "RG-TAG-002",
)

# Baseline fields whose explicit `regguard:opt-out:<field>` tag covers a
# failure of the rule (see policy/README.md, "Opt-outs").
# Only opt-outs that can make the rule fail are listed: `public` already
# passes RG-AUTH-001 (declared_public), `scan_on_push` passes RG-SCAN-001,
# and the baseline refuses exclusions that would cover a release tag.
OPT_OUT_FIELDS: Mapping[str, tuple[str, ...]] = {
    "RG-ENC-001": ("customer_managed_key",),
    "RG-REP-001": ("replicate_to",),
    "RG-TAG-002": ("immutable_tags",),
}

# Registry-wide verdicts point at the resource that holds the setting.
_ANCHOR_TYPES: Mapping[str, str] = {
    "RG-SCAN-001": SCANNING_CONFIGURATION,
    "RG-REP-001": REPLICATION_CONFIGURATION,
}

_AFTER_APPLY = "not known until apply (pulumi preview); judged again at `pulumi up`"
_NOT_DECLARED = "cannot be seen in declared state (Pulumi resource inputs); the live audit checks it"
_FACTS_NOT_DECLARED = (
    ENDPOINT,
    TLS,
    PLAIN_HTTP,
    LOGGING,
    NETWORK_EXPOSURE,
    CREDENTIALS,
    ADMIN_ACCOUNT,
    CONTENT_TRUST,
    PULL_COUNTS,
)


# --------------------------------------------------------------------------
# Where a finding lands
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Repo:
    resource: DeclaredResource
    name: str
    environment: str


@dataclass(frozen=True)
class DeclaredStack:
    """One stack's declared ECR state as facts, with the context to judge them
    in and the map back from a finding to the resources it is about."""

    facts: TargetFacts
    context: RuleContext
    repositories: Mapping[str, _Repo]
    anchors: Mapping[str, str]  # rule id -> URN of the resource holding a registry-wide setting
    registry_environment: str

    def locate(self, finding: Finding) -> list[Location]:
        """A repository verdict lands on that repository; a registry-wide one
        on each uncovered repository it lists, else on the resource holding
        the setting (or the stack when there is none)."""
        repo = self.repositories.get(finding.resource)
        if repo is not None:
            return [self._at(repo, finding.rule)]
        listed = [self.repositories.get(str(n)) for n in finding.evidence.get("uncovered_repositories", ())]
        if listed and all(r is not None for r in listed):
            return [self._at(r, finding.rule) for r in listed if r is not None]
        opted = bool(self.repositories) and all(
            _opted_out(r.resource, finding.rule) for r in self.repositories.values()
        )
        return [Location(self.anchors.get(finding.rule), self.registry_environment, opted)]

    def _at(self, repo: _Repo, rule_id: str) -> Location:
        return Location(repo.resource.urn, repo.environment, _opted_out(repo.resource, rule_id))


def _opted_out(resource: DeclaredResource, rule_id: str) -> bool:
    tags = resource.tags
    return any(f"{OPT_OUT_PREFIX}{field}" in tags for field in OPT_OUT_FIELDS.get(rule_id, ()))


# --------------------------------------------------------------------------
# Building the facts
# --------------------------------------------------------------------------


_Unknown = UnknownAtPreview  # a value needed for a fact is not known yet (preview)
_known = known
_target_name = stack_label


def declare(
    resources: Sequence[DeclaredResource],
    *,
    frameworks: tuple[str, ...] = DEFAULT_FRAMEWORKS,
    at: datetime | None = None,
) -> DeclaredStack | None:
    """The stack's ECR facts, or None when it declares no ECR repository
    (then no ECR rule applies). `frameworks` only sets RG-ENC-001's severity."""
    at = at or utcnow()
    by_urn = {r.urn: r for r in resources}
    raw_repos = [r for r in resources if r.type == REPOSITORY]
    if not raw_repos:
        return None
    stack_env = _stack_environment(resources)
    repos = {_repo_name(r): _Repo(r, _repo_name(r), _environment(r, resources, by_urn, stack_env)) for r in raw_repos}
    target = _target_name(resources)
    lifecycle = _linked(resources, LIFECYCLE_POLICY, repos)
    policies = _linked(resources, REPOSITORY_POLICY, repos)
    facts: dict[str, Fact[Any]] = {
        REPOSITORIES: Fact.ok(_repositories(repos, policies), _source(REPOSITORY, REPOSITORY_POLICY), at),
        ANONYMOUS_ACCESS: Fact.managed(
            "the ECR endpoint is run by AWS and always requires a signed token; "
            "only repository policies can open a repository (judged per repository)",
            source="declared",
            at=at,
        ),
        TAG_IMMUTABILITY: _guarded(lambda: _immutability(repos), _source(REPOSITORY), at),
        SCANNING: _guarded(lambda: _scanning(resources, repos), _source(SCANNING_CONFIGURATION, REPOSITORY), at),
        RETENTION: _guarded(lambda: _retention(repos, lifecycle), _source(LIFECYCLE_POLICY), at),
        ENCRYPTION: _guarded(lambda: _encryption(repos, resources), _source(REPOSITORY), at),
        REPLICATION: _guarded(lambda: _replication(resources), _source(REPLICATION_CONFIGURATION), at),
    }
    for name in _FACTS_NOT_DECLARED:
        facts[name] = Fact.not_observable(_NOT_DECLARED, source="declared", at=at)
    envs = {r.environment for r in repos.values()}
    label = envs.pop() if len(envs) == 1 else ("mixed" if envs else "")
    prod_repos = tuple(sorted(n for n, r in repos.items() if is_production_environment(r.environment)))
    context = RuleContext(
        environment=label or "unknown",
        frameworks=frameworks,
        production_patterns=() if is_production_environment(label) else prod_repos,
        target_name=target,
        target_kind=KIND,
        now=at,
    )
    return DeclaredStack(
        facts=TargetFacts(target=target, kind=KIND, facts=facts, started_at=at, finished_at=at),
        context=context,
        repositories=repos,
        anchors=_anchors(resources),
        registry_environment="prod" if prod_repos else (label or stack_env),
    )


def _source(*types: str) -> str:
    return "declared " + ", ".join(types)


def _guarded(build: Callable[[], Any], source: str, at: datetime) -> Fact[Any]:
    """`ok` with the built value, or `not_observable` when a needed input is
    only known after apply."""
    try:
        return Fact.ok(build(), source, at)
    except _Unknown as exc:
        return Fact.not_observable(f"{exc} {_AFTER_APPLY}", source=source, at=at)


def _repo_name(resource: DeclaredResource) -> str:
    name = resource.props.get("name")
    return name if isinstance(name, str) and name and not is_unknown(name) else resource.name


def _stack_environment(resources: Sequence[DeclaredResource]) -> str:
    """The stack's environment from the `regguard:environment` tags: prod if
    any resource says prod (the strictest wins), else the one value they
    agree on, else "" (nothing tagged: unknown, treated as non-prod)."""
    envs = {r.tags[ENVIRONMENT_TAG] for r in resources if ENVIRONMENT_TAG in r.tags}
    if any(is_production_environment(e) for e in envs):
        return "prod"
    return envs.pop() if len(envs) == 1 else ""


def _environment(
    resource: DeclaredResource,
    resources: Sequence[DeclaredResource],
    by_urn: Mapping[str, DeclaredResource],
    stack_env: str,
) -> str:
    """Own tag, else a tagged sibling inside the same regguard component,
    else the stack's environment."""
    own = resource.tags.get(ENVIRONMENT_TAG)
    if own:
        return own
    if parent_type(resource, by_urn).startswith(COMPONENT_PREFIX):
        for other in resources:
            if other.parent_urn == resource.parent_urn and ENVIRONMENT_TAG in other.tags:
                return other.tags[ENVIRONMENT_TAG]
    return stack_env


def _linked(
    resources: Sequence[DeclaredResource], type_token: str, repos: Mapping[str, _Repo]
) -> dict[str, DeclaredResource]:
    """repository name -> the `type_token` resource attached to it: the only
    repository under the same parent component first (the `repository` input
    is often unknown at preview), then the `repository` input by name."""
    by_parent: dict[str, list[_Repo]] = {}
    for repo in repos.values():
        by_parent.setdefault(repo.resource.parent_urn, []).append(repo)
    linked: dict[str, DeclaredResource] = {}
    for r in resources:
        if r.type != type_token:
            continue
        siblings = by_parent.get(r.parent_urn, []) if r.parent_urn else []
        target = r.props.get("repository")
        if len(siblings) == 1:
            linked[siblings[0].name] = r
        elif isinstance(target, str) and target in repos:
            linked[target] = r
    return linked


def _repositories(repos: Mapping[str, _Repo], policies: Mapping[str, DeclaredResource]) -> tuple[RepositoryFacts, ...]:
    out = []
    for name, repo in sorted(repos.items()):
        policy = policies.get(name)
        document = policy.props.get("policy") if policy is not None else None
        if policy is None:
            anonymous: bool | None = False  # no repository policy declared: nothing opens it
        elif isinstance(document, (str, Mapping)) and not _has_unknown(document):
            anonymous = grants_anonymous_pull(document)
        else:
            anonymous = None  # policy text known after apply: not judged at preview
        out.append(
            RepositoryFacts(
                name=name,
                anonymous_pull=anonymous,
                declared_public=repo.resource.tags.get(f"{OPT_OUT_PREFIX}public") == "true",
                source=repo.resource.urn,
            )
        )
    return tuple(out)


def _has_unknown(value: Any) -> bool:
    try:
        _known(value, "")
    except _Unknown:
        return True
    return False


def _immutability(repos: Mapping[str, _Repo]) -> TagImmutabilityFacts:
    settings: dict[str, ImmutabilitySetting] = {}
    for name, repo in repos.items():
        props = repo.resource.props
        mutability = _known(props.get("imageTagMutability") or "MUTABLE", f"{name}: imageTagMutability")
        filters = _known(
            props.get("imageTagMutabilityExclusionFilters") or [],
            f"{name}: imageTagMutabilityExclusionFilters",
        )
        settings[name] = immutability_setting(
            {"imageTagMutability": mutability, "imageTagMutabilityExclusionFilters": filters}
        )
    return TagImmutabilityFacts(by_repository=settings)


def _scanning(resources: Sequence[DeclaredResource], repos: Mapping[str, _Repo]) -> Any:
    """The declared registry scanning configuration(s) (rules merged) plus
    each repository's legacy `scanOnPush`. No configuration declared is
    ECR's default: BASIC with no rules."""
    configs = [r for r in resources if r.type == SCANNING_CONFIGURATION]
    rules: list[Any] = []
    scan_types: set[str] = set()
    for c in configs:
        scan_types.add(str(_known(c.props.get("scanType", "BASIC"), f"{c.name}: scanType")))
        rules.extend(_known(c.props.get("rules") or [], f"{c.name}: rules"))
    scan_type = "ENHANCED" if scan_types == {"ENHANCED"} else "BASIC"
    listing = [
        {
            "repositoryName": name,
            "imageScanningConfiguration": _known(
                repo.resource.props.get("imageScanningConfiguration") or {},
                f"{name}: imageScanningConfiguration",
            ),
        }
        for name, repo in sorted(repos.items())
    ]
    return scanning_facts({"scanType": scan_type, "rules": rules}, listing)  # type: ignore[arg-type]


def _retention(repos: Mapping[str, _Repo], lifecycle: Mapping[str, DeclaredResource]) -> RetentionFacts:
    by_repo: dict[str, str] = {}
    for name, policy in lifecycle.items():
        text = policy.props.get("policy")
        known = isinstance(text, str) and not is_unknown(text)
        by_repo[name] = summarize_lifecycle(text) if known else "lifecycle policy (text known after apply)"  # type: ignore[arg-type]
    uncovered = tuple(sorted(n for n in repos if n not in by_repo))
    return RetentionFacts(registry_wide=None, by_repository=by_repo, uncovered_repositories=uncovered)


def _encryption(repos: Mapping[str, _Repo], resources: Sequence[DeclaredResource]) -> EncryptionFacts:
    """Per repository; a KMS key ARN still unknown at preview counts as a
    customer key only when that repository's component declares the key."""
    settings: dict[str, EncryptionSetting] = {}
    for name, repo in repos.items():
        configs = _known_shallow(repo.resource.props.get("encryptionConfigurations") or [], name)
        first = _known_shallow(configs[0], name) if isinstance(configs, list) and configs else {}
        config = dict(first) if isinstance(first, Mapping) else {}
        key = config.get("kmsKey")
        if is_unknown(key):
            if not _declares_key(repo.resource, resources):
                raise _Unknown(f"{name}: encryptionConfigurations[0].kmsKey")
            settings[name] = EncryptionSetting(
                customer_managed=True,
                key_id=None,
                detail=f"{config.get('encryptionType', 'KMS')} customer key declared in this stack",
            )
            continue
        config = _known(config, f"{name}: encryptionConfigurations[0]")
        settings[name] = encryption_setting({"encryptionConfiguration": config})
    return EncryptionFacts(by_repository=settings)


def _known_shallow(value: Any, name: str) -> Any:
    if is_unknown(value):
        raise _Unknown(f"{name}: encryptionConfigurations")
    return value


def _declares_key(repo: DeclaredResource, resources: Sequence[DeclaredResource]) -> bool:
    return any(r.type == KMS_KEY and r.parent_urn == repo.parent_urn and repo.parent_urn for r in resources)


def _replication(resources: Sequence[DeclaredResource]) -> ReplicationFacts:
    rules: list[Mapping[str, Any]] = []
    for config in (r for r in resources if r.type == REPLICATION_CONFIGURATION):
        body = config.props.get("replicationConfiguration") or {}
        rules += _known(body, f"{config.name}: replicationConfiguration").get("rules") or []
    return replication_facts(rules, none_detail="no replication configuration declared")


def _anchors(resources: Sequence[DeclaredResource]) -> dict[str, str]:
    """rule id -> URN holding the registry-wide setting: the declared
    configuration of that kind, else the only EcrRegistry component."""
    registries = [r for r in resources if r.type == REGISTRY_COMPONENT]
    fallback = registries[0].urn if len(registries) == 1 else None
    anchors: dict[str, str] = {}
    for rule_id in DECLARED_STATE_RULES:
        holders = [r for r in resources if r.type == _ANCHOR_TYPES.get(rule_id)]
        urn = holders[0].urn if len(holders) == 1 else fallback
        if urn is not None:
            anchors[rule_id] = urn
    return anchors
