"""The OCI endpoint probe every registry kind shares: what a stranger sees of a
registry's `/v2/` endpoint.

`probe_endpoint(url, ...)` makes the raw TLS handshakes (https targets), the
plain-HTTP `/v2/` probe on the same host:port and the anonymous `/v2/` and
`/v2/_catalog` probes, and returns them as an `EndpointProbe` whose `facts()`
are ENDPOINT, TLS, PLAIN_HTTP, ANONYMOUS_ACCESS and TOKEN_REALM_ORIGIN. A
collector that also lists repositories passes its REPOSITORIES fact to
`facts()` so ANONYMOUS_ACCESS names what was pulled without credentials.

Choices a reader of the facts should know:

* **Plain-HTTP targets.** For an `http://` target no TLS handshake is tried;
  `TLS` is `ok` with `protocol=None, verified=False,
  verify_error="target is plain HTTP"` and `ENDPOINT.scheme == "http"`, so
  RG-TLS-001/002 fail with a clear reason instead of erroring.
* **No credentials, no certificate check.** The HTTP probes carry no
  credentials, so they run without certificate verification: they show what an
  unauthenticated client (or an attacker) would get, whatever the certificate.
* **An https target refusing plain HTTP** (or answering it like a TLS port
  does) is the good answer, `ok`, not an error.
* **TOKEN_REALM_ORIGIN** is where the anonymous `/v2/` Bearer challenge sends
  clients for a token; `origin` is None when there is no Bearer challenge.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx

from audits.collectors.base import RequestCounter
from audits.collectors.oci import (
    CATALOG,
    LISTING_CAP,
    PROBE_CAP,
    Challenge,
    HttpPool,
    OciError,
    counted_pool,
    describe_transport_error,
    parse_json,
    parse_www_authenticate,
    token_realm,
    valid_repository,
)
from audits.collectors.tls_probe import TlsProbeError, probe_tls
from audits.model import (
    ANONYMOUS_ACCESS,
    ENDPOINT,
    PLAIN_HTTP,
    TLS,
    TOKEN_REALM_ORIGIN,
    AnonymousAccessFacts,
    AuthChallenge,
    EndpointFacts,
    Fact,
    PlainHttpFacts,
    RepositoryFacts,
    TlsFacts,
    TokenRealmFacts,
)

T = TypeVar("T")

CATALOG_PAGE_SIZE = 100
PROBED_FACTS = (ENDPOINT, TLS, PLAIN_HTTP, ANONYMOUS_ACCESS, TOKEN_REALM_ORIGIN)

TlsProbe = Callable[[str, int, Path | None, float], TlsFacts]


@dataclass(frozen=True)
class Endpoint:
    """Where to connect, parsed once from the target URL."""

    url: str  # without trailing slash
    scheme: str
    host: str  # without IPv6 brackets
    port: int
    netloc: str  # host:port as written, the docker-reference prefix

    @classmethod
    def parse(cls, url: str) -> Endpoint:
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
class AnonymousProbe:
    """What unauthenticated `/v2/` and `/v2/_catalog` answered."""

    v2_status: int
    catalog_status: int | None
    challenge: Challenge | None
    catalog_first_page: tuple[str, ...] | None  # repositories, when listed anonymously

    def repository_pull(self) -> bool | None:
        """Per-repository anonymous pull as far as `/v2/` decides it: open
        `/v2/` means everything is pullable; a Basic challenge (htpasswd)
        gates every repository; token auth may allow some, so None."""
        if self.v2_status == 200:
            return True
        if self.v2_status == 401 and self.challenge is not None and self.challenge.scheme == "basic":
            return False
        return None


@dataclass(frozen=True)
class EndpointProbe:
    """The probes' results for one endpoint."""

    endpoint: Endpoint
    source: str  # the target URL as configured
    tls: Fact[TlsFacts]
    plain_http: Fact[PlainHttpFacts]
    anonymous: Fact[AnonymousProbe]
    token_realm: Fact[TokenRealmFacts]

    @property
    def challenge(self) -> Challenge | None:
        return self.anonymous.value.challenge if self.anonymous.value is not None else None

    def facts(
        self,
        repositories: Fact[tuple[RepositoryFacts, ...]] | None = None,
        selected: Callable[[str], bool] = valid_repository,
    ) -> dict[str, Fact[Any]]:
        """The PROBED_FACTS; with the collector's REPOSITORIES (if it listed
        them) ANONYMOUS_ACCESS names the repositories pulled anonymously, else
        the `selected` names on an open catalog's first page."""
        endpoint = EndpointFacts(self.endpoint.url, self.endpoint.scheme)
        return {
            ENDPOINT: Fact.ok(endpoint, self.source),
            TLS: self.tls,
            PLAIN_HTTP: self.plain_http,
            ANONYMOUS_ACCESS: self._anonymous_access(repositories, selected),
            TOKEN_REALM_ORIGIN: self.token_realm,
        }

    def _anonymous_access(
        self, repositories: Fact[tuple[RepositoryFacts, ...]] | None, selected: Callable[[str], bool]
    ) -> Fact[AnonymousAccessFacts]:
        anon = self.anonymous
        if anon.value is None:
            return Fact.error(anon.detail or "anonymous probe failed", anon.source, anon.observed_at)
        probe = anon.value
        if repositories is not None and repositories.value is not None:
            pullable = tuple(r.name for r in repositories.value if r.anonymous_pull)
        elif probe.v2_status == 200 and probe.catalog_first_page is not None:
            pullable = tuple(n for n in probe.catalog_first_page if selected(n))
        else:
            pullable = ()
        challenge = None
        if probe.challenge is not None:
            challenge = AuthChallenge(probe.challenge.scheme, probe.challenge.realm, probe.challenge.service)
        facts = AnonymousAccessFacts(probe.v2_status, probe.catalog_status, challenge, pullable)
        return Fact.ok(facts, anon.source, anon.observed_at)


