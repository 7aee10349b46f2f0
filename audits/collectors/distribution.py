"""Collector for a self-hosted Docker Distribution (`registry:2`) endpoint.

`collect(target, options)` observes the registry through its OCI API and, when
the audit runs on the registry host (`config_file` set), through its
`config.yml`. It returns facts and never judges them.

Choices a reader of the facts should know:

* **Plain-HTTP targets.** For an `http://` target no TLS handshake is tried;
  `TLS` is `ok` with `protocol=None, verified=False,
  verify_error="target is plain HTTP"` and `ENDPOINT.scheme == "http"`, so
  RG-TLS-001/002 fail with a clear reason instead of erroring.
* **Unverified TLS.** Credentials are never sent to an endpoint whose
  certificate did not verify (chain or hostname): `REPOSITORIES` is then
  `error("not collected: TLS verification failed (...)")`. The anonymous and
  plain-HTTP probes carry no credentials, so they always run without
  certificate verification: they show what an unauthenticated client (or an
  attacker) would get, whatever the certificate.
* **Plain-HTTP targets with credentials** do get them (Basic or Bearer): the
  operator chose the `http://` URL; RG-AUTH-002 reports the exposure.
* **Signatures.** The OCI referrers API is probed once per registry (the first
  tag's digest); a 404 (Distribution 2.8) switches to cosign's tag scheme,
  which costs no request for unsigned tags because `sha256-<hex>.sig` tags are
  already in the tag list. A signature manifest is fetched once per signed
  digest; the payload blob only when it is not the canonical payload cosign
  would have written.
* **Registry-side facts** (`LOGGING`, `ENCRYPTION`, `NETWORK_EXPOSURE`,
  `CREDENTIALS`, `ADMIN_ACCOUNT`) come from `config_file` only; without it they
  are `not_observable` with what to check. `ENCRYPTION` is registry-wide
  (`registry_wide`; `by_repository` stays empty: storage is shared).
  `RETENTION` is always `not_observable` (garbage collection runs outside the
  API). Tag immutability, scanning, content trust, replication and pull counts
  do not exist in Distribution: `unsupported`.
* `RepositoryFacts.untagged_digests` stays 0 and `TagFacts.pushed_at` None:
  the Distribution API cannot list untagged manifests or push times.
"""

from __future__ import annotations

import asyncio
import fnmatch
import ipaddress
import os
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
import yaml

from audits.collectors import cosign
from audits.collectors.base import CollectOptions, RequestCounter
from audits.collectors.oci import (
    Challenge,
    Credentials,
    HttpPool,
    OciClient,
    OciError,
    Redactor,
    describe_transport_error,
    parse_www_authenticate,
    valid_digest,
    valid_repository,
    valid_tag,
)
from audits.collectors.tls_probe import TlsProbeError, probe_tls
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
    AnonymousAccessFacts,
    AuthChallenge,
    CredentialFacts,
    EncryptionFacts,
    EncryptionSetting,
    EndpointFacts,
    Fact,
    LoggingFacts,
    NetworkExposureFacts,
    PlainHttpFacts,
    RepositoryFacts,
    SignatureFacts,
    TagFacts,
    TargetFacts,
    TlsFacts,
    utcnow,
)
from audits.targets import DistributionTarget

T = TypeVar("T")

KIND = "distribution"
CATALOG_PAGE_SIZE = 100

# cosign artifacts (`.sig`/`.att`/`.sbom`) and the OCI referrers fallback tag
_ARTIFACT_TAG = re.compile(r"^sha256-([0-9a-f]{64})(?:\.(sig|att|sbom))?$")

_UNSUPPORTED = "not supported by distribution"
_CONFIG_FACTS = (LOGGING, ENCRYPTION, NETWORK_EXPOSURE, CREDENTIALS, ADMIN_ACCOUNT)
ALL_FACTS = (
    ENDPOINT, TLS, PLAIN_HTTP, ANONYMOUS_ACCESS, REPOSITORIES, RETENTION, TAG_IMMUTABILITY,
    SCANNING, CONTENT_TRUST, REPLICATION, PULL_COUNTS, *_CONFIG_FACTS,
)  # fmt: skip


