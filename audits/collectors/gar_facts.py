"""GAR answers -> facts, pure (no SDK, no I/O), so the policy pack and the tests
can share the normalization without importing google-cloud.

A `RepositoryRecord` is what the collector read about one Docker repository:
its settings (plain values pulled out of the SDK's Repository), its images and
the members of its IAM policy. Everything here judges nothing: a setting becomes
a normalized fact with the raw value kept in `detail`; the rules decide.
"""

from __future__ import annotations

import fnmatch
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
    TOKEN_REALM_ORIGIN,
    AdminAccountFacts,
    CredentialFacts,
    EncryptionFacts,
    EncryptionSetting,
    Fact,
    ImmutabilitySetting,
    LoggingFacts,
    ReplicationFacts,
    RepositoryFacts,
    RetentionFacts,
    ScanningFacts,
    SignatureFacts,
    TagFacts,
    TagImmutabilityFacts,
)
from audits.vocabulary import cosign_artifact, is_artifact_tag

LEGACY_REDIRECTION = "legacy_redirection"
"""The project's gcr.io redirection state (`REDIRECTION_FROM_GCR_IO_ENABLED` ...):
evidence of where gcr.io pulls go; no rule judges it yet."""

PUBLIC_MEMBERS = frozenset({"allUsers", "allAuthenticatedUsers"})
MULTI_REGIONS = frozenset({"us", "europe", "asia"})
SERVICE = "artifactregistry.googleapis.com"
SCANNER = "Artifact Analysis"
SCAN_RESULTS = (
    "Artifact Analysis holds them (Container Analysis API); check with `gcloud artifacts docker images describe "
    "<image>@<digest> --show-package-vulnerability` (needs roles/containeranalysis.occurrences.viewer)"
)

GAR_FACTS = (
    ENDPOINT, TLS, PLAIN_HTTP, ANONYMOUS_ACCESS, TOKEN_REALM_ORIGIN, REPOSITORIES, TAG_IMMUTABILITY, SCANNING,
    RETENTION, LOGGING, ENCRYPTION, NETWORK_EXPOSURE, REPLICATION, CREDENTIALS, ADMIN_ACCOUNT, CONTENT_TRUST,
    PULL_COUNTS, LEGACY_REDIRECTION,
)  # fmt: skip

# `projects/<project>/locations/<location>/repositories/<id>` as the API documents them
# (ids of gcr.io-domain repositories contain dots). Anything else is never requested.
_RESOURCE_NAME = re.compile(
    r"projects/[a-z0-9.:-]{1,100}/locations/([a-z0-9-]{1,63})/repositories/([a-z0-9][a-z0-9._-]{0,62})"
)
LOCATION = re.compile(r"[a-z0-9-]{1,63}")

_MANAGED_ENDPOINT = "Google-managed HTTPS endpoint (<location>-docker.pkg.dev); not probed"


@dataclass(frozen=True)
class ImageListing:
    images: tuple[Mapping[str, Any], ...] | None  # None: the listing failed
    error: str | None = None


@dataclass(frozen=True)
class RepositoryRecord:
    repository: Mapping[str, Any]  # name (location/id), mode, immutable_tags, cleanup_*, kms_key_name, ...
    images: ImageListing
    members: tuple[str, ...] | None  # IAM policy members; None when the policy was not read
    iam_error: str | None = None  # a failure other than 403
    iam_forbidden: bool = False

    @property
    def name(self) -> str:
        return str(self.repository["name"])


def static_facts() -> dict[str, Fact[Any]]:
    facts: dict[str, Fact[Any]] = {
        ADMIN_ACCOUNT: Fact.ok(
            AdminAccountFacts(shared_admin_enabled=False, detail="GAR has no admin user; access is IAM"),
            source="artifactregistry (service design)",
        ),
        CONTENT_TRUST: Fact.unsupported(
            "GAR does not refuse unsigned pushes; enforce signatures at deploy with Binary Authorization "
            "or an admission policy verifying cosign signatures"
        ),
        NETWORK_EXPOSURE: Fact.managed("Google-managed endpoint; VPC Service Controls perimeters are not inspected"),
        PULL_COUNTS: Fact.unsupported(
            "GAR reports no pull counts; count Data Access audit log entries (docker pulls) in Cloud Logging"
        ),
    }
    for name in (TLS, PLAIN_HTTP, ENDPOINT, TOKEN_REALM_ORIGIN):
        facts[name] = Fact.managed(_MANAGED_ENDPOINT)
    return facts


# ---- repositories and images ---------------------------------------------------------


def short_name(resource_name: str) -> str | None:
    """`projects/p/locations/l/repositories/r` -> `l/r`; None for a name of any other shape."""
    match = _RESOURCE_NAME.fullmatch(resource_name)
    return f"{match[1]}/{match[2]}" if match else None