async def probe_endpoint(
    url: str,
    *,
    ca_file: Path | None,
    timeout: float,
    counter: RequestCounter,
    semaphore: asyncio.Semaphore,
    transport: httpx.AsyncBaseTransport | None = None,
    tls_probe: TlsProbe = probe_tls,
    allowed_token_realms: Iterable[str] = (),
    publish: Callable[[str, Fact[Any]], object] | None = None,
) -> EndpointProbe:
    """Probe `url` as a stranger would. Every request is counted in `counter`,
    bounded by `semaphore` and, like the handshakes, by `timeout` in total;
    `transport` and `tls_probe` replace the network in unit tests. `publish`
    receives ENDPOINT at once and TLS and PLAIN_HTTP the moment each is known, so a deadline that
    strikes during a slower probe keeps them."""
    endpoint = Endpoint.parse(url)
    pool = counted_pool(semaphore, timeout=timeout, verify=False, counter=counter, transport=transport)

    async def published(name: str, probing: Awaitable[Fact[T]]) -> Fact[T]:
        fact = await probing
        if publish is not None:
            publish(name, fact)
        return fact

    if publish is not None:
        publish(ENDPOINT, Fact.ok(EndpointFacts(endpoint.url, endpoint.scheme), url))
    async with pool:
        tls, plain, anon = await asyncio.gather(
            published(TLS, _tls(endpoint, ca_file, timeout, tls_probe)),
            published(PLAIN_HTTP, _plain_http(endpoint, pool, timeout)),
            _anonymous(endpoint, pool, timeout),
        )
    realm = _token_realm_fact(endpoint, anon, allowed_token_realms)
    return EndpointProbe(endpoint, url, tls, plain, anon, realm)


def observe_endpoint(
    url: str,
    *,
    timeout: float,
    counter: RequestCounter,
    concurrency: int = 4,
    ca_file: Path | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    tls_probe: TlsProbe = probe_tls,
) -> dict[str, Fact[Any]]:
    """`probe_endpoint`'s facts for a caller outside an event loop (a
    collector that observes its registry through an SDK otherwise). Never
    raises: an unexpected failure is an error on every probed fact."""

    async def run() -> EndpointProbe:
        semaphore = asyncio.Semaphore(max(1, concurrency))
        return await probe_endpoint(
            url,
            ca_file=ca_file,
            timeout=timeout,
            counter=counter,
            semaphore=semaphore,
            transport=transport,
            tls_probe=tls_probe,
        )

    try:
        return asyncio.run(run()).facts()
    except Exception as exc:  # the collector seam promises facts, never an exception
        error: Fact[Any] = Fact.error(f"internal error in the endpoint probe: {exc.__class__.__name__}", url)
        return {name: error for name in PROBED_FACTS}