TlsProbe = Callable[[str, int, Path | None, float], TlsFacts]


def collect(
    target: DistributionTarget,
    options: CollectOptions,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    tls_probe: TlsProbe = probe_tls,
    counter: RequestCounter | None = None,
) -> TargetFacts:
    """Observe one Distribution registry. Never raises: anything that could not
    be observed is an `error` fact with a human-readable reason.

    `transport` and `tls_probe` replace the network in unit tests; `counter`
    lets a caller (the bench) read requests per kind of call."""
    started = utcnow()
    counter = counter if counter is not None else RequestCounter()
    try:
        facts = asyncio.run(_Collection(target, options, counter, transport, tls_probe).run())
    except Exception as exc:  # the seam promises facts, never an exception
        detail = f"internal error in the distribution collector: {exc.__class__.__name__}"
        facts = {name: Fact.error(detail, target.url) for name in ALL_FACTS}
    return TargetFacts(
        target=target.name,
        kind=KIND,
        facts=facts,
        started_at=started,
        finished_at=utcnow(),
        requests=counter.total,
    )


# --------------------------------------------------------------------------
# Endpoint: where to connect
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Endpoint:
    url: str  # without trailing slash
    scheme: str
    host: str  # without IPv6 brackets
    port: int
    netloc: str  # host:port as written, the docker-reference prefix

    @classmethod
    def parse(cls, url: str) -> _Endpoint:
        parts = urlsplit(url.rstrip("/"))
        scheme = parts.scheme.lower()
        host = parts.hostname or ""
        port = parts.port or (443 if scheme == "https" else 80)
        return cls(urlunsplit((scheme, parts.netloc, "", "", "")), scheme, host, port, parts.netloc)

    @property
    def plain_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v2/"


@dataclass(frozen=True)
class _AnonProbe:
    """What unauthenticated `/v2/` and `/v2/_catalog` answered."""

    v2_status: int
    catalog_status: int | None
    challenge: Challenge | None
    catalog_first_page: tuple[str, ...] | None  # repositories, when listed anonymously


class _MissingCredential(Exception):
    pass


# --------------------------------------------------------------------------
# One collection run
# --------------------------------------------------------------------------


