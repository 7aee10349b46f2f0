"""Collect facts about the Azure Container Registries of one subscription.

Control plane (Azure Resource Manager, azure-mgmt-containerregistry, API 2025-11-01,
the first stable version exposing network rules, policies and encryption together):

* once: `Registries_List` (or `_ListByResourceGroup`), which also carries SKU,
  `adminUserEnabled`, `anonymousPullEnabled`, `publicNetworkAccess`, `networkRuleSet`,
  `networkRuleBypassOptions`, private endpoint connections, `policies`, `encryption`
  and `zoneRedundancy` of every registry;
* per registry: `Replications_List`, `Tokens_List`, `ScopeMaps_List` and the
  registry's diagnostic settings (`DiagnosticSettings_List`, api-version
  2021-05-01-preview, sent through the same SDK pipeline with `send_request`:
  azure-mgmt-monitor 7.x no longer ships the diagnostic-settings operations).

Data plane (the registry's login server, API 2021-07-01), with ACR's token exchange:
a Microsoft Entra token for `containerregistry.azure.net` becomes an ACR refresh
token (`POST /oauth2/exchange`, once per registry), which buys access tokens
(`POST /oauth2/token`): one for `registry:catalog:*` per registry, one per
repository for `repository:<name>:metadata_read`; then `/acr/v1/_catalog` and, per
repository, `/acr/v1/<name>/_tags` (tag digests, times, `writeEnabled` /
`deleteEnabled` locks and cosign `.sig` tags). Two requests per repository with up
to 100 tags; with trusted keys, one more per `.sig` tag: its signature manifest
(`/v2/<name>/manifests/<tag>`, the OCI API) verified against cosign's canonical payload.

Every listing is bounded (`MAX_PAGES`): a `nextLink` / `Link` that never ends is an
error, not a hang. A 403 makes the affected facts `not_observable` naming the role
to grant (Reader, Monitoring Reader, AcrPull), so the finding is `manual`; a 429 is
retried after its Retry-After (bounded), other failures become error facts of the
registry they concern.
"""

from __future__ import annotations

import fnmatch
import os
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urljoin, urlsplit

import httpx
from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError, HttpResponseError
from azure.core.rest import HttpRequest
from azure.identity import ClientSecretCredential, DefaultAzureCredential
from azure.mgmt.containerregistry import ContainerRegistryManagementClient

from audits.collectors import acr_facts, cosign
from audits.collectors.acr_facts import GRANT_ACR_PULL, GRANT_READER, RegistryView, RepositoryListing, registry_facts
from audits.collectors.base import CollectOptions, RequestCounter
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
    EncryptionFacts,
    Fact,
    RetentionFacts,
    TagImmutabilityFacts,
    TargetFacts,
    utcnow,
)
from audits.targets import AcrTarget
from audits.vocabulary import cosign_artifact

T = TypeVar("T")

KIND = "acr"
MAX_PAGES = 100
"""Pages read from one listing at most (ARM pages are 100+ items, the data plane's
`n` below): 100 pages is far beyond any real registry, and a server that keeps
sending `nextLink` is cut off with an error."""
CATALOG_PAGE = 1000
TAGS_PAGE = 100
MAX_RETRY_AFTER_S = 10.0  # a Retry-After longer than this is not waited for
DATA_PLANE_ATTEMPTS = 3
REGISTRY_SCOPE = "https://containerregistry.azure.net/.default"
DIAGNOSTICS_API = "2021-05-01-preview"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


