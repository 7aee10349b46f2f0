"""Collect facts about one AWS ECR private registry (one account, one region) with boto3.

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

Signatures (cosign, key-based): the `sha256-<hex>.sig` tags and cosign referrer
artifacts DescribeImages lists are read with BatchGetImage; each signature layer's
payload is rebuilt exactly as cosign writes it for `<registry host>/<repo>@<digest>`
(`audits.collectors.cosign`), used when its sha256 is the layer digest, and otherwise
downloaded (`GetDownloadUrlForLayer` + GET of the pre-signed URL). Verification is
against `options.trusted_keys`; without any, nothing is fetched and every signature
stays unverified ("no trusted key configured"). A signature manifest that could not
be read stays unverified (`verified=None`) with the reason; a payload that could not
be read does not verify (`verified=False`).

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
  DescribeRegistry, and TLS, PLAIN_HTTP and ANONYMOUS_ACCESS are observed the way the
  Distribution collector observes any OCI endpoint, without credentials.
* PULL_COUNTS is `unsupported`: ECR reports only `lastRecordedPullTime`; daily
  counts need CloudTrail data events queried elsewhere (Athena / CloudTrail Lake).

A registry that cannot be reached at all (or no credentials) turns every fact into an
error after one short reachability check instead of ten adaptive retries per call.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import boto3
import httpx
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from audits.collectors import cosign
from audits.collectors.base import CollectOptions, RequestCounter
from audits.collectors.ecr_facts import (
    SignatureArtifact,
    as_utc,
    build_repository_facts,
    encryption_setting,
    grants_anonymous_pull,
    immutability_setting,
    management_events_logged,
    mask_key_id,
    push_grants,
    registry_host,
    repository_reference,
    scanning_facts,
    signature_artifacts,
    summarize_lifecycle,
    trail_destination,
)
from audits.collectors.oci import describe_transport_error
from audits.config import DistributionTarget, EcrTarget
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
    CredentialFacts,
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
from audits.untrusted import terminal_text

if TYPE_CHECKING:
    from mypy_boto3_cloudtrail import CloudTrailClient
    from mypy_boto3_ecr import ECRClient
    from mypy_boto3_ecr.type_defs import ImageDetailTypeDef, RepositoryTypeDef
    from mypy_boto3_iam import IAMClient

T = TypeVar("T")

KIND = "ecr"
PAGE_SIZE = 1000  # the maximum DescribeRepositories / DescribeImages accept
BATCH_GET_IMAGE_LIMIT = 100  # the most imageIds one BatchGetImage accepts
MAX_PAYLOAD_BYTES = 1 << 20  # a simple-signing payload is a few hundred bytes
SIGNATURE_MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
_SHA256_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


_MANAGED_ENDPOINT = "AWS-managed HTTPS endpoint; set probe_endpoint: true to probe it"
_AKIA = re.compile(r"\b(A[KS]IA|ASIA)[A-Z0-9]{12}([A-Z0-9]{4})\b")
# What an answer botocore cannot use raises out of a call: its parser's own
# error (a plain Exception, not a BotoCoreError) for XML that is not XML, a
# UnicodeDecodeError (a ValueError) for JSON that is not UTF-8, and
# AttributeError/TypeError/KeyError when JSON or our reading of it meets the
# wrong shape. Each is that call's error, like a ClientError, not the end of
# the collection.
_UNUSABLE_ANSWER = (ResponseParserError, ValueError, TypeError, AttributeError, KeyError)
MAX_ERROR_CHARS = 300  # of an AWS or botocore message in a fact; bodies can be megabytes


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
    """Collect every ECR fact for `target`; never raises for AWS/network errors."""
    started = utcnow()
    counter = RequestCounter()
    try:
        clients = make_clients(target, options)
    except (BotoCoreError, ValueError) as exc:
        detail = f"cannot create AWS clients: {_describe(exc)}"
        return _all_errors(target, detail, "boto3.Session", started, counter)
    try:
        return collect_with_clients(target, options, clients, counter=counter, started=started)
    except Exception as exc:  # a collector bug must become error facts, never a crash or a pass
        detail = f"ECR collector failed: {type(exc).__name__}: {_describe(exc)}"
        return _all_errors(target, detail, "ecr", started, counter)


def make_clients(target: EcrTarget, options: CollectOptions) -> AwsClients:
    """boto3 clients for the target's profile/region, pointed at `endpoint_url`
    when set (moto / LocalStack). Created per collection, never at import."""
    session = boto3.Session(profile_name=target.profile, region_name=target.region)
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
        ecr=session.client("ecr", config=config, endpoint_url=endpoint),
        iam=session.client("iam", config=config, endpoint_url=endpoint),
        cloudtrail=session.client("cloudtrail", config=config, endpoint_url=endpoint),
        probe=session.client("ecr", config=probe_config, endpoint_url=endpoint),
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

    registry = _attempt(lambda: clients.probe.describe_registry())
    if isinstance(registry.error_exc, BotoCoreError):
        detail = f"ECR endpoint unreachable: {registry.error}"
        return _all_errors(target, detail, "ecr:DescribeRegistry", started, counter)

    facts: dict[str, Fact[Any]] = {}
    facts.update(_static_facts(target))
    facts[REPLICATION] = _replication_fact(registry)
    if target.probe_endpoint:
        facts.update(_probed_endpoint_facts(target, registry, options, counter, seams))
    ring = cosign.load_keys(options.trusted_keys)
    reader = None
    if ring.configured:  # without a trusted key there is nothing to verify with: no call
        downloader = LayerDownloader(clients.ecr, counter, options.timeout, seams.download)
        reader = SignatureReader(clients.ecr, ring, downloader)
    unverified = None if ring.configured else "no trusted key configured"

    listed = _attempt(lambda: list_repositories(clients.ecr))
    with ThreadPoolExecutor(max_workers=max(options.concurrency, 1)) as pool:
        scanning_future = pool.submit(_attempt, lambda: clients.ecr.get_registry_scanning_configuration())
        logging_future = pool.submit(_logging_fact, clients.cloudtrail, target.region)
        credentials_future = pool.submit(_credentials_fact, clients.iam)
        if listed.value is None:
            error: Fact[Any] = Fact.error(listed.error or "no answer", source="ecr:DescribeRepositories")
            for name in (REPOSITORIES, TAG_IMMUTABILITY, ENCRYPTION, RETENTION, SCANNING):
                facts[name] = error
        else:
            repos = [r for r in listed.value if _selected(r.get("repositoryName", ""), target)]
            details = _repository_details(pool, clients.ecr, repos, options, reader)
            facts.update(_repository_facts(target, repos, details, unverified))
            facts[SCANNING] = _scanning_fact(scanning_future.result(), repos)
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


# --------------------------------------------------------------------------
# Request counting and error capture
# --------------------------------------------------------------------------


def count_requests(client: Any, prefix: str, counter: RequestCounter) -> None:
    """Count each API call (`before-call`) and each retry it needed (`after-call`
    reads `RetryAttempts`) under `"<prefix>:<Operation>"`. Registered first so a
    Stubber's short-circuit cannot hide a call."""

    def before_call(model: Any, **_: Any) -> None:
        counter.add(f"{prefix}:{model.name}")

    def after_call(model: Any, parsed: Mapping[str, Any], **_: Any) -> None:
        retries = int(parsed.get("ResponseMetadata", {}).get("RetryAttempts", 0) or 0)
        if retries:
            counter.add(f"{prefix}:{model.name} (retry)", retries)

    client.meta.events.register_first("before-call.*.*", before_call)
    client.meta.events.register_first("after-call.*.*", after_call)


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """The value of one API interaction, or why there is none. `error_code` is
    the AWS error code (`LifecyclePolicyNotFoundException`) when AWS answered."""

    value: T | None = None
    error: str | None = None
    error_code: str | None = None
    error_exc: BaseException | None = field(default=None, repr=False, compare=False)