# --------------------------------------------------------------------------
# The probes
# --------------------------------------------------------------------------


async def _tls(endpoint: Endpoint, ca_file: Path | None, timeout: float, probe: TlsProbe) -> Fact[TlsFacts]:
    source = f"TLS handshake {endpoint.host}:{endpoint.port}"
    trust = str(ca_file) if ca_file is not None else "system"
    if endpoint.scheme != "https":
        plain = TlsFacts(endpoint.host, endpoint.port, None, None, False, "target is plain HTTP", None, trust)
        return Fact.ok(plain, source)
    try:
        facts = await asyncio.to_thread(probe, endpoint.host, endpoint.port, ca_file, timeout)
    except TlsProbeError as exc:
        return Fact.error(exc.detail, source)
    return Fact.ok(facts, source)


async def _plain_http(endpoint: Endpoint, http: HttpPool, timeout: float) -> Fact[PlainHttpFacts]:
    """GET `/v2/` over plain HTTP on the same host:port. For an https target
    a refusal or a TLS server's complaint is the good answer, not an error."""
    url = endpoint.plain_url
    source = f"GET {url}"
    try:
        response = await http.request("GET", url, cap=PROBE_CAP, deadline=timeout)
    except OciError as exc:
        return Fact.error(exc.detail, source)
    except httpx.TimeoutException as exc:
        return Fact.error(describe_transport_error(exc, timeout), source)
    except httpx.HTTPError as exc:
        if endpoint.scheme == "http":
            return Fact.error(describe_transport_error(exc, timeout), source)
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


async def _anonymous(endpoint: Endpoint, http: HttpPool, timeout: float) -> Fact[AnonymousProbe]:
    base = endpoint.url
    source = f"GET {base}/v2/, GET {base}/v2/_catalog (no credentials)"
    try:
        v2 = await http.request("GET", f"{base}/v2/", cap=PROBE_CAP, deadline=timeout)
        catalog_url = f"{base}/v2/_catalog?n={CATALOG_PAGE_SIZE}"
        catalog = await http.request("GET", catalog_url, cap=LISTING_CAP, deadline=timeout)
    except OciError as exc:
        return Fact.error(exc.detail, source)
    except httpx.HTTPError as exc:
        return Fact.error(describe_transport_error(exc, timeout), source)
    challenges = parse_www_authenticate(v2.headers.get("www-authenticate", ""))
    probe = AnonymousProbe(
        v2_status=v2.status_code,
        catalog_status=catalog.status_code,
        challenge=challenges[0] if challenges else (Challenge("") if v2.status_code == 401 else None),
        catalog_first_page=_repositories_in(catalog) if catalog.status_code == 200 else None,
    )
    return Fact.ok(probe, source)


def _repositories_in(response: httpx.Response) -> tuple[str, ...] | None:
    try:
        names = CATALOG.entries(parse_json(response))
    except OciError:
        return None
    return tuple(names) if names is not None else None


def _token_realm_fact(endpoint: Endpoint, anon: Fact[AnonymousProbe], allowed: Iterable[str]) -> Fact[TokenRealmFacts]:
    source = f"GET {endpoint.url}/v2/ (WWW-Authenticate, no credentials)"
    if anon.value is None:
        return Fact.error(anon.detail or "anonymous probe failed", source, anon.observed_at)
    challenge = anon.value.challenge
    if challenge is None or challenge.scheme != "bearer" or not challenge.realm:
        return Fact.ok(TokenRealmFacts(origin=None), source, anon.observed_at)
    facts = token_realm(challenge.realm, endpoint.url, allowed)
    if facts is None:
        return Fact.error("the Bearer challenge names a token realm that is not a valid URL", source, anon.observed_at)
    return Fact.ok(facts, source, anon.observed_at)
