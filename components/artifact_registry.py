"""Google Artifact Registry components: the shared Baseline translated into
`gcp.artifactregistry.Repository` and its neighbours (pulumi-gcp).

`ArtifactRegistryRepository` is one hardened Docker repository: immutable tags,
cleanup policies from the baseline (keep the last N, delete untagged older than
D days; never dry-run in prod), a customer-managed key (an existing one, or a key
ring and key with rotation created here — CMEK cannot be added later, so a
baseline that wants a customer key refuses a repository without one),
vulnerability scanning on, IAM members for readers/writers that are never
`allUsers`/`allAuthenticatedUsers` (unless the baseline is explicitly public),
optionally a remote (pull-through) repository whose upstream credential comes
from Secret Manager, optionally a `gcr.io`-domain repository. Labels show every
opt-out. `ArtifactRegistryProject` turns on Data Access audit logs for the
service (prod).

GAR has no tag-immutability exclusions: a baseline's exclusions (dev's `dev-*`)
are dropped, which is stricter, and the label `regguard-note` says so.
Replication is the location: a multi-region location (`us`, `europe`, `asia`)
stores every image in several regions; AWS-style `replicate_to` regions do not
apply, so a prod GAR stack sets `replicate_to: []` and uses a multi-region location.

It is also GAR's provisioner in the kind table: `parse_registry` reads a
`kind: gar` entry of `regguard:registries`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_gcp as gcp

from audits.collectors.gar_facts import MULTI_REGIONS, PUBLIC_MEMBERS, SERVICE
from audits.vocabulary import is_production_environment
from components import stack_config as sc
from components.baseline import Baseline
from components.stack_config import StackConfigError, StackContext

READER_ROLE = "roles/artifactregistry.reader"
WRITER_ROLE = "roles/artifactregistry.writer"
KEY_ROTATION = "7776000s"  # 90 days
GCR_DOMAINS = {"us": "us.gcr.io", "europe": "eu.gcr.io", "asia": "asia.gcr.io"}
_MEMBER_RE = re.compile(r"^(user|group|serviceAccount|domain|principal|principalSet):\S+$")
_REPOSITORY_ID_RE = re.compile(r"^[a-z]([a-z0-9-]*[a-z0-9])?$")
_SECRET_VERSION_RE = re.compile(r"^projects/[^/]+/secrets/[^/]+/versions/[^/]+$")
_LABEL_BAD = re.compile(r"[^a-z0-9_-]")


@dataclass(frozen=True)
class RemoteUpstream:
    """A pull-through repository's upstream and its credential in Secret Manager."""

    username: str
    password_secret_version: str  # projects/<p>/secrets/<s>/versions/<n>
    public_repository: str = "DOCKER_HUB"

    def __post_init__(self) -> None:
        if not _SECRET_VERSION_RE.match(self.password_secret_version):
            raise ValueError("password_secret_version: expected projects/<p>/secrets/<s>/versions/<n>")


@dataclass(frozen=True)
class ArtifactRegistryRepositoryArgs:
    """One Docker repository. `kms_key_name` names an existing key; `create_kms_key`
    creates a key ring and key with 90-day rotation and grants the project's
    Artifact Registry service agent (needs `project_number`) use of it."""

    repository_id: str
    location: str
    project: str
    baseline: Baseline = field(default_factory=Baseline)
    environment: str = "dev"
    kms_key_name: str | None = None
    create_kms_key: bool = False
    project_number: str | None = None
    readers: tuple[str, ...] = ()
    writers: tuple[str, ...] = ()
    remote: RemoteUpstream | None = None
    gcr_domain: bool = False
    cleanup_dry_run: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.gcr_domain and not _REPOSITORY_ID_RE.match(self.repository_id):
            raise ValueError("repository_id: lower-case letters, digits and '-', starting with a letter")
        if self.gcr_domain and self.location not in GCR_DOMAINS:
            raise ValueError(f"gcr_domain: gcr.io repositories live in {', '.join(GCR_DOMAINS)}")
        check_members("readers", self.readers, allow_public=self.baseline.public)
        check_members("writers", self.writers, allow_public=False)
        if self.baseline.customer_managed_key and not (self.kms_key_name or self.create_kms_key):
            raise ValueError(
                "kms_key_name: the baseline wants a customer-managed key and GAR cannot add one later; "
                "name a key or set create_kms_key"
            )
        if self.kms_key_name and self.create_kms_key:
            raise ValueError("create_kms_key: a key is already named in kms_key_name")
        if self.create_kms_key and not self.project_number:
            raise ValueError("project_number: needed to grant the Artifact Registry service agent the new key")
        if self.cleanup_dry_run and is_production_environment(self.environment):
            raise ValueError("cleanup_dry_run: prod cleanup policies must delete (dry run is an opt-out for non-prod)")

    @property
    def gar_id(self) -> str:
        return GCR_DOMAINS[self.location] if self.gcr_domain else self.repository_id