def _attempt(fn: Callable[[], T]) -> Outcome[T]:
    try:
        return Outcome(value=fn())
    except ClientError as exc:
        return Outcome(error=_describe(exc), error_code=_error_code(exc), error_exc=exc)
    except BotoCoreError as exc:
        return Outcome(error=_describe(exc), error_exc=exc)
    except _UNUSABLE_ANSWER as exc:
        return Outcome(error=f"unusable answer: {type(exc).__name__}: {_describe(exc)}", error_exc=exc)


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "") or "")


def _describe(exc: BaseException) -> str:
    """A one-line reason with any access key id masked (AWS messages can name
    one), capped, control characters made visible: the message is the remote
    side's text, and botocore's parser error appends the whole raw body after
    its first line, which is all we keep of it."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        text = f"{err.get('Code', 'Error')}: {err.get('Message', '')}".rstrip(": ")
    else:
        text = str(exc) or type(exc).__name__
        if isinstance(exc, ResponseParserError):
            text = text.split("\n", 1)[0]
    return terminal_text(_AKIA.sub(lambda m: mask_key_id(m.group(0)), text), limit=MAX_ERROR_CHARS)


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
    outside like any OCI registry. ECR's endpoint speaks the Distribution API, so
    the Distribution collector (no credentials given) makes the TLS handshake, the
    plain-HTTP `/v2/` probe and the anonymous `/v2/` + `/v2/_catalog` probes; only
    those three facts are kept (its repository listing is refused without
    credentials and dropped). Its requests are counted here."""
    from audits.collectors import distribution, tls_probe

    registry_id = registry.value.get("registryId") if registry.value is not None else None
    if not registry_id:
        error: Fact[Any] = Fact.error(registry.error or "no registry id", source="ecr:DescribeRegistry")
        return {name: error for name in (ENDPOINT, TLS, PLAIN_HTTP, ANONYMOUS_ACCESS)}
    host = registry_host(str(registry_id), target.region)
    url = f"https://{host}"
    probe_target = DistributionTarget.model_validate(
        {"name": target.name, "kind": "distribution", "url": url, "timeout": options.timeout}
    )
    probed = distribution.collect(
        probe_target,
        CollectOptions(concurrency=min(max(options.concurrency, 1), 4), timeout=options.timeout),
        transport=seams.probe,
        tls_probe=seams.tls_probe or tls_probe.probe_tls,
        counter=counter,
    )
    return {
        ENDPOINT: Fact.ok(EndpointFacts(url=url, scheme="https"), source="ecr:DescribeRegistry"),
        **{name: probed.facts[name] for name in (TLS, PLAIN_HTTP, ANONYMOUS_ACCESS)},
    }


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
    images = _attempt(lambda: list_images(ecr, name))
    detail = RepositoryDetail(
        name=name,
        images=images,
        lifecycle=_attempt(lambda: ecr.get_lifecycle_policy(repositoryName=name).get("lifecyclePolicyText", "")),
        policy=_attempt(lambda: ecr.get_repository_policy(repositoryName=name).get("policyText", "")),
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


# --------------------------------------------------------------------------
# Signature verification (cosign, key-based)
# --------------------------------------------------------------------------


LayerFetcher = Callable[[str, str], bytes]
"""(repository, layer digest) -> the blob's bytes; raises `PayloadUnavailable`."""


class PayloadUnavailable(Exception):
    """A signature payload blob could not be read; the message is safe to show."""


class SignatureReader:
    """Reads and verifies a repository's cosign signatures.

    One BatchGetImage per repository (per 100 signature manifests) returns the
    signature manifests; each signature layer's payload is reconstructed as cosign
    writes it for `<registry host>/<repo>@<digest>` and used when its sha256 is the
    layer digest, so no blob is downloaded. A payload that is not the canonical one
    (a different docker reference, annotations) is fetched with `fetch_layer`
    (GetDownloadUrlForLayer + GET) and verified as stored."""

    def __init__(self, ecr: ECRClient, ring: cosign.KeyRing, fetch_layer: LayerFetcher) -> None:
        self._ecr = ecr
        self._ring = ring
        self._fetch_layer = fetch_layer

    def read(
        self, repository: str, reference: str, images: Sequence[ImageDetailTypeDef]
    ) -> dict[str, tuple[cosign.Verification, ...]]:
        artifacts = signature_artifacts(images)
        manifests = self._manifests(repository, sorted({a.image_digest for a in artifacts}))
        out: dict[str, tuple[cosign.Verification, ...]] = {}
        for artifact in artifacts:
            manifest = manifests.get(artifact.image_digest)
            if isinstance(manifest, str):  # why it could not be read
                out[artifact.reference] = (cosign.Verification(None, error=f"signature manifest not read: {manifest}"),)
                continue
            layers = cosign.signature_layers(manifest or {})
            out[artifact.reference] = tuple(self._verify(repository, reference, artifact, layer) for layer in layers)
        return out

    def _manifests(self, repository: str, digests: Sequence[str]) -> dict[str, dict[str, Any] | str]:
        """Signature manifests by digest; a string says why one could not be read."""
        out: dict[str, dict[str, Any] | str] = {}
        for start in range(0, len(digests), BATCH_GET_IMAGE_LIMIT):
            chunk = digests[start : start + BATCH_GET_IMAGE_LIMIT]
            answer = _attempt(
                partial(
                    self._ecr.batch_get_image,
                    repositoryName=repository,
                    imageIds=[{"imageDigest": d} for d in chunk],
                    acceptedMediaTypes=list(SIGNATURE_MANIFEST_TYPES),
                )
            )
            if answer.value is None:
                out.update({d: f"BatchGetImage: {answer.error}" for d in chunk})
                continue
            for failure in answer.value.get("failures", []):
                digest = failure.get("imageId", {}).get("imageDigest", "")
                reason = f"{failure.get('failureCode', 'failure')}: {failure.get('failureReason', '')}".rstrip(": ")
                out[digest] = f"BatchGetImage: {reason}"
            for image in answer.value.get("images", []):
                out[image.get("imageId", {}).get("imageDigest", "")] = _parse_manifest(image.get("imageManifest", ""))
            for digest in chunk:
                out.setdefault(digest, "BatchGetImage: image missing from the answer")
        return out

    def _verify(
        self, repository: str, reference: str, artifact: SignatureArtifact, layer: Mapping[str, Any]
    ) -> cosign.Verification:
        signature = layer["annotations"][cosign.SIGNATURE_ANNOTATION]
        layer_digest = layer.get("digest")
        if not isinstance(layer_digest, str) or not _SHA256_DIGEST.match(layer_digest):
            return cosign.Verification(False, error="signature layer has no valid sha256 digest")
        payload = cosign.canonical_payload(reference, artifact.subject)
        if cosign.sha256_digest(payload) != layer_digest:
            try:
                payload = self._fetch_layer(repository, layer_digest)
            except PayloadUnavailable as exc:
                return cosign.Verification(False, error=f"payload not reconstructable and not downloadable: {exc}")
        return cosign.verify(payload, signature, artifact.subject, self._ring)


def _parse_manifest(text: str) -> dict[str, Any] | str:
    try:
        parsed = json.loads(text)
    except ValueError:
        return "signature manifest is not valid JSON"
    return parsed if isinstance(parsed, dict) else "signature manifest is not a JSON object"


class LayerDownloader:
    """GetDownloadUrlForLayer, then GET the pre-signed URL; the bytes must hash to
    the digest. The URL carries a signature in its query string, so it never
    appears in an error; the GET is counted as `s3:GET layer`."""

    def __init__(
        self,
        ecr: ECRClient,
        counter: RequestCounter,
        timeout: float,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._ecr = ecr
        self._counter = counter
        self._timeout = timeout
        self._transport = transport

    def __call__(self, repository: str, digest: str) -> bytes:
        answer = _attempt(lambda: self._ecr.get_download_url_for_layer(repositoryName=repository, layerDigest=digest))
        url = answer.value.get("downloadUrl") if answer.value is not None else None
        if not url:
            raise PayloadUnavailable(f"GetDownloadUrlForLayer: {answer.error or 'no download URL'}")
        self._counter.add("s3:GET layer")
        body = self._get(url)
        if cosign.sha256_digest(body) != digest:
            raise PayloadUnavailable(f"downloaded layer does not match {digest}")
        return body

    def _get(self, url: str) -> bytes:
        client = httpx.Client(transport=self._transport, timeout=self._timeout, follow_redirects=False)
        try:
            with client, client.stream("GET", url) as response:
                if response.status_code != 200:
                    raise PayloadUnavailable(f"layer download answered HTTP {response.status_code}")
                body = b""
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_PAYLOAD_BYTES:
                        raise PayloadUnavailable(f"layer is larger than {MAX_PAYLOAD_BYTES} bytes")
                return body
        except httpx.HTTPError as exc:
            raise PayloadUnavailable(f"layer download failed: {describe_transport_error(exc, self._timeout)}") from None


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
    destinations: list[str] = []
    notes: list[str] = []
    for rule in rules:
        for dest in rule.get("destinations", []):
            destinations.append(f"{dest.get('registryId', '?')}/{dest.get('region', '?')}")
        filters = [f.get("filter", "") for f in rule.get("repositoryFilters", [])]
        if filters:
            notes.append(f"only repositories starting with {', '.join(filters)}")
    return Fact.ok(
        ReplicationFacts(
            enabled=bool(destinations),
            destinations=tuple(destinations),
            detail="; ".join(notes) or ("all repositories" if destinations else "no replication rules"),
        ),
        source=source,
    )


# --------------------------------------------------------------------------
# CloudTrail
# --------------------------------------------------------------------------


def _logging_fact(cloudtrail: CloudTrailClient, region: str) -> Fact[LoggingFacts]:
    source = "cloudtrail:DescribeTrails"
    listed = _attempt(lambda: cloudtrail.describe_trails(includeShadowTrails=True))
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
        status: Outcome[Any] = _attempt(partial(cloudtrail.get_trail_status, Name=arn))
        selectors: Outcome[Any] = Outcome(value=None)
        if trail.get("HasCustomEventSelectors"):
            selectors = _attempt(partial(cloudtrail.get_event_selectors, TrailName=arn))
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


# --------------------------------------------------------------------------
# IAM: users whose access keys can push
# --------------------------------------------------------------------------


@dataclass
class _IamInventory:
    users: list[Mapping[str, Any]] = field(default_factory=list)
    groups: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    policies: dict[str, Any] = field(default_factory=dict)  # ARN -> default version document


def _iam_inventory(iam: IAMClient) -> _IamInventory:
    """Users, groups and customer managed policies in one paginated call
    (GetAccountAuthorizationDetails), instead of five calls per user."""
    inv = _IamInventory()
    paginator = iam.get_paginator("get_account_authorization_details")
    for page in paginator.paginate(Filter=["User", "Group", "LocalManagedPolicy"]):
        inv.users.extend(page.get("UserDetailList", []))
        for group in page.get("GroupDetailList", []):
            inv.groups[group.get("GroupName", "")] = group
        for policy in page.get("Policies", []):
            for version in policy.get("PolicyVersionList", []):
                if version.get("IsDefaultVersion"):
                    inv.policies[policy.get("Arn", "")] = version.get("Document", {})
    return inv


class _PolicyResolver:
    """Managed policy documents by ARN: customer policies from the inventory,
    AWS managed ones fetched once each (GetPolicy + GetPolicyVersion) and cached."""

    def __init__(self, iam: IAMClient, known: Mapping[str, Any]) -> None:
        self._iam = iam
        self._docs: dict[str, Any] = dict(known)

    def document(self, arn: str) -> Any:
        if arn not in self._docs:
            policy = self._iam.get_policy(PolicyArn=arn)["Policy"]
            version = self._iam.get_policy_version(PolicyArn=arn, VersionId=policy.get("DefaultVersionId", "v1"))
            self._docs[arn] = version["PolicyVersion"].get("Document", {})
        return self._docs[arn]


def _active_keys(iam: IAMClient, user: str) -> list[Mapping[str, Any]]:
    keys: list[Mapping[str, Any]] = []
    for page in iam.get_paginator("list_access_keys").paginate(UserName=user):
        keys.extend(k for k in page.get("AccessKeyMetadata", []) if k.get("Status") == "Active")
    return keys


def _credentials_fact(iam: IAMClient) -> Fact[tuple[CredentialFacts, ...]]:
    source = "iam:GetAccountAuthorizationDetails"
    inventory = _attempt(lambda: _iam_inventory(iam))
    if inventory.value is None:
        return Fact.error(inventory.error or "no answer", source=source)
    inv = inventory.value
    resolver = _PolicyResolver(iam, inv.policies)

    def collect_keys() -> tuple[CredentialFacts, ...]:
        out: list[CredentialFacts] = []
        for user in inv.users:
            name = str(user.get("UserName", ""))
            grants = push_grants(user, inv.groups, resolver.document)
            if not grants:
                continue
            for key in _active_keys(iam, name):
                out.append(
                    CredentialFacts(
                        id=mask_key_id(str(key.get("AccessKeyId", ""))),
                        kind="iam-access-key",
                        created_at=as_utc(key.get("CreateDate")),
                        can_push=True,
                        detail=f"IAM user {name}; ECR push via {', '.join(grants)}",
                    )
                )
        return tuple(out)

    keys = _attempt(collect_keys)
    if keys.value is None:
        return Fact.error(keys.error or "no answer", source="iam:ListAccessKeys")
    return Fact.ok(keys.value, source=source)