class _Collection:
    """State of one `collect` call: clients, the shared semaphore, caches."""

    def __init__(
        self,
        target: DistributionTarget,
        options: CollectOptions,
        counter: RequestCounter,
        transport: httpx.AsyncBaseTransport | None = None,
        tls_probe: TlsProbe = probe_tls,
    ) -> None:
        self.target = target
        self._transport = transport
        self._probe = tls_probe
        self.options = options
        self.counter = counter
        self.endpoint = _Endpoint.parse(target.url)
        self.timeout = target.timeout
        self.keys = cosign.load_keys(options.trusted_keys)
        self.redact = Redactor()
        self._referrers_supported: bool | None = None
        self._referrers_lock = asyncio.Lock()
        self._signature_tasks: dict[tuple[str, str], asyncio.Task[tuple[SignatureFacts, ...]]] = {}
        self._repos_done = 0
        self.semaphore = asyncio.Semaphore(max(1, options.concurrency))

    async def run(self) -> dict[str, Fact[Any]]:
        """Every fact, each also published the moment it is known (`options.record`),
        so a deadline that cuts the collection short keeps what was seen."""
        facts: dict[str, Fact[Any]] = {
            ENDPOINT: Fact.ok(EndpointFacts(self.endpoint.url, self.endpoint.scheme), self.target.url),
            **_static_facts(),
            **config_facts(self.target.config_file),
        }
        self.options.record_all(facts)
        async with self._pool(verify=False) as probe_pool:
            tls, plain, anon = await asyncio.gather(
                self._published(TLS, self._tls()),
                self._published(PLAIN_HTTP, self._plain_http(probe_pool)),
                self._anonymous(probe_pool),
            )
        facts[TLS], facts[PLAIN_HTTP] = tls, plain
        unlisted: Fact[tuple[RepositoryFacts, ...]] = Fact.error("repository listing did not finish", "")
        self.options.record(ANONYMOUS_ACCESS, self._anonymous_fact(anon, unlisted))
        repositories = self.options.record(REPOSITORIES, await self._repositories(tls, anon))
        facts[REPOSITORIES] = repositories
        facts[ANONYMOUS_ACCESS] = self.options.record(ANONYMOUS_ACCESS, self._anonymous_fact(anon, repositories))
        return facts

    async def _published(self, name: str, observing: Awaitable[Fact[T]]) -> Fact[T]:
        return self.options.record(name, await observing)

    def _pool(self, verify: ssl.SSLContext | bool) -> HttpPool:
        """Clients of one connection each, all behind the run's semaphore; every
        request they send is counted. `verify` is one shared context (loading
        a CA store per client would cost more than the requests)."""

        async def count(request: httpx.Request) -> None:
            self.counter.add(_call_name(request))

        def make_client() -> httpx.AsyncClient:
            return httpx.AsyncClient(
                transport=self._transport,
                verify=verify,
                timeout=httpx.Timeout(self.timeout),
                follow_redirects=False,
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
                event_hooks={"request": [count]},
            )

        return HttpPool(self.semaphore, make_client)

    # ---- TLS --------------------------------------------------------------

    async def _tls(self) -> Fact[TlsFacts]:
        ep = self.endpoint
        source = f"TLS handshake {ep.host}:{ep.port}"
        trust = str(self.target.ca_file) if self.target.ca_file is not None else "system"
        if ep.scheme != "https":
            plain = TlsFacts(ep.host, ep.port, None, None, False, "target is plain HTTP", None, trust)
            return Fact.ok(plain, source)
        try:
            facts = await asyncio.to_thread(self._probe, ep.host, ep.port, self.target.ca_file, self.timeout)
        except TlsProbeError as exc:
            return Fact.error(exc.detail, source)
        return Fact.ok(facts, source)

    # ---- unauthenticated probes ---------------------------------------------

    async def _plain_http(self, http: HttpPool) -> Fact[PlainHttpFacts]:
        """GET `/v2/` over plain HTTP on the same host:port. For an https target
        a refusal or a TLS server's complaint is the good answer, not an error."""
        url = self.endpoint.plain_url
        source = f"GET {url}"
        try:
            response = await http.request("GET", url)
        except httpx.TimeoutException as exc:
            return Fact.error(describe_transport_error(exc, self.timeout), source)
        except httpx.HTTPError as exc:
            if self.endpoint.scheme == "http":
                return Fact.error(describe_transport_error(exc, self.timeout), source)
            return Fact.ok(PlainHttpFacts(url, serves_api=False, status=None, redirects_to_https=False), source)
        location = response.headers.get("location", "")
        schemes = tuple(c.scheme for c in parse_www_authenticate(response.headers.get("www-authenticate", "")))
        facts = PlainHttpFacts(
            url=url,
            serves_api=response.status_code in (200, 401),
            status=response.status_code,
            redirects_to_https=response.is_redirect and location.lower().startswith("https://"),
            challenge_schemes=schemes,
        )
        return Fact.ok(facts, source)

    async def _anonymous(self, http: HttpPool) -> Fact[_AnonProbe]:
        base = self.endpoint.url
        source = f"GET {base}/v2/, GET {base}/v2/_catalog (no credentials)"
        try:
            v2 = await http.request("GET", f"{base}/v2/")
            catalog = await http.request("GET", f"{base}/v2/_catalog?n={CATALOG_PAGE_SIZE}")
        except httpx.HTTPError as exc:
            return Fact.error(describe_transport_error(exc, self.timeout), source)
        challenges = parse_www_authenticate(v2.headers.get("www-authenticate", ""))
        probe = _AnonProbe(
            v2_status=v2.status_code,
            catalog_status=catalog.status_code,
            challenge=challenges[0] if challenges else (Challenge("") if v2.status_code == 401 else None),
            catalog_first_page=_repositories_in(catalog) if catalog.status_code == 200 else None,
        )
        return Fact.ok(probe, source)

    def _anonymous_fact(
        self, anon: Fact[_AnonProbe], repositories: Fact[tuple[RepositoryFacts, ...]]
    ) -> Fact[AnonymousAccessFacts]:
        if anon.value is None:
            return Fact.error(anon.detail or "anonymous probe failed", anon.source, anon.observed_at)
        probe = anon.value
        if repositories.value is not None:
            pullable = tuple(r.name for r in repositories.value if r.anonymous_pull)
        elif probe.v2_status == 200 and probe.catalog_first_page is not None:
            pullable = tuple(n for n in probe.catalog_first_page if self._selected(n))
        else:
            pullable = ()
        challenge = None
        if probe.challenge is not None:
            challenge = AuthChallenge(probe.challenge.scheme, probe.challenge.realm, probe.challenge.service)
        facts = AnonymousAccessFacts(probe.v2_status, probe.catalog_status, challenge, pullable)
        return Fact.ok(facts, anon.source, anon.observed_at)

    # ---- authenticated collection ---------------------------------------------

    async def _repositories(self, tls: Fact[TlsFacts], anon: Fact[_AnonProbe]) -> Fact[tuple[RepositoryFacts, ...]]:
        source = f"GET {self.endpoint.url}/v2/_catalog"
        refused = self._tls_gate(tls)
        if refused is not None:
            return Fact.error(refused, source)
        try:
            credentials = self._credentials()
        except _MissingCredential as exc:
            return Fact.error(str(exc), source)
        try:
            verify = self._verify_context()
        except (OSError, ssl.SSLError):
            return Fact.error(f"cannot load CA file {self.target.ca_file}", source)
        probe = anon.value
        async with self._pool(verify) as pool:
            client = OciClient(
                self.endpoint.url,
                pool,
                credentials=credentials,
                challenge=probe.challenge if probe else None,
                timeout=self.timeout,
                redactor=self.redact,
            )
            try:
                names = await client.catalog(CATALOG_PAGE_SIZE)
            except OciError as exc:
                return Fact.error(self.redact(exc.detail), exc.source)
            selected = self.options.cap_repositories(sorted({n for n in names if self._selected(n)}))
            self.options.report("repositories", 0, len(selected))
            anonymous = _anonymous_pull(probe)
            repos = await asyncio.gather(*(self._repository(client, n, len(selected), anonymous) for n in selected))
        return Fact.ok(tuple(repos), source)

    def _tls_gate(self, tls: Fact[TlsFacts]) -> str | None:
        """Why authenticated collection must not run, or None when it may."""
        if self.endpoint.scheme != "https":
            return None
        if tls.value is None:
            return f"not collected: TLS handshake failed ({tls.detail})"
        if not tls.value.verified:
            return f"not collected: TLS verification failed ({tls.value.verify_error})"
        if tls.value.hostname_matches is False:
            return f"not collected: TLS verification failed (certificate does not name {self.endpoint.host})"
        return None

    def _credentials(self) -> Credentials | None:
        """Credentials from the environment variables the target names. A
        missing variable is reported by its name; values never leave here."""
        user_var, pass_var = self.target.username_env, self.target.password_env
        if not user_var and not pass_var:
            return None
        for var in (user_var, pass_var):
            if not var:
                raise _MissingCredential("username_env and password_env must both be set")
            if not os.environ.get(var):
                raise _MissingCredential(f"environment variable {var} is not set")
        assert user_var is not None and pass_var is not None
        password = os.environ[pass_var]
        self.redact.add(password)
        return Credentials(os.environ[user_var], password)

    def _verify_context(self) -> ssl.SSLContext | bool:
        if self.target.ca_file is None:
            return True
        return ssl.create_default_context(cafile=str(self.target.ca_file))

    def _selected(self, name: str) -> bool:
        patterns = self.target.repositories
        return valid_repository(name) and (not patterns or any(fnmatch.fnmatchcase(name, p) for p in patterns))

    def _declared_public(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in self.target.public_repositories)

    async def _repository(self, client: OciClient, name: str, total: int, anonymous: bool | None) -> RepositoryFacts:
        source = f"GET {self.endpoint.url}/v2/{name}/tags/list"
        public = self._declared_public(name)
        try:
            try:
                all_tags = await client.tags(name)
            except OciError as exc:
                return RepositoryFacts(
                    name, anonymous_pull=anonymous, declared_public=public, error=self.redact(exc.detail), source=source
                )
            image_tags, signature_tags = split_artifact_tags(all_tags)
            tags = await asyncio.gather(*(self._tag(client, name, t, signature_tags) for t in sorted(image_tags)))
            return RepositoryFacts(name, tuple(tags), anonymous_pull=anonymous, declared_public=public, source=source)
        finally:
            self._repos_done += 1
            self.options.report("repositories", self._repos_done, total)

    async def _tag(self, client: OciClient, repo: str, tag: str, signature_tags: frozenset[str]) -> TagFacts:
        if not valid_tag(tag):
            # Never put a name the registry made up (`../x`, `a/b`) into a request path.
            return TagFacts(tag[:128], None, None, error="the registry listed a tag name the OCI spec does not allow")
        try:
            ref = await client.head_manifest(repo, tag)
        except OciError as exc:
            return TagFacts(tag, None, None, error=self.redact(exc.detail))
        key = (repo, ref.digest)
        task = self._signature_tasks.get(key)
        if task is None:  # tags sharing a digest share one lookup
            task = asyncio.ensure_future(self._signatures(client, repo, ref.digest, signature_tags))
            self._signature_tasks[key] = task
        try:
            signatures = await asyncio.shield(task)
        except OciError as exc:
            return TagFacts(
                tag, ref.digest, ref.media_type, error=f"signature lookup failed: {self.redact(exc.detail)}"
            )
        return TagFacts(tag, ref.digest, ref.media_type, signatures=signatures)

    # ---- signatures -------------------------------------------------------

    async def _signatures(
        self, client: OciClient, repo: str, digest: str, signature_tags: frozenset[str]
    ) -> tuple[SignatureFacts, ...]:
        found: list[SignatureFacts] = []
        referrers = await self._referrers(client, repo, digest)
        for descriptor in referrers or ():
            found.extend(await self._referrer_signatures(client, repo, digest, descriptor))
        sig_tag = digest.replace(":", "-", 1) + ".sig"
        if digest.startswith("sha256:") and sig_tag in signature_tags:
            manifest = await client.get_manifest(repo, sig_tag)
            found.extend(await self._cosign_signatures(client, repo, digest, manifest, "tag", sig_tag))
        return tuple(found)

    async def _referrers(self, client: OciClient, repo: str, digest: str) -> list[dict[str, Any]] | None:
        """Referrers of `digest`, or None when the registry has no referrers
        API. The first caller probes; everyone else waits for its answer."""
        if self._referrers_supported is None:
            async with self._referrers_lock:
                if self._referrers_supported is None:
                    result = await client.referrers(repo, digest)
                    self._referrers_supported = result is not None
                    return result
        if not self._referrers_supported:
            return None
        return await client.referrers(repo, digest)

    async def _referrer_signatures(
        self, client: OciClient, repo: str, digest: str, descriptor: Mapping[str, Any]
    ) -> list[SignatureFacts]:
        artifact_type = descriptor.get("artifactType")
        ref = descriptor.get("digest")
        if not isinstance(ref, str) or not valid_digest(ref):
            return []
        if artifact_type == cosign.NOTATION_ARTIFACT_TYPE:
            return [SignatureFacts("notation", "referrers", ref, None, None, "notation signatures are not verified")]
        if artifact_type != cosign.COSIGN_ARTIFACT_TYPE:
            return []
        manifest = await client.get_manifest(repo, ref)
        return await self._cosign_signatures(client, repo, digest, manifest, "referrers", ref)

    async def _cosign_signatures(
        self, client: OciClient, repo: str, digest: str, manifest: dict[str, Any], via: str, reference: str
    ) -> list[SignatureFacts]:
        """One SignatureFacts per signature layer of a cosign manifest."""
        layers = cosign.signature_layers(manifest)
        results = []
        for layer in layers:
            check = await self._verify_layer(client, repo, digest, layer)
            results.append(SignatureFacts("cosign", via, reference, check.verified, check.verified_by, check.error))
        return results

    async def _verify_layer(
        self, client: OciClient, repo: str, digest: str, layer: Mapping[str, Any]
    ) -> cosign.Verification:
        if not self.keys.configured:
            return cosign.Verification(None, error="no trusted key configured")
        signature = layer["annotations"][cosign.SIGNATURE_ANNOTATION]
        layer_digest = layer.get("digest")
        if not isinstance(layer_digest, str) or not valid_digest(layer_digest):
            return cosign.Verification(False, error="signature layer has no valid digest")
        payload = cosign.canonical_payload(f"{self.endpoint.netloc}/{repo}", digest)
        if cosign.sha256_digest(payload) != layer_digest:
            try:
                payload = await client.get_blob(repo, layer_digest)
            except OciError as exc:
                return cosign.Verification(False, error=f"cannot read signature payload: {self.redact(exc.detail)}")
        return cosign.verify(payload, signature, digest, self.keys)