def check_members(key: str, members: Sequence[str], *, allow_public: bool) -> None:
    for member in members:
        if member in PUBLIC_MEMBERS:
            if not allow_public:
                raise ValueError(f"{key}: {member} would make the repository public (set baseline public: true)")
        elif not _MEMBER_RE.match(member):
            raise ValueError(f"{key}: {member!r} is not an IAM member like group:team@example.com")


def cleanup_policies(baseline: Baseline) -> list[dict[str, Any]]:
    """The baseline's retention as GAR cleanup policies (pure; tests and the policy pack read it)."""
    return [
        {"id": "keep-recent", "action": "KEEP", "most_recent_versions": {"keep_count": baseline.keep_last}},
        {
            "id": "delete-untagged",
            "action": "DELETE",
            "condition": {"tag_state": "UNTAGGED", "older_than": f"{baseline.expire_untagged_days * 86400}s"},
        },
    ]


def labels_for(args: ArtifactRegistryRepositoryArgs) -> dict[str, str]:
    """GCP labels (lower case, digits, `_`/`-`, 63 characters): managed-by,
    the environment and one `regguard-opt-out-<field>` per opt-out."""
    out = {"regguard-managed": "true", "regguard-environment": _label(args.environment)}
    for name, value in args.baseline.opt_outs().items():
        if name == "replicate_to" and args.location in MULTI_REGIONS:
            continue  # the multi-region location is the replication
        if name == "immutable_tag_exclusions":
            out["regguard-note"] = "no-tag-exclusions-in-gar"
            continue
        out[_label(f"regguard-opt-out-{name}")] = _label(value)
    if args.cleanup_dry_run:
        out["regguard-opt-out-cleanup_dry_run"] = "true"
    return {**{_label(k): _label(v) for k, v in args.labels.items()}, **out}


def _label(value: str) -> str:
    return _LABEL_BAD.sub("_", value.lower())[:63] or "_"