ALL_FACTS = (
    ENDPOINT,
    TLS,
    PLAIN_HTTP,
    ANONYMOUS_ACCESS,
    TOKEN_REALM_ORIGIN,
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
_REGISTRY_FACTS = (ADMIN_ACCOUNT, NETWORK_EXPOSURE, REPLICATION, CREDENTIALS, LOGGING, ENCRYPTION, RETENTION)
_REPOSITORY_FACTS = (REPOSITORIES, TAG_IMMUTABILITY)


class Forbidden(Exception):
    """The auditor's identity lacks a role: the affected facts are not observable."""


class ListingTooLong(Exception):
    """A paged listing did not end within MAX_PAGES."""


# --------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------


@dataclass
class AzureSession:
    """The clients one collection uses, built per collection (never at import)."""

    credential: TokenCredential
    arm: ContainerRegistryManagementClient
    data: httpx.Client
    counter: RequestCounter

    def close(self) -> None:
        self.data.close()
        self.arm.close()


def collect(target: AcrTarget, options: CollectOptions) -> TargetFacts:
    """Collect every ACR fact for `target`; never raises for Azure/network errors."""
    started = utcnow()
    counter = RequestCounter()
    try:
        session = make_session(target, options, counter)
    except (ValueError, AzureError) as exc:
        return _all_errors(target, f"cannot create Azure clients: {_describe(exc)}", started, counter)
    try:
        return collect_with_session(target, options, session, started)
    except Exception as exc:  # a collector bug must become error facts, never a crash or a pass
        return _all_errors(target, f"ACR collector failed: {type(exc).__name__}: {_describe(exc)}", started, counter)
    finally:
        session.close()


def make_credential(target: AcrTarget) -> TokenCredential:
    """A service principal when `client_secret_env` names one, else DefaultAzureCredential.
    A custom `authority_host` is one the caller vouches for: instance discovery (a
    call to login.microsoftonline.com asking whether the host is a known cloud) is off."""
    verify = {"connection_verify": str(target.ca_file)} if target.ca_file else {}
    authority = target.authority_host or os.environ.get("AZURE_AUTHORITY_HOST")
    if target.client_secret_env:
        secret = os.environ.get(target.client_secret_env, "")
        client_id = os.environ.get(target.client_id_env or "", "")
        if not (secret and client_id and target.tenant_id):
            raise ValueError(
                f"client_secret_env needs tenant_id and client_id_env set, and both variables "
                f"({target.client_id_env}, {target.client_secret_env}) non-empty"
            )
        return ClientSecretCredential(
            target.tenant_id,
            client_id,
            secret,
            authority=authority,
            disable_instance_discovery=target.authority_host is not None,
            **verify,
        )
    return DefaultAzureCredential(authority=authority, **verify)


def make_session(target: AcrTarget, options: CollectOptions, counter: RequestCounter) -> AzureSession:
    credential = make_credential(target)

    def count(request: Any) -> None:
        counter.add(f"arm:{request.http_request.method}")

    arm_kwargs: dict[str, Any] = {
        "retry_total": 3,
        "retry_backoff_factor": 0.2,
        "retry_backoff_max": MAX_RETRY_AFTER_S,
        "connection_timeout": options.timeout,
        "read_timeout": options.timeout,
        "raw_request_hook": count,
    }
    if target.ca_file:
        arm_kwargs["connection_verify"] = str(target.ca_file)
    arm = ContainerRegistryManagementClient(
        credential,
        target.subscription_id,
        base_url=target.endpoint_url.rstrip("/") if target.endpoint_url else None,
        **arm_kwargs,
    )
    width = max(options.concurrency, 1)
    limits = httpx.Limits(max_connections=width, max_keepalive_connections=width)
    data = httpx.Client(
        verify=ssl.create_default_context(cafile=str(target.ca_file)) if target.ca_file else True,
        timeout=options.timeout,
        limits=limits,
        follow_redirects=False,
        event_hooks={"request": [lambda request: counter.add(f"data:{request.method}")]},
    )
    return AzureSession(credential, arm, data, counter)


def collect_with_session(
    target: AcrTarget, options: CollectOptions, session: AzureSession, started: datetime | None = None
) -> TargetFacts:
    started = started or utcnow()
    facts: dict[str, Fact[Any]] = dict(_static_facts())
    options.record_all(facts)
    listed = _attempt(lambda: _list_registries(session, target))
    if listed.value is None:
        failed = _failed_fact(listed, "Registries_List", GRANT_READER)
        facts.update({name: failed for name in (*_REGISTRY_FACTS, *_REPOSITORY_FACTS)})
        return _target_facts(target, facts, started, session.counter)
    registries = _selected_registries(listed.value, target, options)
    with ThreadPoolExecutor(max_workers=max(options.concurrency, 1)) as pool:
        views = _registry_views(session, pool, registries)
        facts.update(registry_facts(views))
        options.record_all(facts)
        facts.update(_repository_facts(session, target, options, pool, views))
    options.record_all(facts)
    return _target_facts(target, facts, started, session.counter)


# --------------------------------------------------------------------------
# Facts that need no call
# --------------------------------------------------------------------------


def _static_facts() -> dict[str, Fact[Any]]:
    managed = "Azure-managed HTTPS endpoint (TLS and the token service are Microsoft's)"
    return {
        ENDPOINT: Fact.managed(managed),
        TLS: Fact.managed(managed),
        PLAIN_HTTP: Fact.managed(managed),
        TOKEN_REALM_ORIGIN: Fact.managed(managed),
        ANONYMOUS_ACCESS: Fact.managed("anonymous pull is judged per repository from anonymousPullEnabled"),
        CONTENT_TRUST: Fact.unsupported(
            "ACR cannot refuse unsigned pushes (Docker Content Trust is retired on ACR); sign with Notation or "
            "cosign and verify at admission (Ratify, Kyverno, or a Gatekeeper policy)"
        ),
        PULL_COUNTS: Fact.unsupported(
            "ACR reports no daily pull counts through its APIs; count `Pull` operations of "
            "ContainerRegistryRepositoryEvents in Log Analytics"
        ),
        SCANNING: Fact.not_observable(
            "ACR scans through Microsoft Defender for Containers (a subscription plan, Microsoft.Security); "
            "check the plan is on for this subscription (Security Reader can see it)"
        ),
    }


def _target_facts(
    target: AcrTarget, facts: dict[str, Fact[Any]], started: datetime, counter: RequestCounter
) -> TargetFacts:
    return TargetFacts(
        target=target.name, kind=KIND, facts=facts, started_at=started, finished_at=utcnow(), requests=counter.total
    )


def _all_errors(target: AcrTarget, detail: str, started: datetime, counter: RequestCounter) -> TargetFacts:
    error: Fact[Any] = Fact.error(detail, source="acr")
    return _target_facts(target, {name: error for name in ALL_FACTS}, started, counter)


# --------------------------------------------------------------------------
# Outcomes: a value, or why not
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome(Generic[T]):
    value: T | None = None
    error: str | None = None
    forbidden: bool = False


def _attempt(call: Callable[[], T]) -> Outcome[T]:
    try:
        return Outcome(value=call())
    except Forbidden as exc:
        return Outcome(error=str(exc), forbidden=True)
    except HttpResponseError as exc:
        if exc.status_code == 403:
            return Outcome(error=_describe(exc), forbidden=True)
        return Outcome(error=_describe(exc))
    except (AzureError, httpx.HTTPError, ListingTooLong, ValueError) as exc:
        return Outcome(error=_describe(exc))


def _failed_fact(outcome: Outcome[Any], source: str, grant: str) -> Fact[Any]:
    if outcome.forbidden:
        return Fact.not_observable(f"{grant} ({outcome.error})", source=source)
    return Fact.error(outcome.error or "no answer", source=source)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, HttpResponseError):
        code = exc.error.code if exc.error is not None else None
        return f"HTTP {exc.status_code} {code or exc.reason or ''}".strip()[:300]
    return (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)[:300]


