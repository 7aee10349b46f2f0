"""A small OCI Distribution API client: authentication, pagination, manifests.

Why hand-written instead of a registry SDK: the audit must see exactly what the
registry answers (status codes, challenges, `Link` headers) and must be able to
count every request it makes. The client is async (httpx) and bounded by one
semaphore shared by every call of a collection run.

Everything a registry sends is untrusted, so every request is bounded: it must
be complete (headers and body) within a total deadline, its body is streamed and
cut at a cap per kind of answer (counted after decompression, so a gzip bomb is
cut too), and every paginated listing stops at a loop, a page cap, an entry cap
and a byte cap. Any of these is an `OciError` on that one request.

Secrets: credentials live only in `Credentials` (its `repr` hides the
password) and in the `Authorization` headers this module builds; they go to a
token realm only over HTTPS on the registry's own origin or on an origin the
user allowed. Errors are `OciError` whose `detail` is composed here from fixed
phrases, status codes and URLs (never from headers or bodies the client sent),
and is passed through `Redactor` before leaving, so a secret cannot travel into
a fact or a log.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import ssl
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from audits.collectors.base import RequestCounter
from audits.model import TokenRealmFacts

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_ACCEPT = ", ".join((OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST_V2, DOCKER_MANIFEST_LIST))

# Distribution's grammar for repository names and tags (reference/regexp.go);
# names from the registry are untrusted and end up in URL paths. Matched whole
# with `fullmatch`: `$` would also match before a trailing newline.
_REPO_NAME = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")

_HEADER_TOKEN = re.compile(r"[\x21-\x7e]+")  # a bearer token goes into a header: visible ASCII only
_TOKEN_DEFAULT_TTL = 60.0  # docker token spec: expires_in defaults to 60 seconds
_TOKEN_MARGIN = 5.0
_TOKEN_MAX_TTL = 86_400  # a larger (or absurd, 400-digit) expires_in is read as a day


def valid_repository(name: str) -> bool:
    return len(name) <= 255 and _REPO_NAME.fullmatch(name) is not None


def valid_tag(tag: str) -> bool:
    return _TAG.fullmatch(tag) is not None


def valid_digest(digest: str) -> bool:
    return _DIGEST.fullmatch(digest) is not None


def shown_name(name: str, limit: int = 255) -> str:
    """A name the registry made up, safe to show and to use as a resource:
    control characters escaped (`evil\\n`), cut at `limit` characters."""
    escaped = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in name)
    return escaped if len(escaped) <= limit else escaped[: limit - 1] + "…"


# --------------------------------------------------------------------------
# Bounds on what a registry may send
# --------------------------------------------------------------------------

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class BodyCap:
    """The most bytes (after decompression) one kind of answer may carry."""

    size: int
    what: str  # "a manifest": the over-the-cap error says what was cut

    def describe(self) -> str:
        size = f"{self.size // MIB} MiB" if self.size % MIB == 0 else f"{self.size // KIB} KiB"
        return f"the {size} cap for {self.what}"


# The OCI distribution spec recommends registries accept manifests up to 4 MiB; bigger is not an image.
MANIFEST_CAP = BodyCap(4 * MIB, "a manifest")
# One catalog or tag listing, all pages together: 100,000 tags of 60 characters fit.
LISTING_CAP = BodyCap(8 * MIB, "a listing")
# A referrers listing is an image index (a manifest) per page; all pages together.
REFERRERS_CAP = BodyCap(4 * MIB, "a referrers listing")
# Registry tokens are JWTs of a few KiB; no token service needs a megabyte.
TOKEN_CAP = BodyCap(1 * MIB, "a token answer")
# A cosign simple-signing payload is well under 1 KiB.
PAYLOAD_CAP = BodyCap(1 * MIB, "a signature payload")
# Error answers, and answers to probes whose body is never used: the status and headers are the evidence.
ERROR_CAP = BodyCap(64 * KIB, "an error answer")
PROBE_CAP = BodyCap(64 * KIB, "a probe answer")


@dataclass(frozen=True)
class Listing:
    """One kind of paginated listing and its caps: a registry that keeps
    announcing a next page, or more entries, is cut there with an error."""

    name: str  # "catalog", "tag", "referrers"
    key: str  # the JSON key holding the entries
    cap: BodyCap
    max_pages: int
    max_entries: int
    optional: bool = False  # a 404 (or no list) on the first page means "no such API", not an error
    names: bool = True  # entries are names (strings); else descriptors (objects)

    def entries(self, body: Any) -> list[Any] | None:
        """One page's entries, or None when `body` is not such a listing.
        Distribution sends `"tags": null` for a repository without tags."""
        value = body.get(self.key) if isinstance(body, dict) else None
        if not self.names:
            return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else None
        if not isinstance(body, dict):
            return None
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return None
        return value


CATALOG = Listing("catalog", "repositories", LISTING_CAP, max_pages=1_000, max_entries=100_000)
TAGS = Listing("tag", "tags", LISTING_CAP, max_pages=1_000, max_entries=100_000)
REFERRERS = Listing(
    "referrers", "manifests", REFERRERS_CAP, max_pages=100, max_entries=10_000, optional=True, names=False
)


def deadline_detail(deadline: float) -> str:
    return f"timed out: no complete answer within {deadline:g} s"


# --------------------------------------------------------------------------
# Errors and redaction
# --------------------------------------------------------------------------


class OciError(Exception):
    """A request or response that could not be used; `detail` is for humans
    (and safe to show), `source` names the call (`GET https://h/v2/_catalog`)."""

    def __init__(self, detail: str, source: str, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.source = source
        self.status = status


class Redactor:
    """Replaces every known secret value in a text by `***` (defence in depth:
    messages are built without secrets, this catches what a bug might add)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = {s for s in secrets if s}

    def add(self, secret: str) -> None:
        if secret:
            self._secrets.add(secret)

    def __call__(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)

    def basic_header(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


def describe_transport_error(exc: httpx.HTTPError, timeout: float) -> str:
    """A short human sentence for a transport failure. Only the exception's
    class and its OS/TLS cause are used: they carry no request headers."""
    if isinstance(exc, httpx.TimeoutException):
        return deadline_detail(timeout)
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS verification failed: {cause.verify_message}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS error: {cause.reason or cause.__class__.__name__}"
        cause = cause.__cause__ or cause.__context__
    text = str(exc).strip()
    if "Connection refused" in text:
        return "connection refused"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect: {text or 'connection failed'}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"protocol error: {text or 'server closed the connection'}"
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


# --------------------------------------------------------------------------
# Header parsing: WWW-Authenticate (RFC 7235) and Link (RFC 8288)
# --------------------------------------------------------------------------

_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_TOKEN68_CHAR = frozenset("-._~+/0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


@dataclass(frozen=True)
class Challenge:
    """One challenge from a `WWW-Authenticate` header; `scheme` and parameter
    names are lower case (they are case-insensitive), values are as sent."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)
    token68: str | None = None

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")

    @property
    def service(self) -> str | None:
        return self.params.get("service")

    @property
    def scope(self) -> str | None:
        return self.params.get("scope")


class _Scanner:
    """Cursor over a header value; the grammar helpers below advance it."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_ws(self) -> None:
        while self.peek() in (" ", "\t") and self.peek():
            self.pos += 1

    def skip_commas(self) -> None:
        while self.peek() in (" ", "\t", ",") and self.peek():
            self.pos += 1

    def token(self) -> str:
        start = self.pos
        while self.peek() and self.peek() in _TCHAR:
            self.pos += 1
        return self.text[start : self.pos]

    def quoted(self) -> str | None:
        """A quoted-string with quoted-pairs unescaped; None if unterminated."""
        assert self.peek() == '"'
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "\\" and self.pos + 1 < len(self.text):
                out.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            self.pos += 1
            if ch == '"':
                return "".join(out)
            out.append(ch)
        return None


def _try_param(sc: _Scanner) -> tuple[str, str] | None:
    """`token BWS "=" BWS (token / quoted-string)`, or None (cursor restored)."""
    start = sc.pos
    name = sc.token()
    if name:
        sc.skip_ws()
        if sc.peek() == "=":
            sc.pos += 1
            sc.skip_ws()
            if sc.peek() == '"':
                value = sc.quoted()
                if value is not None:
                    return name.lower(), value
            else:
                value = sc.token()
                if value:
                    return name.lower(), value
    sc.pos = start
    return None


def _try_token68(sc: _Scanner) -> str | None:
    """`1*(token68 char) *"="` followed by end or a comma."""
    start = sc.pos
    while sc.peek() and sc.peek() in _TOKEN68_CHAR:
        sc.pos += 1
    if sc.pos == start:
        return None
    while sc.peek() == "=":
        sc.pos += 1
    end = sc.pos
    sc.skip_ws()
    if sc.peek() in ("", ","):
        return sc.text[start:end]
    sc.pos = start
    return None


def _starts_new_challenge(sc: _Scanner) -> bool:
    """After a comma: a token followed by whitespace or end (not `=`) is the
    next challenge's scheme rather than another parameter."""
    start = sc.pos
    name = sc.token()
    sc.skip_ws()
    result = bool(name) and sc.peek() != "="
    sc.pos = start
    return result


def parse_www_authenticate(header: str) -> list[Challenge]:
    """Parse every challenge in a `WWW-Authenticate` value (RFC 7235 §4.1).

    Commas separate both challenges and parameters, so after each comma we
    look ahead: `token =` continues the parameter list, a bare token starts a
    new challenge. Malformed trailing text is ignored rather than guessed at.
    """
    sc = _Scanner(header)
    challenges: list[Challenge] = []
    while True:
        sc.skip_commas()
        scheme = sc.token()
        if not scheme:
            break
        params: dict[str, str] = {}
        token68: str | None = None
        sc.skip_ws()
        param = _try_param(sc)
        if param is None:
            token68 = _try_token68(sc)
        next_challenge = False
        while param is not None:
            params.setdefault(param[0], param[1])
            sc.skip_ws()
            if sc.peek() != ",":
                break
            sc.skip_commas()
            next_challenge = _starts_new_challenge(sc)
            param = None if next_challenge else _try_param(sc)
        challenges.append(Challenge(scheme.lower(), params, token68))
        sc.skip_ws()
        if not next_challenge and sc.peek() not in ("", ","):
            break  # garbage: keep what was understood
    return challenges


def parse_link_next(header: str) -> str | None:
    """The target of the `rel="next"` link in a `Link` header (RFC 8288), or
    None. Several links may be comma-separated; `rel` may list several
    space-separated relation types. Scanned with `find`, linear in the header's
    length: a registry-made header such as 60,000 `<` must not cost seconds of
    regex backtracking."""
    start = header.find("<")
    while start >= 0:
        end = header.find(">", start + 1)
        if end < 0:
            return None
        following = header.find("<", end + 1)
        stop = len(header) if following < 0 else following
        comma = header.find(",", end + 1, stop)
        if _rel_is_next(header[end + 1 : stop if comma < 0 else comma]):
            return header[start + 1 : end].strip()
        start = following
    return None


def _rel_is_next(params: str) -> bool:
    """`params` is what follows a link's `<...>`: `; rel="next"; title=...`."""
    before, *rest = params.split(";")
    if before.strip():
        return False
    for param in rest:
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "rel" and "next" in value.strip().strip('"').lower().split():
            return True
    return False


# --------------------------------------------------------------------------
# Bounded HTTP: a total deadline and a body cap on every request
# --------------------------------------------------------------------------


class _Decoder:
    """Content-Encoding decoding that never produces more than asked for, so a
    gzip bomb is cut at the cap instead of being inflated in one go."""

    def __init__(self, encoding: str, source: str) -> None:
        self._source = source
        self._zlib = None
        if encoding in ("gzip", "x-gzip", "deflate"):
            self._zlib = zlib.decompressobj(32 + zlib.MAX_WBITS)  # gzip or zlib header, detected
        elif encoding not in ("", "identity"):
            raise OciError(f"unsupported Content-Encoding {shown_name(encoding, 40)!r}", source)

    def decode(self, data: bytes, most: int) -> bytes:
        if self._zlib is None:
            return data
        try:
            return self._zlib.decompress(data, most)
        except zlib.error:
            raise OciError("invalid compressed body", self._source) from None


async def _read_capped(response: httpx.Response, cap: BodyCap, limit: int, source: str) -> bytes:
    """The decoded body, read as a stream; over `limit` bytes (at most the
    cap's size, less for the later pages of a listing) is an error naming the cap."""
    limit = max(limit, 0)  # zlib reads a max_length of 0 as "unlimited"
    over = OciError(f"{response.request.method} {response.request.url.path}: body exceeds {cap.describe()}", source)
    try:
        held = response.content  # a transport may hand over a body it already holds (httpx.MockTransport)
    except httpx.ResponseNotRead:
        pass
    else:
        if len(held) > limit:
            raise over
        return held
    decoder = _Decoder(response.headers.get("content-encoding", "").strip().lower(), source)
    parts: list[bytes] = []
    size = 0
    async for raw in response.aiter_raw():
        piece = decoder.decode(raw, limit - size + 1)
        size += len(piece)
        if size > limit:
            raise over
        parts.append(piece)
    return b"".join(parts)


async def _send_bounded(
    http: httpx.AsyncClient, request: httpx.Request, cap: BodyCap, limit: int | None, source: str
) -> httpx.Response:
    response = await http.send(request, stream=True)
    if not response.is_success:
        cap, limit = ERROR_CAP, None  # only the status and headers of an error are used
    try:
        body = await _read_capped(response, cap, cap.size if limit is None else limit, source)
    finally:
        await response.aclose()
    headers = response.headers
    if "content-encoding" in headers:  # the body is decoded now: its encoding and length no longer apply
        headers = httpx.Headers(
            [(k, v) for k, v in headers.multi_items() if k not in ("content-encoding", "content-length")]
        )
    return httpx.Response(response.status_code, headers=headers, content=body, request=request)


class HttpPool:
    """Bounded HTTP for one collection run: a semaphore (the `concurrency`
    bound) and a free list of httpx clients holding one connection each.

    Why not one client with N connections: httpcore's pool re-scans every
    connection (and polls its socket) on each request and release, which at
    16 connections cost more client CPU than the requests themselves. With
    one connection per client that bookkeeping is O(1); at most `size`
    clients exist because a client is only taken under the semaphore.

    Every request is complete within `deadline` seconds or an `OciError`: a
    server dripping a byte a second never trips httpx's per-read timeout.
    Transport failures stay `httpx.HTTPError` so a probe can tell a refusal
    from an answer.
    """

    def __init__(self, semaphore: asyncio.Semaphore, make_client: Callable[[], httpx.AsyncClient]) -> None:
        self._sem = semaphore
        self._make = make_client
        self._idle: list[httpx.AsyncClient] = []
        self._all: list[httpx.AsyncClient] = []

    async def request(
        self,
        method: str,
        url: str,
        *,
        cap: BodyCap,
        deadline: float,
        limit: int | None = None,
        headers: Mapping[str, str] | None = None,
        params: list[tuple[str, str | int | float | bool | None]] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        """One request, its body read whole but never beyond `limit` (default:
        the cap's size; error answers: ERROR_CAP). `content` is the request body."""
        source = f"{method} {url}"
        async with self._sem:
            http = self._idle.pop() if self._idle else self._new()
            try:
                request = http.build_request(method, url, headers=headers, params=params, content=content)
                async with asyncio.timeout(deadline):
                    return await _send_bounded(http, request, cap, limit, source)
            except TimeoutError:
                raise OciError(deadline_detail(deadline), source) from None
            except httpx.InvalidURL as exc:
                raise OciError(f"not requested: not a valid URL ({exc})", shown_name(source, 300)) from None
            finally:
                self._idle.append(http)

    def _new(self) -> httpx.AsyncClient:
        http = self._make()
        self._all.append(http)
        return http

    async def aclose(self) -> None:
        for http in self._all:
            await http.aclose()

    async def __aenter__(self) -> HttpPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def counted_pool(
    semaphore: asyncio.Semaphore,
    *,
    timeout: float,
    verify: ssl.SSLContext | bool,
    counter: RequestCounter,
    transport: httpx.AsyncBaseTransport | None = None,
) -> HttpPool:
    """Clients of one connection each, all behind `semaphore`; every request
    they send is counted by kind of call. `verify` is one shared context
    (loading a CA store per client would cost more than the requests)."""

    async def count(request: httpx.Request) -> None:
        counter.add(call_name(request))

    def make_client() -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=transport,
            verify=verify,
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            headers={"Accept-Encoding": "gzip, deflate"},  # what _Decoder can bound
            event_hooks={"request": [count]},
        )

    return HttpPool(semaphore, make_client)


_CALL_PATTERNS = (
    (re.compile(r"/v2/?"), "v2"),
    (re.compile(r"/v2/_catalog"), "catalog"),
    (re.compile(r"/v2/.+/tags/list"), "tags"),
    (re.compile(r"/v2/.+/manifests/[^/]+"), "manifest"),
    (re.compile(r"/v2/.+/blobs/[^/]+"), "blob"),
    (re.compile(r"/v2/.+/referrers/[^/]+"), "referrers"),
)


def call_name(request: httpx.Request) -> str:
    """`HEAD manifest`, `GET catalog`, ... (bench figures per kind of call)."""
    path = request.url.path
    for pattern, name in _CALL_PATTERNS:
        if pattern.fullmatch(path):
            return f"{request.method} {name}"
    return f"{request.method} {'v2-other' if path.startswith('/v2/') else 'token'}"


# --------------------------------------------------------------------------
# Origins and token realms
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Origin:
    """scheme://host:port, the unit a browser (and this client) trusts."""

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def origin_of(url: str) -> Origin | None:
    """The origin of an http(s) URL, or None when it is not one (a made-up
    realm or link such as `https://[::1` must not raise)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    return Origin(scheme, parts.hostname.lower(), port or (443 if scheme == "https" else 80))


def token_realm(realm: str, registry_url: str, allowed: Iterable[str] = ()) -> TokenRealmFacts | None:
    """Where a Bearer challenge sends clients for a token, judged against the
    registry's own origin and the allowed list; None when `realm` is no URL."""
    origin = origin_of(realm)
    if origin is None:
        return None
    return TokenRealmFacts(
        origin=str(origin),
        same_origin=origin == origin_of(registry_url),
        plain_http=origin.scheme == "http",
        allowed=origin in {origin_of(a) for a in allowed},
    )


def realm_refusal(realm: str, registry_url: str, allowed: Iterable[str] = ()) -> str | None:
    """Why credentials must not go to `realm`, or None when they may: only
    over HTTPS, to the registry's own origin or one the user allowed."""
    facts = token_realm(realm, registry_url, allowed)
    if facts is None:
        return "token realm is not a valid URL; credentials were not sent"
    if facts.plain_http:
        return f"token realm {facts.origin} is plain HTTP; credentials were not sent"
    if not (facts.same_origin or facts.allowed):
        return (
            f"token realm {facts.origin} is not the registry's origin; credentials were not sent "
            "(list it in allowed_token_realms to trust that token service)"
        )
    return None


# --------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ManifestRef:
    digest: str
    media_type: str | None


@dataclass
class _Token:
    value: str
    expires: float


class OciClient:
    """Authenticated, counted, bounded access to one registry's `/v2/` API.

    `challenge` is the anonymous `/v2/` challenge if already known, so the
    first authenticated call can send credentials pre-emptively instead of
    paying a 401 round trip; otherwise it is learnt from the first 401.
    `timeout` is each request's total deadline; `allowed_realms` are origins of
    token services the user trusts besides the registry's own origin.
    """

    def __init__(
        self,
        base_url: str,
        pool: HttpPool,
        *,
        credentials: Credentials | None = None,
        challenge: Challenge | None = None,
        timeout: float = 10.0,
        redactor: Redactor | None = None,
        allowed_realms: Iterable[str] = (),
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._pool = pool
        self._creds = credentials
        self._challenge = challenge if challenge and challenge.scheme in ("basic", "bearer") else None
        self._timeout = timeout
        self._allowed_realms = tuple(allowed_realms)
        self.redact = redactor or Redactor()
        if credentials is not None:
            self.redact.add(credentials.password)
        self._tokens: dict[str, _Token] = {}
        self._token_locks: dict[str, asyncio.Lock] = {}

    # ---- requests ---------------------------------------------------------

    async def request(
        self,
        method: str,
        path_or_url: str,
        *,
        scope: str,
        cap: BodyCap,
        accept: str | None = None,
        ok: Iterable[int] = (200,),
        limit: int | None = None,
    ) -> httpx.Response:
        """Send one request with authentication; raise OciError unless the
        status is in `ok`. On a 401 the challenge is (re)learnt and the
        request retried once with fresh credentials."""
        url = self._absolute(path_or_url)
        call = _Call(method, url, accept, cap, limit)
        sent_basic = self._challenge is not None and self._challenge.scheme == "basic"
        response = await self._send(call, scope)
        if response.status_code == 401 and self._creds is not None:
            challenges = parse_www_authenticate(response.headers.get("www-authenticate", ""))
            retry = self._learn(challenges, scope)
            now_basic = self._challenge is not None and self._challenge.scheme == "basic"
            if retry is not None and not (sent_basic and now_basic):
                response = await self._send(call, retry, fresh_token=True)
        if response.status_code in frozenset(ok):
            return response
        raise OciError(self._status_detail(response), call.source, response.status_code)

    async def get_json(
        self, path_or_url: str, *, scope: str, cap: BodyCap, accept: str | None = None
    ) -> tuple[Any, httpx.Response]:
        response = await self.request("GET", path_or_url, scope=scope, cap=cap, accept=accept)
        return parse_json(response), response

    async def _send(self, call: _Call, scope: str, *, fresh_token: bool = False) -> httpx.Response:
        headers: dict[str, str] = {}
        if call.accept:
            headers["Accept"] = call.accept
        auth = await self._authorization(scope, fresh_token)
        if auth:
            headers["Authorization"] = auth
        try:
            return await self._pool.request(
                call.method, call.url, headers=headers, cap=call.cap, limit=call.limit, deadline=self._timeout
            )
        except httpx.HTTPError as exc:
            raise OciError(self.redact(describe_transport_error(exc, self._timeout)), call.source) from None

    def _status_detail(self, response: httpx.Response) -> str:
        status = response.status_code
        method_path = f"{response.request.method} {response.request.url.path}"
        if status == 401:
            hint = "credentials rejected" if self._creds else "authentication required; set username_env/password_env"
            return f"HTTP 401 from {method_path} ({hint})"
        if status == 403:
            return f"HTTP 403 from {method_path} (access denied)"
        if status == 404:
            return f"HTTP 404 from {method_path} (not found)"
        return f"HTTP {status} from {method_path}"

    def _absolute(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        return self.base_url + path_or_url

    # ---- authentication ---------------------------------------------------

    def _learn(self, challenges: list[Challenge], scope: str) -> str | None:
        """Record the registry's challenge; return the scope to retry with, or
        None when a retry cannot help (unknown scheme)."""
        for ch in challenges:
            if ch.scheme == "bearer" and ch.realm:
                self._challenge = ch
                return ch.scope or scope
            if ch.scheme == "basic":
                self._challenge = ch
                return scope
        return None

    async def _authorization(self, scope: str, fresh: bool) -> str | None:
        if self._creds is None or self._challenge is None:
            return None
        if self._challenge.scheme == "basic":
            return self._creds.basic_header()
        token = await self._token(scope, fresh)
        return f"Bearer {token}"

    async def _token(self, scope: str, fresh: bool) -> str:
        """A bearer token for `scope`, fetched once per scope and reused until
        it expires (one lock per scope so concurrent callers share a fetch)."""
        lock = self._token_locks.setdefault(scope, asyncio.Lock())
        async with lock:
            cached = self._tokens.get(scope)
            if cached and not fresh and cached.expires > time.monotonic():
                return cached.value
            token = await self._fetch_token(scope)
            self._tokens[scope] = token
            return token.value

    async def _fetch_token(self, scope: str) -> _Token:
        assert self._challenge is not None and self._challenge.realm is not None
        assert self._creds is not None
        realm = self._challenge.realm
        source = f"GET {realm}"
        refusal = realm_refusal(realm, self.base_url, self._allowed_realms)
        if refusal is not None:
            raise OciError(refusal, source)
        params: list[tuple[str, str | int | float | bool | None]] = []
        if self._challenge.service:
            params.append(("service", self._challenge.service))
        if scope:
            params.append(("scope", scope))
        headers = {"Authorization": self._creds.basic_header()}
        try:
            response = await self._pool.request(
                "GET", realm, params=params, headers=headers, cap=TOKEN_CAP, deadline=self._timeout
            )
        except httpx.HTTPError as exc:
            raise OciError(self.redact(describe_transport_error(exc, self._timeout)), source) from None
        if response.status_code != 200:
            hint = " (credentials rejected)" if response.status_code in (401, 403) else ""
            raise OciError(f"HTTP {response.status_code} from token service {realm}{hint}", source)
        return self._parse_token(response, source)

    def _parse_token(self, response: httpx.Response, source: str) -> _Token:
        body = parse_json(response, what="token service")
        value = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(value, str) or not value:
            raise OciError("token service answered without a token", source)
        self.redact.add(value)
        if _HEADER_TOKEN.fullmatch(value) is None:  # non-ASCII or CR/LF: httpx would refuse it, quoting it
            raise OciError("token service answered with a token that is not a valid header value", source)
        ttl = body.get("expires_in")
        ttl_s = float(min(ttl, _TOKEN_MAX_TTL)) if isinstance(ttl, (int, float)) and ttl > 0 else _TOKEN_DEFAULT_TTL
        return _Token(value, time.monotonic() + max(ttl_s - _TOKEN_MARGIN, 1.0))

    # ---- API calls ----------------------------------------------------------

    async def listing(self, first: str, listing: Listing, *, scope: str, accept: str | None = None) -> list[Any] | None:
        """Every entry of a paginated listing, following `Link: <...>; rel="next"`
        on the registry's origin only (credentials are never sent elsewhere).
        Cut, with an OciError saying why, at a loop and at the listing's page,
        entry and byte caps. None when the listing is optional and the registry
        has no such API (the first page is a 404 or not a listing)."""
        entries: list[Any] = []
        url: str | None = self._absolute(first)
        seen: set[str] = set()
        budget = listing.cap.size
        while url is not None:
            _check_next_page(listing, url, seen)
            seen.add(url)
            ok = (200, 404) if listing.optional else (200,)
            response = await self.request("GET", url, scope=scope, cap=listing.cap, accept=accept, ok=ok, limit=budget)
            budget -= len(response.content)
            found = _page_entries(listing, response, first_page=len(seen) == 1)
            if found is None:
                return None
            entries.extend(found)
            if len(entries) > listing.max_entries:
                raise OciError(
                    f"{listing.name} listing cut at {listing.max_entries:,} entries (the entry cap)", f"GET {url}"
                )
            url = self._next_page(response, url)
        return entries

    def _next_page(self, response: httpx.Response, url: str) -> str | None:
        link = response.headers.get("link")
        target = parse_link_next(link) if link else None
        if target is None:
            return None
        try:
            absolute = urljoin(url, target)
        except ValueError:
            absolute = ""
        origin = origin_of(absolute)
        if origin is None:
            raise OciError("pagination link is not a valid URL", f"GET {url}")
        if origin != origin_of(self.base_url):
            raise OciError("pagination link points outside the registry", f"GET {url}")
        return absolute

    async def catalog(self, page_size: int = 100) -> list[str]:
        return await self.listing(f"/v2/_catalog?n={page_size}", CATALOG, scope="registry:catalog:*") or []

    async def tags(self, repository: str, page_size: int = 1000) -> list[str]:
        """All tags; follows `Link` when the registry paginates and stops when
        it does not (Distribution 2.8 returns everything regardless of `n`)."""
        path = f"/v2/{repository}/tags/list?n={page_size}"
        return await self.listing(path, TAGS, scope=pull_scope(repository)) or []

    async def head_manifest(self, repository: str, reference: str) -> ManifestRef:
        """Digest and media type of a manifest with one HEAD; falls back to a
        GET (and hashing the body, at most MANIFEST_CAP) when the registry
        omits the digest header."""
        path = f"/v2/{repository}/manifests/{reference}"
        scope = pull_scope(repository)
        response = await self.request("HEAD", path, scope=scope, cap=MANIFEST_CAP, accept=MANIFEST_ACCEPT)
        digest = response.headers.get("docker-content-digest")
        media_type = _media_type(response)
        if digest and valid_digest(digest):
            return ManifestRef(digest, media_type)
        full = await self.request("GET", path, scope=scope, cap=MANIFEST_CAP, accept=MANIFEST_ACCEPT)
        return ManifestRef("sha256:" + hashlib.sha256(full.content).hexdigest(), _media_type(full))

    async def get_manifest(self, repository: str, reference: str) -> dict[str, Any]:
        path = f"/v2/{repository}/manifests/{reference}"
        body, response = await self.get_json(
            path, scope=pull_scope(repository), cap=MANIFEST_CAP, accept=MANIFEST_ACCEPT
        )
        if not isinstance(body, dict):
            raise OciError(f"unexpected response from GET {path}: not an object", f"GET {response.request.url}")
        return body

    async def get_blob(self, repository: str, digest: str, cap: BodyCap = PAYLOAD_CAP) -> bytes:
        """A blob's bytes (at most `cap`), checked against its digest (sha256 only)."""
        path = f"/v2/{repository}/blobs/{digest}"
        response = await self.request("GET", path, scope=pull_scope(repository), cap=cap)
        if digest.startswith("sha256:") and "sha256:" + hashlib.sha256(response.content).hexdigest() != digest:
            raise OciError(f"blob {digest} does not match its digest", f"GET {response.request.url}")
        return response.content

    async def referrers(self, repository: str, digest: str) -> list[dict[str, Any]] | None:
        """Referrer descriptors of `digest` (OCI 1.1, following pages), or None
        when the registry has no referrers API (it answers 404)."""
        path = f"/v2/{repository}/referrers/{digest}"
        return await self.listing(path, REFERRERS, scope=pull_scope(repository), accept=OCI_INDEX)


@dataclass(frozen=True)
class _Call:
    """One request as the caller asked for it (re-sent as is after a 401)."""

    method: str
    url: str
    accept: str | None
    cap: BodyCap
    limit: int | None

    @property
    def source(self) -> str:
        return f"{self.method} {self.url}"


def parse_json(response: httpx.Response, what: str = "") -> Any:
    """The body as JSON; invalid or nested too deeply to parse (RecursionError)
    is an OciError on that request."""
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError, RecursionError):
        where = f"token service {response.request.url.path}" if what else f"GET {response.request.url.path}"
        raise OciError(f"invalid JSON from {where}", f"GET {response.request.url}") from None


def _check_next_page(listing: Listing, url: str, seen: set[str]) -> None:
    if url in seen:
        path = shown_name(urlsplit(url).path, 200)
        raise OciError(
            f"{listing.name} listing cut: the registry links back to a page already read (a loop at {path})",
            f"GET {url}",
        )
    if len(seen) >= listing.max_pages:
        raise OciError(
            f"{listing.name} listing cut after {listing.max_pages:,} pages (the page cap): the registry announces more",
            f"GET {url}",
        )


def _page_entries(listing: Listing, response: httpx.Response, *, first_page: bool) -> list[Any] | None:
    """The entries on one page; None for an optional listing the registry does
    not serve. A later page that is missing or no listing cuts the listing."""
    path = response.request.url.path
    source = f"GET {response.request.url}"
    if response.status_code == 404:  # only accepted for an optional listing
        if first_page:
            return None
        raise OciError(f"{listing.name} listing cut: a next page answered HTTP 404 ({path})", source)
    body = parse_json(response)
    found = listing.entries(body)
    if found is not None:
        return found
    if listing.optional:
        if first_page:
            return None
        raise OciError(f"{listing.name} listing cut: a next page is not a listing ({path})", source)
    problem = "not an object" if not isinstance(body, dict) else f"{listing.key} is not a list"
    raise OciError(f"unexpected response from GET {path}: {problem}", source)


def pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def _media_type(response: httpx.Response) -> str | None:
    value = response.headers.get("content-type")
    return value.split(";")[0].strip() if value else None
