"""Collect facts about one AWS ECR private registry (one account, one region) with boto3.

A target over several accounts and regions is audited scope by scope: its
scopes come from `audits.collectors.ecr_scopes` (via the kind table), and a
scope in another account is collected with the credentials of its assumed role
(`audits.collectors.ecr_sessions`, one AssumeRole per account and process).
IAM is account-wide, so only one scope per account reads it.

What is read, and from where (every call counted into `TargetFacts.requests`):

* registry level, once: `DescribeRegistry` (replication; doubles as the reachability
  check), `GetRegistryScanningConfiguration`, CloudTrail `DescribeTrails` +
  `GetTrailStatus` (+ `GetEventSelectors` for trails with custom selectors), IAM
  `GetAccountAuthorizationDetails` (paginated) + `ListAccessKeys` for users who can push;
* `DescribeRepositories` (paginated, 1000 per page): tag mutability, encryption and
  the legacy scan-on-push flag all come from here, so they cost nothing per repository;
* per repository, in a bounded thread pool: `DescribeImages` (paginated, 1000 per page),
  `GetLifecyclePolicy`, `GetRepositoryPolicy` — three calls for a repository with up to
  1000 images — plus, when trusted keys are configured and the repository holds cosign
  signatures, one `BatchGetImage` per 100 signature manifests.

Signatures are read and verified by `audits.collectors.ecr_signatures` (one
BatchGetImage per 100 signature manifests, only when trusted keys are configured),
IAM push credentials by `audits.collectors.ecr_iam`, and every call goes through
`audits.collectors.ecr_calls` (outcomes instead of exceptions, request counts).

The normalization of those answers into facts (settings, policies, scans, signature
artifacts, repository facts) is pure and lives in `audits.collectors.ecr_facts`, which
the policy pack shares without importing boto3; this module does the I/O and puts the
facts together.

Judgement stays out: the collector records normalized settings (a mutability string
becomes `ImmutabilitySetting(immutable=...)` with the raw value kept in `detail`) and
the rules decide. Things ECR does not have or that AWS runs:

* ADMIN_ACCOUNT is `ok(shared_admin_enabled=False)`: ECR has no registry admin user
  at all; every identity is an IAM principal (IAM users with push rights are listed
  under CREDENTIALS instead).
* CONTENT_TRUST is `unsupported`: ECR does not refuse unsigned pushes; enforce
  signatures at admission (e.g. a Kubernetes policy verifying cosign/Notation).
* NETWORK_EXPOSURE is `managed`: the endpoint is AWS's; restricting it means VPC
  endpoints and endpoint policies, which this collector does not inspect.
* TLS / PLAIN_HTTP / ANONYMOUS_ACCESS / ENDPOINT are `managed` (AWS's HTTPS endpoint)
  unless the target sets `probe_endpoint`: then ENDPOINT is the registry host from
  DescribeRegistry, and TLS, PLAIN_HTTP and ANONYMOUS_ACCESS are observed by the shared
  OCI endpoint probe (`oci_probe`), without credentials.
* PULL_COUNTS is `unsupported`: ECR reports only `lastRecordedPullTime`; daily
  counts need CloudTrail data events queried elsewhere (Athena / CloudTrail Lake).

A registry that cannot be reached at all (or no credentials) turns every fact into an
error after one short reachability check instead of ten adaptive retries per call.
"""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
import httpx
from botocore.config import Config
from botocore.exceptions import BotoCoreError

from audits.collectors import cosign
from audits.collectors.base import CollectOptions, RequestCounter
from audits.collectors.ecr_calls import Outcome, attempt, count_requests, describe
from audits.collectors.ecr_facts import (
    build_repository_facts,
    encryption_setting,
    grants_anonymous_pull,
    immutability_setting,
    management_events_logged,
    registry_host,
    replication_facts,
    repository_reference,
    scanning_facts,
    summarize_lifecycle,
    trail_destination,
)
from audits.collectors.ecr_iam import credentials_fact
from audits.collectors.ecr_sessions import ROLE_SESSIONS, AssumeRoleFailed, ScopeAccess
from audits.collectors.ecr_signatures import LayerDownloader, SignatureReader
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
    AdminAccountFacts,
    EncryptionFacts,
    EncryptionSetting,
    EndpointFacts,
    Fact,
    ImmutabilitySetting,
    LoggingFacts,
    ReplicationFacts,
    RepositoryFacts,
    RetentionFacts,
    ScanningFacts,
    TagImmutabilityFacts,
    TargetFacts,
    TlsFacts,
    utcnow,
)
from audits.targets import EcrScope, EcrTarget

