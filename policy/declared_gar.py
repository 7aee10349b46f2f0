"""GAR's policy-pack declarer: what a Pulumi stack *declares* for Artifact
Registry, as the same `TargetFacts` a live GAR audit produces, so the same
rules judge both.

Pure (no I/O, no engine, no Google SDK). Each declared
`gcp:artifactregistry/repository:Repository` becomes the settings mapping the
GAR collector builds from the API (`audits.collectors.gar_facts`), with the IAM
members of the `RepositoryIamMember` resources beside it, and the collector's
own normalization turns them into facts: a declared mutable repository and an
observed one are the very same fact.

Repository names are `<location>/<repositoryId>` (declared state has no images).
Labels carry the environment (`regguard-environment`) and the opt-outs
(`regguard-opt-out-<field>`). What GAR decides at run time — an unset
`dockerConfig.immutableTags` is mutable, an unset scanning config is inherited
(on) — is read as GAR documents it. Values known only after apply (a key
created in the same stack) make their fact `not_observable` at preview.
Endpoint, logging, credentials and the other facts declared state cannot show
are `not_observable`: manual, never a spurious error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from audits.collectors.gar_facts import (
    GAR_FACTS,
    ImageListing,
    RepositoryRecord,
    encryption_facts,
    immutability_facts,
    replication_facts,
    repository_facts,
    retention_facts,
    scanning_facts,
)
from audits.model import (
    ANONYMOUS_ACCESS,
    ENCRYPTION,
    REPLICATION,
    REPOSITORIES,
    RETENTION,
    SCANNING,
    TAG_IMMUTABILITY,
    Fact,
    Finding,
    TargetFacts,
    utcnow,
)
from audits.rules.registry import RuleContext
from audits.vocabulary import DEFAULT_FRAMEWORKS, is_production_environment
from policy.declared import DeclaredResource, Location, is_unknown

KIND = "gar"
REPOSITORY = "gcp:artifactregistry/repository:Repository"
IAM_MEMBER = "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember"
TYPE_PREFIX = "gcp:artifactregistry/"
MANAGED_REMEDIATION = (
    "Declare the repository with components.artifact_registry.ArtifactRegistryRepository "
    "instead of raw gcp.artifactregistry resources."
)
ENVIRONMENT_LABEL = "regguard-environment"
OPT_OUT_LABEL = "regguard-opt-out-"

DECLARED_STATE_RULES: tuple[str, ...] = (
    "RG-AUTH-001", "RG-ENC-001", "RG-REP-001", "RG-RET-001", "RG-SCAN-001", "RG-TAG-002",
)  # fmt: skip
OPT_OUT_FIELDS: Mapping[str, tuple[str, ...]] = {
    "RG-ENC-001": ("customer_managed_key",),
    "RG-REP-001": ("replicate_to",),
    "RG-RET-001": ("cleanup_dry_run",),
    "RG-TAG-002": ("immutable_tags",),
}
_AFTER_APPLY = "not known until apply (pulumi preview); judged again at `pulumi up`"
_NOT_DECLARED = "cannot be seen in declared state (Pulumi resource inputs); the live audit checks it"
_DECLARED_FACTS = (REPOSITORIES, TAG_IMMUTABILITY, RETENTION, ENCRYPTION, SCANNING, REPLICATION, ANONYMOUS_ACCESS)
# Endpoint, logging, credentials, admin account, content trust, pull counts, gcr.io redirection.
_FACTS_NOT_DECLARED = tuple(name for name in GAR_FACTS if name not in _DECLARED_FACTS)
_SCANNING_STATE = {"DISABLED": "SCANNING_DISABLED"}  # anything else: inherited from the project (on)


@dataclass(frozen=True)
class _Repo:
    resource: DeclaredResource
    name: str
    environment: str

    @property
    def labels(self) -> Mapping[str, str]:
        return _labels(self.resource)

    def opted_out(self, rule_id: str) -> bool:
        return any(f"{OPT_OUT_LABEL}{f}" in self.labels for f in OPT_OUT_FIELDS.get(rule_id, ()))


@dataclass(frozen=True)
class DeclaredStack:
    facts: TargetFacts
    context: RuleContext
    repositories: Mapping[str, _Repo]
    registry_environment: str

    def locate(self, finding: Finding) -> list[Location]:
        """A repository verdict lands on that repository, a registry-wide one on the stack."""
        repo = self.repositories.get(finding.resource)
        if repo is not None:
            return [Location(repo.resource.urn, repo.environment, repo.opted_out(finding.rule))]
        opted = bool(self.repositories) and all(r.opted_out(finding.rule) for r in self.repositories.values())
        return [Location(None, self.registry_environment, opted)]


class _Unknown(Exception):
    pass


def declare(
    resources: Sequence[DeclaredResource],
    *,
    frameworks: tuple[str, ...] = DEFAULT_FRAMEWORKS,
    at: datetime | None = None,
) -> DeclaredStack | None:
    """The stack's GAR facts, or None when it declares no GAR repository."""
    at = at or utcnow()
    repos = {_name(r): _Repo(r, _name(r), _labels(r).get(ENVIRONMENT_LABEL, "")) for r in resources
             if r.type == REPOSITORY}  # fmt: skip
    if not repos:
        return None
    members = _members(resources, repos)
    facts: dict[str, Fact[Any]] = {
        name: Fact.not_observable(_NOT_DECLARED, source="declared", at=at) for name in _FACTS_NOT_DECLARED
    }
    facts[ANONYMOUS_ACCESS] = Fact.managed("Google's endpoint; IAM members are judged per repository", "declared")
    try:
        records = [_record(repo, members.get(name, ())) for name, repo in repos.items()]
    except _Unknown as exc:
        unknown: Fact[Any] = Fact.not_observable(f"{exc} {_AFTER_APPLY}", source=f"declared {REPOSITORY}", at=at)
        facts.update({n: unknown for n in _DECLARED_FACTS if n != ANONYMOUS_ACCESS})
    else:
        public = [name for name, r in repos.items() if r.labels.get(f"{OPT_OUT_LABEL}public") == "true"]
        source = f"declared {REPOSITORY}"
        facts.update({
            REPOSITORIES: Fact.ok(repository_facts(records, public), f"declared {REPOSITORY}, {IAM_MEMBER}", at),
            TAG_IMMUTABILITY: Fact.ok(immutability_facts(records), source, at),
            RETENTION: Fact.ok(retention_facts(records), source, at),
            ENCRYPTION: Fact.ok(encryption_facts(records), source, at),
            SCANNING: Fact.ok(scanning_facts(records), source, at),
            REPLICATION: Fact.ok(replication_facts(records), source, at),
        })  # fmt: skip
    envs = {r.environment for r in repos.values() if r.environment}
    label = "prod" if any(is_production_environment(e) for e in envs) else (envs.pop() if len(envs) == 1 else "")
    target = "pulumi:gar"
    context = RuleContext(environment=label or "unknown", frameworks=frameworks, target_name=target,
                          target_kind=KIND, now=at)  # fmt: skip
    return DeclaredStack(
        facts=TargetFacts(target=target, kind=KIND, facts=facts, started_at=at, finished_at=at),
        context=context,
        repositories=repos,
        registry_environment=label,
    )