class ArtifactRegistryRepository(pulumi.ComponentResource):
    """A hardened GAR Docker repository (see the module docstring)."""

    def __init__(
        self, name: str, args: ArtifactRegistryRepositoryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("regguard:artifact_registry:ArtifactRegistryRepository", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        kms_key_name: pulumi.Input[str] | None = args.kms_key_name
        grant: list[pulumi.Resource] = []
        if args.create_kms_key:
            ring = gcp.kms.KeyRing(f"{name}-ring", name=f"{args.gar_id.replace('.', '-')}-registry",
                                   location=args.location, project=args.project, opts=child)  # fmt: skip
            key = gcp.kms.CryptoKey(f"{name}-key", name="images", key_ring=ring.id, rotation_period=KEY_ROTATION,
                                    opts=child)  # fmt: skip
            agent = f"serviceAccount:service-{args.project_number}@gcp-sa-artifactregistry.iam.gserviceaccount.com"
            grant.append(gcp.kms.CryptoKeyIAMMember(f"{name}-key-agent", crypto_key_id=key.id, member=agent,
                                                    role="roles/cloudkms.cryptoKeyEncrypterDecrypter", opts=child))
            kms_key_name = key.id
        self.repository = gcp.artifactregistry.Repository(
            name,
            project=args.project,
            location=args.location,
            repository_id=args.gar_id,
            format="DOCKER",
            mode="REMOTE_REPOSITORY" if args.remote else "STANDARD_REPOSITORY",
            docker_config={"immutable_tags": args.baseline.immutable_tags},
            cleanup_policies=cleanup_policies(args.baseline),
            cleanup_policy_dry_run=args.cleanup_dry_run,
            kms_key_name=kms_key_name,
            vulnerability_scanning_config={"enablement_config": "INHERITED"},
            remote_repository_config=_remote(args.remote),
            labels=labels_for(args),
            opts=pulumi.ResourceOptions(parent=self, depends_on=grant),
        )
        for role, members in ((READER_ROLE, args.readers), (WRITER_ROLE, args.writers)):
            for i, member in enumerate(members):
                gcp.artifactregistry.RepositoryIamMember(
                    f"{name}-{role.rsplit('.', 1)[-1]}-{i}", project=args.project, location=args.location,
                    repository=self.repository.name, role=role, member=member, opts=child,
                )  # fmt: skip
        self.register_outputs({"repository_id": self.repository.name})


def _remote(remote: RemoteUpstream | None) -> dict[str, Any] | None:
    if remote is None:
        return None
    return {
        "description": f"pull-through cache of {remote.public_repository}",
        "docker_repository": {"public_repository": remote.public_repository},
        "upstream_credentials": {
            "username_password_credentials": {
                "username": remote.username,
                "password_secret_version": remote.password_secret_version,
            }
        },
    }


@dataclass(frozen=True)
class ArtifactRegistryProjectArgs:
    project: str
    data_access_logs: bool = True


class ArtifactRegistryProject(pulumi.ComponentResource):
    """Project-wide settings: Data Access audit logs (reads and writes) for Artifact Registry."""

    def __init__(
        self, name: str, args: ArtifactRegistryProjectArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("regguard:artifact_registry:ArtifactRegistryProject", name, None, opts)
        if args.data_access_logs:
            gcp.projects.IAMAuditConfig(
                f"{name}-data-access",
                project=args.project,
                service=SERVICE,
                audit_log_configs=[{"log_type": "DATA_READ"}, {"log_type": "DATA_WRITE"}],
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs({})


# ---- provisioner: a `kind: gar` entry of regguard:registries ----------------------

_REGISTRY_KEYS = frozenset(
    {"name", "kind", "project", "project_number", "location", "baseline", "readers", "writers", "repositories",
     "data_access_logs", "labels"}
)  # fmt: skip
_REPOSITORY_KEYS = frozenset(
    {"id", "location", "baseline", "readers", "writers", "kms_key_name", "create_kms_key", "remote", "gcr_domain",
     "cleanup_dry_run", "labels"}
)  # fmt: skip
_REMOTE_KEYS = frozenset({"username", "password_secret_version", "public_repository"})


@dataclass(frozen=True)
class GarRegistrySpec:
    name: str
    project: ArtifactRegistryProjectArgs
    repositories: tuple[ArtifactRegistryRepositoryArgs, ...]

    def declare(self) -> dict[str, Any]:
        project = ArtifactRegistryProject(self.name, self.project)
        urls: dict[str, Any] = {}
        for repo in self.repositories:
            ArtifactRegistryRepository(f"{self.name}-{repo.location}-{repo.gar_id.replace('.', '-')}", repo,
                                       pulumi.ResourceOptions(depends_on=[project]))  # fmt: skip
            urls[f"{repo.location}/{repo.gar_id}"] = f"{repo.location}-docker.pkg.dev/{repo.project}/{repo.gar_id}"
        return urls

    def audit_targets(self) -> list[dict[str, Any]]:
        return [
            {
                "name": self.name,
                "kind": "gar",
                "project": self.project.project,
                "locations": sorted({r.location for r in self.repositories}),
                "repositories": [f"{r.location}/{r.gar_id}" for r in self.repositories],
            }
        ]


def parse_registry(raw: Any, stack: StackContext, where: str, earlier: Sequence[Any] = ()) -> GarRegistrySpec:
    """A `kind: gar` entry -> its spec: one project, its repositories."""
    entry = sc.mapping(raw, where, _REGISTRY_KEYS)
    name = sc.require_str(entry.get("name"), f"{where}.name")
    if not re.match(sc.TARGET_NAME_PATTERN, name):
        raise StackConfigError(f"{where}.name: letters, digits, '.', '_' and '-' only")
    project = sc.require_str(entry.get("project"), f"{where}.project")
    overrides = sc.mapping(entry.get("baseline", {}), f"{where}.baseline", None)
    defaults = {
        "project": project,
        "project_number": sc.opt_str(entry.get("project_number"), f"{where}.project_number"),
        "location": sc.opt_str(entry.get("location"), f"{where}.location"),
        "readers": sc.str_list(entry.get("readers"), f"{where}.readers", default=()),
        "writers": sc.str_list(entry.get("writers"), f"{where}.writers", default=()),
        "labels": sc.tags_mapping(entry.get("labels"), f"{where}.labels"),
    }
    repos_raw = entry.get("repositories")
    if not isinstance(repos_raw, list) or not repos_raw:
        raise StackConfigError(f"{where}.repositories: expected a non-empty list of repositories")
    repositories = tuple(
        _parse_repository(item, stack.environment, overrides, defaults, f"{where}.repositories[{i}]")
        for i, item in enumerate(repos_raw)
    )
    sc.check_unique([f"{r.location}/{r.gar_id}" for r in repositories], f"{where}.repositories", "id")
    logs = entry.get("data_access_logs", is_production_environment(stack.environment))
    if not isinstance(logs, bool):
        raise StackConfigError(f"{where}.data_access_logs: expected true or false")
    return GarRegistrySpec(name, ArtifactRegistryProjectArgs(project, logs), repositories)


def _parse_repository(
    raw: Any, env: str, registry_overrides: Mapping[str, Any], defaults: Mapping[str, Any], where: str
) -> ArtifactRegistryRepositoryArgs:
    entry = {"id": raw} if isinstance(raw, str) else sc.mapping(raw, where, _REPOSITORY_KEYS)
    own = sc.mapping(entry.get("baseline", {}), f"{where}.baseline", None)
    baseline = sc.baseline_for(env, {**registry_overrides, **own}, f"{where}.baseline")
    location = sc.opt_str(entry.get("location"), f"{where}.location") or defaults["location"]
    if location is None:
        raise StackConfigError(f"{where}.location: required (or set location on the registry)")
    remote = None
    if entry.get("remote") is not None:
        spec = sc.mapping(entry["remote"], f"{where}.remote", _REMOTE_KEYS)
        remote = sc.build(
            f"{where}.remote",
            lambda: RemoteUpstream(
                username=sc.require_str(spec.get("username"), f"{where}.remote.username"),
                password_secret_version=sc.require_str(
                    spec.get("password_secret_version"), f"{where}.remote.password_secret_version"
                ),
                public_repository=sc.opt_str(spec.get("public_repository"), f"{where}.remote") or "DOCKER_HUB",
            ),
        )
    flags = {k: entry.get(k, False) for k in ("create_kms_key", "gcr_domain", "cleanup_dry_run")}
    for key, value in flags.items():
        if not isinstance(value, bool):
            raise StackConfigError(f"{where}.{key}: expected true or false")
    return sc.build(
        where,
        lambda: ArtifactRegistryRepositoryArgs(
            repository_id=sc.require_str(entry.get("id"), f"{where}.id"),
            location=location,
            project=defaults["project"],
            baseline=baseline,
            environment=env,
            kms_key_name=sc.opt_str(entry.get("kms_key_name"), f"{where}.kms_key_name"),
            project_number=defaults["project_number"],
            readers=defaults["readers"] + sc.str_list(entry.get("readers"), f"{where}.readers", default=()),
            writers=defaults["writers"] + sc.str_list(entry.get("writers"), f"{where}.writers", default=()),
            remote=remote,
            labels={**defaults["labels"], **sc.tags_mapping(entry.get("labels"), f"{where}.labels")},
            **flags,
        ),
    )