if TYPE_CHECKING:
    from mypy_boto3_cloudtrail import CloudTrailClient
    from mypy_boto3_ecr import ECRClient
    from mypy_boto3_ecr.type_defs import ImageDetailTypeDef, RepositoryTypeDef
    from mypy_boto3_iam import IAMClient

T = TypeVar("T")

KIND = "ecr"
PAGE_SIZE = 1000  # the maximum DescribeRepositories / DescribeImages accept

# What ECR answers in a region the account has not enabled, or to credentials it
# does not know: nothing else will work in that scope, so it is one error, not sixteen.
REGION_REFUSED = frozenset({"UnrecognizedClientException", "InvalidClientTokenId", "InvalidSignatureException"})
_MANAGED_ENDPOINT = "AWS-managed HTTPS endpoint; set probe_endpoint: true to probe it"


# --------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------


TlsProbe = Callable[[str, int, Path | None, float], TlsFacts]


@dataclass(frozen=True)
class HttpSeams:
    """What replaces the network outside AWS's API in tests: the transport for
    signature payload downloads, the async transport and TLS probe for the
    `probe_endpoint` probes. None means the real network."""

    download: httpx.BaseTransport | None = None
    probe: httpx.AsyncBaseTransport | None = None
    tls_probe: TlsProbe | None = None


@dataclass(frozen=True)
class AwsClients:
    """The clients one collection uses. `probe` answers the reachability check
    with few retries, so an unreachable endpoint fails in seconds, not minutes."""

    ecr: ECRClient
    iam: IAMClient
    cloudtrail: CloudTrailClient
    probe: ECRClient


def collect(target: EcrTarget, options: CollectOptions) -> TargetFacts:
    """Collect every ECR fact for `target` (one scope: an account and a region,
    through its assumed role when it has one); never raises for AWS/network errors."""
    started = utcnow()
    counter = RequestCounter()
    try:
        clients = make_clients(target, options, ROLE_SESSIONS.access(target, options.timeout, counter))
    except AssumeRoleFailed as exc:
        return _all_errors(target, str(exc), "sts:AssumeRole", started, counter)
    except (BotoCoreError, ValueError) as exc:
        detail = f"cannot create AWS clients: {describe(exc)}"
        return _all_errors(target, detail, "boto3.Session", started, counter)
    try:
        return collect_with_clients(target, options, clients, counter=counter, started=started)
    except Exception as exc:  # a collector bug must become error facts, never a crash or a pass
        detail = f"ECR collector failed: {type(exc).__name__}: {describe(exc)}"
        return _all_errors(target, detail, "ecr", started, counter)


def make_clients(target: EcrTarget, options: CollectOptions, access: ScopeAccess | None = None) -> AwsClients:
    """boto3 clients for the target's region made by `access` (default: a
    session of its profile), pointed at `endpoint_url` when set (moto /
    LocalStack). Created per collection, never at import."""
    if access is None:
        access = ScopeAccess(boto3.Session(profile_name=target.profile), threading.Lock(), target.scope_region())
    config = Config(
        retries={"mode": "adaptive", "max_attempts": 10},
        max_pool_connections=max(options.concurrency, 1),
        connect_timeout=options.timeout,
        read_timeout=options.timeout,
    )
    probe_config = Config(
        retries={"mode": "standard", "max_attempts": 2},
        connect_timeout=options.timeout,
        read_timeout=options.timeout,
    )
    endpoint = target.endpoint_url
    return AwsClients(
        ecr=access.client("ecr", config=config, endpoint_url=endpoint),
        iam=access.client("iam", config=config, endpoint_url=endpoint),
        cloudtrail=access.client("cloudtrail", config=config, endpoint_url=endpoint),
        probe=access.client("ecr", config=probe_config, endpoint_url=endpoint),
    )