def refused_record(resource_name: str) -> RepositoryRecord:
    """A listed repository whose name is not one the API documents: reported, never requested."""
    shown = resource_name[:255]
    error = "the API listed a repository name that is not projects/<p>/locations/<l>/repositories/<id>; not requested"
    return RepositoryRecord({"name": shown, "resource": shown}, ImageListing(None, error), members=None)


def image_path(uri: str, repository: str) -> tuple[str, str] | None:
    """`us-docker.pkg.dev/p/repo/team/api@sha256:..` (repository `us/repo`) -> (`us/repo/team/api`, digest)."""
    location, _, repo_id = repository.partition("/")
    path, _, digest = uri.partition("@")
    parts = path.split("/")
    if len(parts) < 4 or parts[2] != repo_id or not digest:
        return None
    return f"{location}/{repo_id}/{'/'.join(parts[3:])}", digest


def repository_facts(
    records: Sequence[RepositoryRecord], public_repositories: Sequence[str] = ()
) -> tuple[RepositoryFacts, ...]:
    """`public_repositories`: fnmatch patterns of repositories meant to be public."""
    out: list[RepositoryFacts] = []
    for record in records:
        out.extend(_image_repositories(record, public_repositories))
    return tuple(out)


def _image_repositories(record: RepositoryRecord, public_repositories: Sequence[str]) -> list[RepositoryFacts]:
    anonymous = None if record.members is None else bool(PUBLIC_MEMBERS & set(record.members))
    immutable = bool(record.repository.get("immutable_tags"))
    source = f"artifactregistry:{record.repository.get('resource', record.name)}"

    def declared(name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in public_repositories)

    failures = [f"{call}: {e}" for call, e in (("dockerImages.list", record.images.error),
                                                ("getIamPolicy", record.iam_error)) if e]
    if not record.images.images:  # failed or empty: the GAR repository itself is the entry
        return [RepositoryFacts(record.name, anonymous_pull=anonymous, declared_public=declared(record.name),
                                error="; ".join(failures) or None, source=source, signature_tags_immutable=immutable)]
    by_path: dict[str, list[tuple[str, Mapping[str, Any]]]] = defaultdict(list)
    for image in record.images.images:
        parsed = image_path(str(image.get("uri", "")), record.name)
        if parsed is not None:
            by_path[parsed[0]].append((parsed[1], image))
    error = "; ".join(failures) or None
    return [
        RepositoryFacts(
            path,
            tags=_tags(images),
            untagged_digests=sum(1 for _, i in images if not i.get("tags")),
            anonymous_pull=anonymous,
            declared_public=declared(path),
            error=error,
            source=source,
            signature_tags_immutable=immutable,
        )
        for path, images in sorted(by_path.items())
    ]


def _tags(images: Iterable[tuple[str, Mapping[str, Any]]]) -> tuple[TagFacts, ...]:
    """Image tags with their digest and upload time; cosign `.sig` tags become the
    signatures of the digest they name (found, not verified)."""
    images = list(images)
    signed: dict[str, list[str]] = defaultdict(list)
    for _, image in images:
        for tag in image.get("tags", ()):
            artifact = cosign_artifact(tag)
            if artifact is not None and artifact[1] == "sig":
                signed[artifact[0]].append(tag)
    tags: list[TagFacts] = []
    for digest, image in images:
        signatures = tuple(
            SignatureFacts("cosign", "tag", t, None, None, "no trusted key configured")
            for t in signed.get(digest, ())
        )
        for tag in image.get("tags", ()):
            if is_artifact_tag(tag):
                continue
            tags.append(TagFacts(tag, digest, image.get("media_type"), pushed_at=image.get("uploaded"),
                                 signatures=signatures))
    return tuple(sorted(tags, key=lambda t: t.name))


def _per_image_name(records: Sequence[RepositoryRecord]) -> Iterable[tuple[str, RepositoryRecord]]:
    """Every repository name the REPOSITORIES fact lists, with the GAR repository it is in."""
    for record in records:
        names = {image_path(str(i.get("uri", "")), record.name) for i in record.images.images or ()}
        paths = sorted({n[0] for n in names if n is not None}) or [record.name]
        for path in paths:
            yield path, record


def immutability_facts(records: Sequence[RepositoryRecord]) -> TagImmutabilityFacts:
    return TagImmutabilityFacts(
        by_repository={
            name: ImmutabilitySetting(
                immutable=bool(r.repository.get("immutable_tags")),
                detail=f"dockerConfig.immutableTags={str(bool(r.repository.get('immutable_tags'))).lower()}",
            )
            for name, r in _per_image_name(records)
        }
    )