# --------------------------------------------------------------------------
# Control plane
# --------------------------------------------------------------------------


def _bounded(pages: Iterator[Any], what: str) -> list[dict[str, Any]]:
    """Every item of a paged SDK listing as wire JSON, at most MAX_PAGES pages."""
    out: list[dict[str, Any]] = []
    for number, page in enumerate(pages, 1):
        if number > MAX_PAGES:
            raise ListingTooLong(f"{what}: the listing did not end after {MAX_PAGES} pages (nextLink keeps coming)")
        out.extend(item.as_dict() for item in page)
    return out


def _list_registries(session: AzureSession, target: AcrTarget) -> list[dict[str, Any]]:
    ops = session.arm.registries
    pager = ops.list_by_resource_group(target.resource_group) if target.resource_group else ops.list()
    return _bounded(pager.by_page(), "Registries_List")


def _selected_registries(
    found: Sequence[dict[str, Any]], target: AcrTarget, options: CollectOptions
) -> list[dict[str, Any]]:
    by_name = {str(r.get("name", "")): r for r in found}
    missing = sorted(set(target.registries) - set(by_name))
    for name in missing:
        options.published.gap(f"registry {name} is not in subscription {target.subscription_id}")
    wanted = target.registries or sorted(by_name)
    return [by_name[n] for n in wanted if n in by_name]