def collect_with_clients(
    target: EcrTarget,
    options: CollectOptions,
    clients: AwsClients,
    *,
    counter: RequestCounter | None = None,
    started: datetime | None = None,
    seams: HttpSeams | None = None,
) -> TargetFacts:
    """The collection itself, on clients the caller built (tests attach botocore
    Stubbers or event hooks to them, and `seams` for the HTTP outside the API)."""
    started = started or utcnow()
    seams = seams or HttpSeams()
    counter = counter or RequestCounter()
    for client, prefix in (
        (clients.ecr, "ecr"),
        (clients.iam, "iam"),
        (clients.cloudtrail, "cloudtrail"),
        (clients.probe, "ecr"),
    ):
        count_requests(client, prefix, counter)

    registry = attempt(lambda: clients.probe.describe_registry())
    if isinstance(registry.error_exc, BotoCoreError):
        detail = f"ECR endpoint unreachable: {registry.error}"
        return _all_errors(target, detail, "ecr:DescribeRegistry", started, counter)
    if registry.error_code in REGION_REFUSED:
        detail = f"ECR in {target.region} refused the credentials (a disabled opt-in region?): {registry.error}"
        return _all_errors(target, detail, "ecr:DescribeRegistry", started, counter)

    facts: dict[str, Fact[Any]] = {}
    facts.update(_static_facts(target))
    facts[REPLICATION] = _replication_fact(registry)
    if target.probe_endpoint:
        facts.update(_probed_endpoint_facts(target, registry, options, counter, seams))
    options.record_all(facts)  # published as they are known: a deadline keeps them
    ring = cosign.load_keys(options.trusted_keys)
    reader = None
    if ring.configured:  # without a trusted key there is nothing to verify with: no call
        downloader = LayerDownloader(clients.ecr, counter, options.timeout, seams.download)
        reader = SignatureReader(clients.ecr, ring, downloader)
    unverified = None if ring.configured else "no trusted key configured"

    listed = attempt(lambda: list_repositories(clients.ecr))
    with ThreadPoolExecutor(max_workers=max(options.concurrency, 1)) as pool:
        scanning_future = pool.submit(attempt, lambda: clients.ecr.get_registry_scanning_configuration())
        logging_future = pool.submit(_logging_fact, clients.cloudtrail, target.scope_region())
        credentials_future = pool.submit(_credentials_fact, target, clients.iam)
        logging_future.add_done_callback(lambda done: options.record(LOGGING, done.result()))
        credentials_future.add_done_callback(lambda done: options.record(CREDENTIALS, done.result()))
        if listed.value is None:
            error: Fact[Any] = Fact.error(listed.error or "no answer", source="ecr:DescribeRepositories")
            for name in (REPOSITORIES, TAG_IMMUTABILITY, ENCRYPTION, RETENTION, SCANNING):
                facts[name] = error
        else:
            selected = [r for r in listed.value if _selected(r.get("repositoryName", ""), target)]
            repos = options.cap_repositories(selected, name=lambda r: r.get("repositoryName", ""))
            details = _repository_details(pool, clients.ecr, repos, options, reader)
            facts.update(_repository_facts(target, repos, details, unverified))
            facts[SCANNING] = _scanning_fact(scanning_future.result(), repos)
        options.record_all(facts)
        facts[LOGGING] = logging_future.result()
        facts[CREDENTIALS] = credentials_future.result()

    return TargetFacts(
        target=target.name,
        kind=KIND,
        facts=facts,
        started_at=started,
        finished_at=utcnow(),
        requests=counter.total,
    )


def _credentials_fact(target: EcrTarget, iam: IAMClient) -> Fact[Any]:
    """IAM is account-wide: one scope of each account (its first region) reads
    and judges the push credentials; the account's other regions point there."""
    home = target.iam_scope if isinstance(target, EcrScope) else None
    if home is not None:
        return Fact.managed(f"IAM users and keys are account-wide; this account's are judged in scope {home}")
    return credentials_fact(iam)


# --------------------------------------------------------------------------
# Facts that need no call
# --------------------------------------------------------------------------