def split_artifact_tags(tags: list[str]) -> tuple[list[str], frozenset[str]]:
    """Image tags, and the cosign/referrers artifact tags that are not images."""
    images: list[str] = []
    artifacts: set[str] = set()
    for tag in tags:
        if _ARTIFACT_TAG.match(tag):
            artifacts.add(tag)
        else:
            images.append(tag)
    return images, frozenset(artifacts)


def _anonymous_pull(anon: _AnonProbe | None) -> bool | None:
    """Per-repository anonymous pull as far as the `/v2/` probe decides it:
    open `/v2/` means everything is pullable; a Basic challenge (htpasswd)
    gates every repository; token auth may allow some, so None."""
    if anon is None:
        return None
    if anon.v2_status == 200:
        return True
    if anon.v2_status == 401 and anon.challenge is not None and anon.challenge.scheme == "basic":
        return False
    return None


def _repositories_in(response: httpx.Response) -> tuple[str, ...] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    repos = body.get("repositories") if isinstance(body, dict) else None
    if not isinstance(repos, list):
        return None
    return tuple(r for r in repos if isinstance(r, str))


_CALL_PATTERNS = (
    (re.compile(r"^/v2/?$"), "v2"),
    (re.compile(r"^/v2/_catalog$"), "catalog"),
    (re.compile(r"^/v2/.+/tags/list$"), "tags"),
    (re.compile(r"^/v2/.+/manifests/[^/]+$"), "manifest"),
    (re.compile(r"^/v2/.+/blobs/[^/]+$"), "blob"),
    (re.compile(r"^/v2/.+/referrers/[^/]+$"), "referrers"),
)