def _registry_views(
    session: AzureSession, pool: ThreadPoolExecutor, registries: Sequence[dict[str, Any]]
) -> list[RegistryView]:
    """Each registry with its sub-resources, every read in flight at once (bounded by the pool)."""
    pending = {
        (index, key): pool.submit(_attempt, call)
        for index, registry in enumerate(registries)
        for key, call in _sub_resource_reads(session, registry).items()
    }
    views = []
    for index, registry in enumerate(registries):
        values: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for (owner, key), future in pending.items():
            if owner != index:
                continue
            outcome = future.result()
            values[key] = outcome.value
            if outcome.value is None:
                prefix = "forbidden: " if outcome.forbidden else ""
                errors[key] = f"{prefix}{registry.get('name', '')}: {key.replace('_', ' ')}: {outcome.error}"
        views.append(RegistryView(resource=registry, errors=errors, **values))
    return views


def _sub_resource_reads(session: AzureSession, registry: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    name = str(registry.get("name", ""))
    group = acr_facts.resource_group_of(str(registry.get("id", "")))
    arm = session.arm
    return {
        "replications": lambda: _bounded(arm.replications.list(group, name).by_page(), "Replications_List"),
        "tokens": lambda: _bounded(arm.tokens.list(group, name).by_page(), "Tokens_List"),
        "scope_maps": lambda: _bounded(arm.scope_maps.list(group, name).by_page(), "ScopeMaps_List"),
        "diagnostic_settings": lambda: _diagnostic_settings(session, str(registry.get("id", ""))),
    }


def _diagnostic_settings(session: AzureSession, registry_id: str) -> list[dict[str, Any]]:
    request = HttpRequest(
        "GET", f"{registry_id}/providers/Microsoft.Insights/diagnosticSettings?api-version={DIAGNOSTICS_API}"
    )
    response = session.arm.send_request(request)
    if response.status_code == 403:
        raise Forbidden(f"HTTP 403 on diagnostic settings of {registry_id.rsplit('/', 1)[-1]}")
    response.raise_for_status()
    body = response.json()
    values = body.get("value", []) if isinstance(body, dict) else None
    if not isinstance(values, list):
        raise ValueError("diagnostic settings: the answer has no `value` list")
    return [v for v in values if isinstance(v, dict)]


# --------------------------------------------------------------------------
# Data plane
# --------------------------------------------------------------------------


class DataPlane:
    """One registry's data plane: ACR's token exchange, then bounded listings.
    Only paths on the registry's own login server are requested (a `Link` to
    another origin is refused)."""

    def __init__(self, session: AzureSession, registry: RegistryView, tenant: str | None) -> None:
        self.session = session
        self.base = f"https://{registry.login_server}"
        self.service = registry.login_server
        self.tenant = tenant
        self._refresh: str | None = None

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request, retried after a 429's Retry-After (bounded)."""
        url = urljoin(self.base, path)
        for attempt in range(DATA_PLANE_ATTEMPTS):
            response = self.session.data.request(method, url, **kwargs)
            if response.status_code != 429 or attempt == DATA_PLANE_ATTEMPTS - 1:
                break
            time.sleep(_retry_after(response))
        if response.status_code in (401, 403):
            raise Forbidden(f"HTTP {response.status_code} on {urlsplit(url).path}")
        response.raise_for_status()
        return response

    def refresh_token(self) -> str:
        if self._refresh is None:
            aad = self.session.credential.get_token(REGISTRY_SCOPE).token
            form = {"grant_type": "access_token", "service": self.service, "access_token": aad}
            if self.tenant:
                form["tenant"] = self.tenant
            self._refresh = _token_field(self._send("POST", "/oauth2/exchange", data=form), "refresh_token")
        return self._refresh

    def access_token(self, scope: str) -> str:
        form = {"grant_type": "refresh_token", "service": self.service, "scope": scope}
        form["refresh_token"] = self.refresh_token()
        return _token_field(self._send("POST", "/oauth2/token", data=form), "access_token")

    def paged(self, path: str, params: dict[str, Any], token: str, item: str) -> list[Any]:
        headers = {"Authorization": f"Bearer {token}"}
        out: list[Any] = []
        next_path: str | None = path
        for _ in range(MAX_PAGES):
            if next_path is None:
                return out
            response = self._send("GET", next_path, params=params, headers=headers)
            body = response.json()
            values = body.get(item) if isinstance(body, dict) else None
            if not isinstance(values, list):
                raise ValueError(f"{path}: the answer has no `{item}` list")
            out.extend(values)
            next_path, params = self._next(response), {}
        raise ListingTooLong(f"{path}: the listing did not end after {MAX_PAGES} pages (Link keeps coming)")

    def _next(self, response: httpx.Response) -> str | None:
        link = response.links.get("next", {}).get("url")
        if not link:
            return None
        target = urlsplit(urljoin(self.base, link))
        if f"{target.scheme}://{target.netloc}" != self.base:
            raise ValueError(f"the registry's Link points to another origin ({target.netloc})")
        return f"{target.path}?{target.query}" if target.query else target.path

    def repositories(self) -> list[str]:
        token = self.access_token("registry:catalog:*")
        names = self.paged("/acr/v1/_catalog", {"n": CATALOG_PAGE}, token, "repositories")
        return [n for n in names if isinstance(n, str)]

    def tags(self, repository: str, *, pull: bool = False) -> tuple[list[dict[str, Any]], str]:
        """The repository's `_tags` entries and the access token used (with `pull` when
        signature manifests are to be read with it too)."""
        actions = "metadata_read,pull" if pull else "metadata_read"
        token = self.access_token(f"repository:{repository}:{actions}")
        # The name is one path segment, `/` included (`team%2Fapp`), as the API describes `{name}`.
        found = self.paged(f"/acr/v1/{quote(repository, safe='')}/_tags", {"n": TAGS_PAGE}, token, "tags")
        return [t for t in found if isinstance(t, dict)], token

    def manifest(self, repository: str, reference: str, token: str) -> dict[str, Any]:
        path = f"/v2/{quote(repository, safe='')}/manifests/{quote(reference, safe='')}"
        headers = {"Authorization": f"Bearer {token}", "Accept": OCI_MANIFEST}
        body = self._send("GET", path, headers=headers).json()
        if not isinstance(body, dict):
            raise ValueError(f"{path}: the manifest is not a JSON object")
        return body


def verify_signature(
    plane: DataPlane, repository: str, signature_tag: str, token: str, ring: cosign.KeyRing
) -> tuple[cosign.Verification, ...]:
    """Read one cosign signature manifest (one request) and verify each signature layer.
    The payload is cosign's canonical document for `<login server>/<repo>@<digest>`
    when the layer's digest says so, so no blob is downloaded; any other payload is
    reported as not verified rather than guessed at."""
    artifact = cosign_artifact(signature_tag)
    if artifact is None:
        return ()
    subject = artifact[0]
    read = _attempt(lambda: plane.manifest(repository, signature_tag, token))
    if read.value is None:
        return (cosign.Verification(None, error=f"signature manifest could not be read: {read.error}"),)
    payload = cosign.canonical_payload(f"{plane.service}/{repository}", subject)
    checks = []
    for layer in cosign.signature_layers(read.value):
        if layer.get("digest") != cosign.sha256_digest(payload):
            checks.append(cosign.Verification(None, error="the signed payload is not cosign's canonical document"))
            continue
        signature = str(layer["annotations"][cosign.SIGNATURE_ANNOTATION])
        checks.append(cosign.verify(payload, signature, subject, ring))
    return tuple(checks)


def _token_field(response: httpx.Response, name: str) -> str:
    body = response.json()
    value = body.get(name) if isinstance(body, dict) else None
    if not isinstance(value, str) or not value:
        raise ValueError(f"{urlsplit(str(response.url)).path}: the answer has no {name}")
    return value


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(max(float(response.headers.get("Retry-After", "1")), 0.0), MAX_RETRY_AFTER_S)
    except ValueError:
        return 1.0


def _repository_facts(
    session: AzureSession,
    target: AcrTarget,
    options: CollectOptions,
    pool: ThreadPoolExecutor,
    views: Sequence[RegistryView],
) -> dict[str, Fact[Any]]:
    planes = {v.name: DataPlane(session, v, target.tenant_id) for v in views}
    catalogs = dict(zip(planes, pool.map(lambda p: _attempt(p.repositories), planes.values()), strict=True))
    failed = {name: outcome for name, outcome in catalogs.items() if outcome.value is None}
    if failed:
        name, outcome = next(iter(failed.items()))
        fact = _failed_fact(replace(outcome, error=f"{name}: {outcome.error}"), "acr:/acr/v1/_catalog", GRANT_ACR_PULL)
        return {n: fact for n in _REPOSITORY_FACTS} | _retention_and_encryption(views, [])
    selected = [
        RepositoryListing(registry, repo)
        for registry, outcome in catalogs.items()
        for repo in outcome.value or []
        if _selected(f"{registry}/{repo}", repo, target)
    ]
    listings = options.cap_repositories(selected, name=lambda r: r.qualified)
    options.report("acr repositories", 0, len(listings))
    ring = cosign.load_keys(options.trusted_keys)
    read = list(pool.map(lambda r: _with_tags(planes[r.registry], r, ring), listings))
    options.report("acr repositories", len(read), len(read))
    unverified = None if ring.configured else "no trusted key configured"
    return _assemble(views, read, target, unverified) | _retention_and_encryption(views, read)


def _selected(qualified: str, repo: str, target: AcrTarget) -> bool:
    return not target.repositories or any(
        fnmatch.fnmatchcase(qualified, p) or fnmatch.fnmatchcase(repo, p) for p in target.repositories
    )


def _with_tags(plane: DataPlane, listing: RepositoryListing, ring: cosign.KeyRing) -> RepositoryListing:
    """Two requests (token, `_tags`), plus one per `.sig` tag when there are keys to verify with."""
    outcome = _attempt(lambda: plane.tags(listing.name, pull=ring.configured))
    if outcome.value is None:
        return replace(listing, error=f"_tags: {outcome.error}")
    tags, token = outcome.value
    checks: dict[str, tuple[cosign.Verification, ...]] = {}
    if ring.configured:
        for name in (str(t.get("name", "")) for t in tags):
            if (artifact := cosign_artifact(name)) is not None and artifact[1] == "sig":
                checks[name] = verify_signature(plane, listing.name, name, token, ring)
    return replace(listing, tags=tags, verifications=checks)


def _assemble(
    views: Sequence[RegistryView],
    listings: Sequence[RepositoryListing],
    target: AcrTarget,
    unverified_reason: str | None,
) -> dict[str, Fact[Any]]:
    anonymous = {v.name: v.properties.get("anonymousPullEnabled") is True for v in views}
    hosts = {v.name: v.login_server for v in views}
    repos = tuple(
        acr_facts.repository_facts(
            listing,
            anonymous_pull=anonymous[listing.registry],
            declared_patterns=target.public_repositories,
            source=f"{hosts[listing.registry]}/acr/v1/{listing.name}/_tags",
            unverified_reason=unverified_reason,
        )
        for listing in listings
    )
    locks = {listing.qualified: acr_facts.tag_locks(listing) for listing in listings if listing.error is None}
    return {
        REPOSITORIES: Fact.ok(repos, source="acr:/acr/v1/{repository}/_tags"),
        TAG_IMMUTABILITY: Fact.ok(TagImmutabilityFacts(by_repository=locks), source="acr:/acr/v1/{repository}/_tags"),
    }


def _retention_and_encryption(
    views: Sequence[RegistryView], listings: Sequence[RepositoryListing]
) -> dict[str, Fact[Any]]:
    """Both are registry settings that apply to every repository in the registry;
    they are reported per repository (and per registry when it has none)."""
    by_name = {v.name: v for v in views}
    policy = {v.name: acr_facts.retention_summary(v) for v in views}
    by_repo = {r.qualified: p for r in listings if (p := policy[r.registry]) is not None}
    uncovered = tuple(sorted(r.qualified for r in listings if policy[r.registry] is None))
    everywhere = bool(views) and all(policy.values())
    wide = "; ".join(f"{n}: {p}" for n, p in policy.items()) if everywhere and not listings else None
    settings = {r.qualified: acr_facts.encryption_setting(by_name[r.registry]) for r in listings}
    weakest = sorted((acr_facts.encryption_setting(v) for v in views), key=lambda s: s.customer_managed)
    source = "arm:Registries_List"
    return {
        RETENTION: Fact.ok(RetentionFacts(wide, by_repo, uncovered), source=source),
        ENCRYPTION: Fact.ok(
            EncryptionFacts(by_repository=settings, registry_wide=weakest[0] if weakest and not listings else None),
            source=source,
        ),
    }