ALL_FACTS = (
    ENDPOINT,
    TLS,
    PLAIN_HTTP,
    ANONYMOUS_ACCESS,
    REPOSITORIES,
    TAG_IMMUTABILITY,
    SCANNING,
    RETENTION,
    LOGGING,
    ENCRYPTION,
    NETWORK_EXPOSURE,
    REPLICATION,
    CREDENTIALS,
    ADMIN_ACCOUNT,
    CONTENT_TRUST,
    PULL_COUNTS,
)


def _static_facts(target: EcrTarget) -> dict[str, Fact[Any]]:
    facts: dict[str, Fact[Any]] = {
        ADMIN_ACCOUNT: Fact.ok(
            AdminAccountFacts(shared_admin_enabled=False, detail="ECR has no admin user; access is IAM"),
            source="ecr (service design)",
        ),
        CONTENT_TRUST: Fact.unsupported("ECR does not enforce signatures at push; use signing policies in admission"),
        NETWORK_EXPOSURE: Fact.managed("AWS-managed endpoint; VPC endpoints and endpoint policies are not inspected"),
        PULL_COUNTS: Fact.unsupported(
            "ECR reports no pull counts; they need CloudTrail data events (BatchGetImage) queried outside regguard"
        ),
    }
    if not target.probe_endpoint:
        for name in (TLS, PLAIN_HTTP, ANONYMOUS_ACCESS, ENDPOINT):
            facts[name] = Fact.managed(_MANAGED_ENDPOINT)
    return facts


def _probed_endpoint_facts(
    target: EcrTarget, registry: Outcome[Any], options: CollectOptions, counter: RequestCounter, seams: HttpSeams
) -> dict[str, Fact[Any]]:
    """`probe_endpoint: true`: the endpoint from DescribeRegistry, observed from
    outside like any OCI registry by the shared endpoint probe (no credentials):
    the TLS handshake, the plain-HTTP `/v2/` probe and the anonymous `/v2/` +
    `/v2/_catalog` probes. Its requests are counted here."""
    from audits.collectors import oci_probe, tls_probe

    registry_id = registry.value.get("registryId") if registry.value is not None else None
    if not registry_id:
        error: Fact[Any] = Fact.error(registry.error or "no registry id", source="ecr:DescribeRegistry")
        return {name: error for name in (ENDPOINT, TLS, PLAIN_HTTP, ANONYMOUS_ACCESS)}
    url = f"https://{registry_host(str(registry_id), target.scope_region())}"
    probed = oci_probe.observe_endpoint(
        url,
        timeout=options.timeout,
        counter=counter,
        concurrency=min(max(options.concurrency, 1), 4),
        transport=seams.probe,
        tls_probe=seams.tls_probe or tls_probe.probe_tls,
    )
    return {**probed, ENDPOINT: Fact.ok(EndpointFacts(url=url, scheme="https"), source="ecr:DescribeRegistry")}


def _all_errors(target: EcrTarget, detail: str, source: str, started: datetime, counter: RequestCounter) -> TargetFacts:
    error: Fact[Any] = Fact.error(detail, source=source)
    return TargetFacts(
        target=target.name,
        kind=KIND,
        facts={name: error for name in ALL_FACTS},
        started_at=started,
        finished_at=utcnow(),
        requests=counter.total,
    )


# --------------------------------------------------------------------------
# Repositories
# --------------------------------------------------------------------------


def list_repositories(ecr: ECRClient) -> list[RepositoryTypeDef]:
    out: list[RepositoryTypeDef] = []
    paginator = ecr.get_paginator("describe_repositories")
    for page in paginator.paginate(PaginationConfig={"PageSize": PAGE_SIZE}):
        out.extend(page.get("repositories", []))
    return out


def list_images(ecr: ECRClient, repository: str) -> list[ImageDetailTypeDef]:
    out: list[ImageDetailTypeDef] = []
    paginator = ecr.get_paginator("describe_images")
    pages = paginator.paginate(repositoryName=repository, PaginationConfig={"PageSize": PAGE_SIZE})
    for page in pages:
        out.extend(page.get("imageDetails", []))
    return out