def summarize_cleanup(policies: Mapping[str, Mapping[str, Any]]) -> str:
    parts = []
    for policy_id, policy in sorted(policies.items()):
        action = str(policy.get("action", "")).rsplit(".", 1)[-1] or "?"
        if policy.get("most_recent_versions"):
            keep = policy["most_recent_versions"].get("keep_count")
            parts.append(f"{policy_id}: {action} {keep} most recent")
            continue
        condition = policy.get("condition") or {}
        state = str(condition.get("tag_state", "ANY")).rsplit(".", 1)[-1].lower()
        older = condition.get("older_than")
        parts.append(f"{policy_id}: {action} {state}" + (f" older than {older}" if older else ""))
    return "; ".join(parts)


def retention_facts(records: Sequence[RepositoryRecord]) -> RetentionFacts:
    by_repo: dict[str, str] = {}
    uncovered: list[str] = []
    dry_run: list[str] = []
    for name, r in _per_image_name(records):
        policies = r.repository.get("cleanup_policies") or {}
        if not policies:
            uncovered.append(name)
            continue
        by_repo[name] = summarize_cleanup(policies)
        if r.repository.get("cleanup_dry_run"):
            dry_run.append(name)
    return RetentionFacts(
        registry_wide=None,
        by_repository=by_repo,
        uncovered_repositories=tuple(sorted(uncovered)),
        dry_run_repositories=tuple(sorted(dry_run)),
    )


def encryption_facts(records: Sequence[RepositoryRecord]) -> EncryptionFacts:
    out: dict[str, EncryptionSetting] = {}
    for name, r in _per_image_name(records):
        key = r.repository.get("kms_key_name")
        detail = f"CMEK {key}" if key else "Google-managed encryption key"
        out[name] = EncryptionSetting(customer_managed=bool(key), key_id=key, detail=detail)
    return EncryptionFacts(by_repository=out)


def scanning_facts(records: Sequence[RepositoryRecord]) -> ScanningFacts:
    states = {name: str(r.repository.get("scanning_state", "")) for name, r in _per_image_name(records)}
    uncovered = tuple(sorted(n for n, s in states.items() if s != "SCANNING_ACTIVE"))
    active = len(states) - len(uncovered)
    return ScanningFacts(
        enabled=active > 0,
        mode="continuous" if active else None,
        scanner=SCANNER,
        scanner_installed=None,
        uncovered_repositories=uncovered,
        detail=f"vulnerabilityScanningConfig.enablementState SCANNING_ACTIVE on {active} of {len(states)}",
        results_elsewhere=SCAN_RESULTS,
    )


def replication_facts(records: Sequence[RepositoryRecord]) -> ReplicationFacts:
    """A multi-region location (us, europe, asia) stores a repository redundantly
    across regions; a regional one does not, and GAR has no cross-region copy."""
    locations = sorted({r.name.split("/", 1)[0] for r in records})
    regional = [loc for loc in locations if loc not in MULTI_REGIONS]
    multi = [loc for loc in locations if loc in MULTI_REGIONS]
    if not locations:
        return ReplicationFacts(enabled=False, detail="no Docker repositories")
    detail = f"multi-region: {', '.join(multi) or 'none'}; regional: {', '.join(regional) or 'none'}"
    return ReplicationFacts(enabled=not regional, destinations=tuple(multi), detail=detail)


def credential_facts(records: Sequence[RepositoryRecord]) -> tuple[CredentialFacts, ...]:
    """Remote repositories' upstream credentials (the password stays in Secret
    Manager: only the secret version's name is a fact)."""
    out = []
    for r in records:
        secret = str(r.repository.get("upstream_secret") or "")
        if not secret:
            continue
        user = r.repository.get("upstream_username") or "?"
        out.append(
            CredentialFacts(
                id=f"{r.name}: upstream credential {user}",
                kind="upstream-credential",
                created_at=None,
                detail=f"password in Secret Manager {secret}",
            )
        )
    return tuple(out)


def logging_facts(audit_configs: Any) -> LoggingFacts:
    """Data Access audit logs (DATA_READ and DATA_WRITE) for Artifact Registry,
    from the project's `auditConfigs` (service `allServices` counts)."""
    types: set[str] = set()
    for config in audit_configs if isinstance(audit_configs, list) else ():
        if not isinstance(config, dict) or config.get("service") not in (SERVICE, "allServices"):
            continue
        for log in config.get("auditLogConfigs") or ():
            if isinstance(log, dict) and isinstance(log.get("logType"), str):
                types.add(log["logType"])
    covered = {"DATA_READ", "DATA_WRITE"} <= types
    detail = (
        f"Data Access audit logs for {SERVICE}: {', '.join(sorted(types)) or 'none'} "
        "(Admin Activity logs are always on)"
    )
    return LoggingFacts(enabled=covered, destination="Cloud Logging" if covered else None, detail=detail)