def _labels(resource: DeclaredResource) -> Mapping[str, str]:
    labels = resource.props.get("labels")
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {}


def _name(resource: DeclaredResource) -> str:
    location, repo_id = resource.props.get("location"), resource.props.get("repositoryId")
    if isinstance(location, str) and isinstance(repo_id, str) and not (is_unknown(location) or is_unknown(repo_id)):
        return f"{location}/{repo_id}"
    return resource.name


def _members(resources: Sequence[DeclaredResource], repos: Mapping[str, _Repo]) -> dict[str, tuple[str, ...]]:
    """IAM members by repository: a member inside the same component as a
    repository belongs to it (at preview its `repository` input may be unknown),
    else the one whose location/id it names."""
    by_parent = {r.resource.parent_urn: name for name, r in repos.items() if r.resource.parent_urn}
    out: dict[str, list[str]] = {}
    for resource in resources:
        if resource.type != IAM_MEMBER or is_unknown(resource.props.get("member")):
            continue
        named = f"{resource.props.get('location')}/{resource.props.get('repository')}"
        name = by_parent.get(resource.parent_urn) or named
        out.setdefault(name, []).append(str(resource.props.get("member")))
    return {k: tuple(v) for k, v in out.items()}


def _known(value: Any, where: str) -> Any:
    if is_unknown(value):
        raise _Unknown(where)
    return value


def _record(repo: _Repo, members: tuple[str, ...]) -> RepositoryRecord:
    props = repo.resource.props
    docker = props.get("dockerConfig") if isinstance(props.get("dockerConfig"), Mapping) else {}
    scanning = props.get("vulnerabilityScanningConfig")
    enablement = scanning.get("enablementConfig") if isinstance(scanning, Mapping) else None
    remote = props.get("remoteRepositoryConfig") if isinstance(props.get("remoteRepositoryConfig"), Mapping) else {}
    upstream = (remote.get("upstreamCredentials") or {}).get("usernamePasswordCredentials") or {}
    settings = {
        "name": repo.name,
        "resource": repo.resource.urn,
        "mode": props.get("mode") or "STANDARD_REPOSITORY",
        "immutable_tags": bool(_known(docker.get("immutableTags"), f"{repo.name}.dockerConfig.immutableTags")),
        "cleanup_policies": {str(p.get("id")): _cleanup(p) for p in props.get("cleanupPolicies") or ()
                             if isinstance(p, Mapping)},  # fmt: skip
        "cleanup_dry_run": bool(props.get("cleanupPolicyDryRun")),
        "kms_key_name": _known(props.get("kmsKeyName"), f"{repo.name}.kmsKeyName") or None,
        "scanning_state": _SCANNING_STATE.get(str(enablement), "SCANNING_ACTIVE"),
        "upstream_username": upstream.get("username", ""),
        "upstream_secret": upstream.get("passwordSecretVersion", ""),
    }
    return RepositoryRecord(repository=settings, images=ImageListing(()), members=members)


def _cleanup(policy: Mapping[str, Any]) -> dict[str, Any]:
    """A declared cleanup policy (camelCase) in the shape the collector summarizes."""
    recent = policy.get("mostRecentVersions") or {}
    condition = policy.get("condition") or {}
    return {
        "action": policy.get("action", ""),
        "most_recent_versions": {"keep_count": recent.get("keepCount")} if recent else None,
        "condition": {"tag_state": condition.get("tagState", "ANY"), "older_than": condition.get("olderThan")},
    }