@dataclass(frozen=True)
class RepositoryDetail:
    """The per-repository answers; everything else comes from DescribeRepositories.
    `signatures` holds what reading the repository's cosign signature manifests
    showed, by signature artifact reference (empty when nothing was read)."""

    name: str
    images: Outcome[list[ImageDetailTypeDef]]
    lifecycle: Outcome[str]
    policy: Outcome[str]
    signatures: Mapping[str, tuple[cosign.Verification, ...]] = field(default_factory=dict)


def fetch_repository_detail(
    ecr: ECRClient, name: str, reader: SignatureReader | None = None, reference: str = ""
) -> RepositoryDetail:
    """Three calls for a repository, plus BatchGetImage (one per 100 signature
    artifacts) when `reader` verifies signatures and the repository has some.
    `reference` is the repository's docker reference (`<registry host>/<name>`)."""
    images = attempt(lambda: list_images(ecr, name))
    detail = RepositoryDetail(
        name=name,
        images=images,
        lifecycle=attempt(lambda: ecr.get_lifecycle_policy(repositoryName=name).get("lifecyclePolicyText", "")),
        policy=attempt(lambda: ecr.get_repository_policy(repositoryName=name).get("policyText", "")),
    )
    if reader is None or not images.value:
        return detail
    return replace(detail, signatures=reader.read(name, reference or name, images.value))


def _repository_details(
    pool: ThreadPoolExecutor,
    ecr: ECRClient,
    repos: Sequence[RepositoryTypeDef],
    options: CollectOptions,
    reader: SignatureReader | None = None,
) -> dict[str, RepositoryDetail]:
    refs = {r.get("repositoryName", ""): repository_reference(r) for r in repos}
    out: dict[str, RepositoryDetail] = {}
    options.report("ecr repositories", 0, len(refs))
    details = pool.map(lambda n: fetch_repository_detail(ecr, n, reader, refs[n]), refs)
    for done, detail in enumerate(details, 1):
        out[detail.name] = detail
        options.report("ecr repositories", done, len(refs))
    return out


def _selected(name: str, target: EcrTarget) -> bool:
    return not target.repositories or any(fnmatch.fnmatchcase(name, p) for p in target.repositories)


def _repository_facts(
    target: EcrTarget,
    repos: Sequence[RepositoryTypeDef],
    details: Mapping[str, RepositoryDetail],
    unverified_reason: str | None = None,
) -> dict[str, Fact[Any]]:
    repositories: list[RepositoryFacts] = []
    immutability: dict[str, ImmutabilitySetting] = {}
    encryption: dict[str, EncryptionSetting] = {}
    for repo in repos:
        name = repo.get("repositoryName", "")
        detail = details[name]
        repositories.append(_repository(detail, repo.get("repositoryUri", ""), target, unverified_reason))
        immutability[name] = immutability_setting(repo)
        encryption[name] = encryption_setting(repo)
    return {
        REPOSITORIES: Fact.ok(tuple(repositories), source="ecr:DescribeImages"),
        TAG_IMMUTABILITY: Fact.ok(TagImmutabilityFacts(by_repository=immutability), source="ecr:DescribeRepositories"),
        ENCRYPTION: Fact.ok(EncryptionFacts(by_repository=encryption), source="ecr:DescribeRepositories"),
        RETENTION: _retention_fact(details.values()),
    }


def _repository(
    detail: RepositoryDetail, uri: str, target: EcrTarget, unverified_reason: str | None = None
) -> RepositoryFacts:
    errors: list[str] = []
    if detail.images.error is not None:
        errors.append(f"DescribeImages: {detail.images.error}")
    anonymous: bool | None
    if detail.policy.value is not None:
        try:
            anonymous = grants_anonymous_pull(detail.policy.value)
        except ValueError:
            anonymous = None
            errors.append("GetRepositoryPolicy: the policy is not valid JSON")
    elif detail.policy.error_code == "RepositoryPolicyNotFoundException":
        anonymous = False  # no policy: only IAM principals of this account can pull
    else:
        anonymous = None
        errors.append(f"GetRepositoryPolicy: {detail.policy.error}")
    declared = any(fnmatch.fnmatchcase(detail.name, p) for p in target.public_repositories)
    return build_repository_facts(
        detail.name,
        detail.images.value or [],
        anonymous_pull=anonymous,
        declared_public=declared,
        error="; ".join(errors) or None,
        source=uri or f"ecr:{detail.name}",
        verifications=detail.signatures,
        unverified_reason=unverified_reason,
    )