def _call_name(request: httpx.Request) -> str:
    """`HEAD manifest`, `GET catalog`, ... (bench figures per kind of call)."""
    path = request.url.path
    for pattern, name in _CALL_PATTERNS:
        if pattern.match(path):
            return f"{request.method} {name}"
    return f"{request.method} {'v2-other' if path.startswith('/v2/') else 'token'}"


# --------------------------------------------------------------------------
# Facts that need no request
# --------------------------------------------------------------------------


def _static_facts() -> dict[str, Fact[Any]]:
    return {
        TAG_IMMUTABILITY: Fact.unsupported(_UNSUPPORTED),
        SCANNING: Fact.unsupported(_UNSUPPORTED),
        CONTENT_TRUST: Fact.unsupported(_UNSUPPORTED),
        REPLICATION: Fact.unsupported(_UNSUPPORTED),
        PULL_COUNTS: Fact.unsupported(_UNSUPPORTED),
    }


def config_facts(config_file: Path | None) -> dict[str, Fact[Any]]:
    """LOGGING, ENCRYPTION, NETWORK_EXPOSURE, CREDENTIALS, ADMIN_ACCOUNT and
    RETENTION from the registry's `config.yml` (readable only on its host)."""
    retention_hint = (
        "Distribution has no retention API: check the registry host for a scheduled "
        "`registry garbage-collect` (cron or systemd timer) and a job that deletes old tags"
    )
    if config_file is None:
        hint = "set config_file to the registry's config.yml (audit on the registry host) to observe this"
        facts: dict[str, Fact[Any]] = {name: Fact.not_observable(hint) for name in _CONFIG_FACTS}
        facts[RETENTION] = Fact.not_observable(retention_hint)
        return facts
    source = f"config {config_file}"
    try:
        raw = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    except OSError as exc:
        return _all_config_errors(f"cannot read {config_file}: {exc.strerror or exc.__class__.__name__}", source)
    except yaml.YAMLError:
        return _all_config_errors(f"{config_file} is not valid YAML", source)
    if not isinstance(raw, dict):
        return _all_config_errors(f"{config_file}: expected a mapping at the top level", source)
    facts = {
        LOGGING: logging_fact(raw, source),
        ENCRYPTION: encryption_fact(raw, source),
        NETWORK_EXPOSURE: network_fact(raw, source),
        **account_facts(raw, config_file, source),
    }
    delete = _get(raw, "storage", "delete", "enabled") is True
    facts[RETENTION] = Fact.not_observable(
        f"{retention_hint}; storage.delete.enabled is {'true' if delete else 'false'}"
        + ("" if delete else " (garbage collection cannot remove deleted manifests)"),
        source,
    )
    return facts