# --------------------------------------------------------------------------
# Scanning, retention, replication (fact assembly)
# --------------------------------------------------------------------------


def _scanning_fact(outcome: Outcome[Any], repos: Sequence[RepositoryTypeDef]) -> Fact[ScanningFacts]:
    source = "ecr:GetRegistryScanningConfiguration"
    if outcome.value is None:
        return Fact.error(outcome.error or "no answer", source=source)
    return Fact.ok(scanning_facts(outcome.value.get("scanningConfiguration", {}), repos), source=source)


def _retention_fact(details: Iterable[RepositoryDetail]) -> Fact[RetentionFacts]:
    source = "ecr:GetLifecyclePolicy"
    by_repo: dict[str, str] = {}
    uncovered: list[str] = []
    failed: list[str] = []
    for d in details:
        if d.lifecycle.value is not None:
            by_repo[d.name] = summarize_lifecycle(d.lifecycle.value)
        elif d.lifecycle.error_code == "LifecyclePolicyNotFoundException":
            uncovered.append(d.name)
        else:
            failed.append(f"{d.name}: {d.lifecycle.error}")
    if failed:
        more = f" (and {len(failed) - 3} more)" if len(failed) > 3 else ""
        return Fact.error("; ".join(failed[:3]) + more, source=source)
    return Fact.ok(
        RetentionFacts(registry_wide=None, by_repository=by_repo, uncovered_repositories=tuple(sorted(uncovered))),
        source=source,
    )


def _replication_fact(outcome: Outcome[Any]) -> Fact[ReplicationFacts]:
    source = "ecr:DescribeRegistry"
    if outcome.value is None:
        return Fact.error(outcome.error or "no answer", source=source)
    rules = outcome.value.get("replicationConfiguration", {}).get("rules", [])
    return Fact.ok(replication_facts(rules), source=source)


# --------------------------------------------------------------------------
# CloudTrail
# --------------------------------------------------------------------------


def _logging_fact(cloudtrail: CloudTrailClient, region: str) -> Fact[LoggingFacts]:
    source = "cloudtrail:DescribeTrails"
    listed = attempt(lambda: cloudtrail.describe_trails(includeShadowTrails=True))
    if listed.value is None:
        return Fact.error(listed.error or "no answer", source=source)
    trails = [
        t for t in listed.value.get("trailList", []) if t.get("IsMultiRegionTrail") or t.get("HomeRegion") == region
    ]
    if not trails:
        return Fact.ok(LoggingFacts(False, None, f"no CloudTrail trail covers {region}"), source=source)
    notes: list[str] = []
    errors: list[str] = []
    for trail in trails:
        arn = trail.get("TrailARN", trail.get("Name", ""))
        status: Outcome[Any] = attempt(partial(cloudtrail.get_trail_status, Name=arn))
        selectors: Outcome[Any] = Outcome(value=None)
        if trail.get("HasCustomEventSelectors"):
            selectors = attempt(partial(cloudtrail.get_event_selectors, TrailName=arn))
        if status.value is None or selectors.error is not None:
            errors.append(f"{trail.get('Name')}: {status.error or selectors.error}")
            continue
        logging_on = bool(status.value.get("IsLogging"))
        covered = management_events_logged(trail, selectors.value)
        destination = trail_destination(trail)
        if logging_on and covered >= {"read", "write"}:
            detail = f"trail {trail.get('Name')} logs read and write management events"
            return Fact.ok(LoggingFacts(True, destination, detail), source="cloudtrail:GetTrailStatus")
        state = "logging" if logging_on else "not logging"
        notes.append(f"trail {trail.get('Name')}: {state}, management events {sorted(covered) or 'none'}")
    if errors:
        return Fact.error("; ".join(errors), source="cloudtrail:GetTrailStatus")
    return Fact.ok(LoggingFacts(False, None, "; ".join(notes)), source="cloudtrail:GetTrailStatus")