def _all_config_errors(detail: str, source: str) -> dict[str, Fact[Any]]:
    facts: dict[str, Fact[Any]] = {name: Fact.error(detail, source) for name in _CONFIG_FACTS}
    facts[RETENTION] = Fact.error(detail, source)
    return facts


def _get(node: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def logging_fact(config: dict[str, Any], source: str) -> Fact[LoggingFacts]:
    """Notification endpoints (the registry's event stream of pushes/pulls)."""
    endpoints = _get(config, "notifications", "endpoints") or []
    if not isinstance(endpoints, list):
        return Fact.error("notifications.endpoints is not a list", source)
    active = [e for e in endpoints if isinstance(e, dict) and not e.get("disabled") and e.get("url")]
    urls = [_strip_userinfo(str(e["url"])) for e in active]
    if not active:
        detail = "no enabled notifications endpoint" + (" (all disabled)" if endpoints else "")
        return Fact.ok(LoggingFacts(False, None, detail), source)
    names = ", ".join(str(e.get("name", "?")) for e in active)
    return Fact.ok(LoggingFacts(True, ", ".join(urls), f"notifications endpoints: {names}"), source)


def _strip_userinfo(url: str) -> str:
    """A notification URL may embed credentials (`https://u:p@host`): drop them."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


_STORAGE_OPTIONS = frozenset({"maintenance", "cache", "delete", "redirect", "tag"})


def encryption_fact(config: dict[str, Any], source: str) -> Fact[EncryptionFacts]:
    storage = config.get("storage")
    if not isinstance(storage, dict):
        return Fact.error("config has no storage section", source)
    drivers = [k for k in storage if k not in _STORAGE_OPTIONS]
    if len(drivers) != 1:
        return Fact.error(f"expected one storage driver, found {', '.join(drivers) or 'none'}", source)
    driver = drivers[0]
    options = storage[driver] if isinstance(storage[driver], dict) else {}
    setting = storage_encryption(driver, options)
    return Fact.ok(EncryptionFacts(by_repository={}, registry_wide=setting), source)


def storage_encryption(driver: str, options: Mapping[str, Any]) -> EncryptionSetting:
    """What a storage driver's settings say about encryption at rest."""
    if driver in ("s3", "oss"):
        key_option = "keyid" if driver == "s3" else "encryptionkeyid"
        encrypt = options.get("encrypt") is True or str(options.get("encrypt")).lower() == "true"
        key = options.get(key_option)
        if encrypt and key:
            return EncryptionSetting(True, str(key), f"{driver}: server-side encryption with customer key")
        if encrypt:
            return EncryptionSetting(False, None, f"{driver}: server-side encryption with the provider-managed key")
        return EncryptionSetting(
            False, None, f"{driver}: encrypt is off; the bucket's default encryption is not visible"
        )
    if driver == "filesystem":
        root = options.get("rootdirectory", "/var/lib/registry")
        return EncryptionSetting(
            False,
            None,
            f"filesystem storage at {root}: not encrypted by the registry; check the host's disk encryption",
        )
    if driver == "inmemory":
        return EncryptionSetting(False, None, "inmemory storage (testing only)")
    return EncryptionSetting(False, None, f"{driver}: provider-managed encryption; no customer key configured")


def network_fact(config: dict[str, Any], source: str) -> Fact[NetworkExposureFacts]:
    """Where the registry listens (`http.addr`): all interfaces or a public
    address is reachable from outside the host, loopback/private is not."""
    http = config.get("http")
    if isinstance(http, dict) and http.get("net") == "unix":
        return Fact.ok(NetworkExposureFacts(False, f"listens on unix socket {http.get('addr')}"), source)
    addr = http.get("addr") if isinstance(http, dict) else None
    if not isinstance(addr, str) or not addr:
        return Fact.error("config has no http.addr", source)
    host = addr.rsplit(":", 1)[0] if ":" in addr else addr
    host = host.strip("[]")
    return Fact.ok(bind_exposure(host, addr), source)


def bind_exposure(host: str, addr: str) -> NetworkExposureFacts:
    if host in ("", "0.0.0.0", "::"):
        return NetworkExposureFacts(True, f"http.addr {addr} listens on all interfaces")
    addresses = _resolve(host)
    if not addresses:
        return NetworkExposureFacts(True, f"http.addr {addr}: {host} does not resolve; assuming reachable")
    public = [a for a in addresses if a.is_global or a.is_unspecified]
    if public:
        return NetworkExposureFacts(True, f"http.addr {addr} binds public address {public[0]}")
    kind = "loopback" if all(a.is_loopback for a in addresses) else "private"
    return NetworkExposureFacts(False, f"http.addr {addr} binds {kind} address {addresses[0]}")


def _resolve(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return []
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def account_facts(config: dict[str, Any], config_file: Path, source: str) -> dict[str, Fact[Any]]:
    """CREDENTIALS and ADMIN_ACCOUNT from the auth section. htpasswd users are
    listed by name only; the hashes are never read into a fact."""
    auth = config.get("auth")
    if not isinstance(auth, dict) or not auth:
        none = AdminAccountFacts(False, detail="no authentication configured: the registry has no accounts")
        return {CREDENTIALS: Fact.ok((), source), ADMIN_ACCOUNT: Fact.ok(none, source)}
    if "token" in auth:
        realm = _get(auth, "token", "realm")
        hint = f"accounts live in the token service ({realm}); review them there"
        return {CREDENTIALS: Fact.not_observable(hint, source), ADMIN_ACCOUNT: Fact.not_observable(hint, source)}
    if "htpasswd" in auth:
        return _htpasswd_facts(_get(auth, "htpasswd", "path"), config_file, source)
    scheme = next(iter(auth))
    detail = f"auth scheme {scheme!r} has no accounts to review"
    return {CREDENTIALS: Fact.ok((), source), ADMIN_ACCOUNT: Fact.ok(AdminAccountFacts(False, detail=detail), source)}


def _htpasswd_facts(path_value: Any, config_file: Path, source: str) -> dict[str, Fact[Any]]:
    if not isinstance(path_value, str) or not path_value:
        error: Fact[Any] = Fact.error("auth.htpasswd.path is not set", source)
        return {CREDENTIALS: error, ADMIN_ACCOUNT: error}
    path = Path(path_value)
    if not path.is_absolute():
        path = config_file.parent / path  # best guess: the registry's working directory is unknown
    htpasswd_source = f"htpasswd {path}"
    try:
        text = path.read_text(encoding="utf-8")
        mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError as exc:
        error = Fact.error(
            f"cannot read htpasswd file {path}: {exc.strerror or exc.__class__.__name__}", htpasswd_source
        )
        return {CREDENTIALS: error, ADMIN_ACCOUNT: error}
    users = htpasswd_users(text)
    shared = len(users) == 1
    creds = tuple(
        CredentialFacts(
            id=user,
            kind="htpasswd-user",
            created_at=mtime,
            can_push=True,
            shared=shared,
            detail=f"htpasswd file {path}; created_at is the file's modification time",
        )
        for user in users
    )
    admin_detail = (
        f"a single htpasswd account ({users[0]}) is shared by every client"
        if shared
        else f"{len(users)} htpasswd accounts; every account can push and pull"
    )
    admin = AdminAccountFacts(shared_admin_enabled=shared, detail=admin_detail, mechanism="htpasswd")
    return {CREDENTIALS: Fact.ok(creds, htpasswd_source), ADMIN_ACCOUNT: Fact.ok(admin, htpasswd_source)}


def htpasswd_users(text: str) -> list[str]:
    """User names in an htpasswd file (`user:hash` lines)."""
    users: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        users.append(line.split(":", 1)[0])
    return users
