"""A small OCI Distribution API client: authentication, pagination, manifests.

Why hand-written instead of a registry SDK: the audit must see exactly what the
registry answers (status codes, challenges, `Link` headers) and must be able to
count every request it makes. The client is async (httpx) and bounded by one
semaphore shared by every call of a collection run.

Secrets: credentials live only in `Credentials` (its `repr` hides the
password) and in the `Authorization` headers this module builds. Errors are
`OciError` whose `detail` is composed here from fixed phrases, status codes and
URLs (never from headers or bodies the client sent), and is passed through
`Redactor` before leaving, so a secret cannot travel into a fact or a log.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_ACCEPT = ", ".join((OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST_V2, DOCKER_MANIFEST_LIST))

# Distribution's grammar for repository names and tags (reference/regexp.go);
# names from the registry are untrusted and end up in URL paths.
_REPO_NAME = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")

_MAX_PAGES = 10_000  # a registry that keeps sending rel="next" must not loop forever
_TOKEN_DEFAULT_TTL = 60.0  # docker token spec: expires_in defaults to 60 seconds
_TOKEN_MARGIN = 5.0


def valid_repository(name: str) -> bool:
    return len(name) <= 255 and _REPO_NAME.match(name) is not None


def valid_tag(tag: str) -> bool:
    return _TAG.match(tag) is not None


def valid_digest(digest: str) -> bool:
    return _DIGEST.match(digest) is not None


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
        return f"timed out after {timeout:g}s"
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
    space-separated relation types."""
    for match in re.finditer(r"<([^>]*)>((?:\s*;\s*[^;,]*)*)", header):
        target, raw_params = match.group(1), match.group(2)
        for param in raw_params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "rel":
                rels = value.strip().strip('"').lower().split()
                if "next" in rels:
                    return target.strip()
    return None


# --------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------


class HttpPool:
    """Bounded HTTP for one collection run: a semaphore (the `concurrency`
    bound) and a free list of httpx clients holding one connection each.

    Why not one client with N connections: httpcore's pool re-scans every
    connection (and polls its socket) on each request and release, which at
    16 connections cost more client CPU than the requests themselves. With
    one connection per client that bookkeeping is O(1); at most `size`
    clients exist because a client is only taken under the semaphore.
    """

    def __init__(self, semaphore: asyncio.Semaphore, make_client: Callable[[], httpx.AsyncClient]) -> None:
        self._sem = semaphore
        self._make = make_client
        self._idle: list[httpx.AsyncClient] = []
        self._all: list[httpx.AsyncClient] = []

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async with self._sem:
            http = self._idle.pop() if self._idle else self._new()
            try:
                return await http.request(method, url, **kwargs)
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
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._pool = pool
        self._creds = credentials
        self._challenge = challenge if challenge and challenge.scheme in ("basic", "bearer") else None
        self._timeout = timeout
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
        accept: str | None = None,
        ok: Iterable[int] = (200,),
    ) -> httpx.Response:
        """Send one request with authentication; raise OciError unless the
        status is in `ok`. On a 401 the challenge is (re)learnt and the
        request retried once with fresh credentials."""
        url = self._absolute(path_or_url)
        source = f"{method} {url}"
        ok_set = frozenset(ok)
        sent_basic = self._challenge is not None and self._challenge.scheme == "basic"
        response = await self._send(method, url, scope, accept, source)
        if response.status_code == 401 and self._creds is not None:
            challenges = parse_www_authenticate(response.headers.get("www-authenticate", ""))
            retry = self._learn(challenges, scope)
            now_basic = self._challenge is not None and self._challenge.scheme == "basic"
            if retry is not None and not (sent_basic and now_basic):
                response = await self._send(method, url, retry, accept, source, fresh_token=True)
        if response.status_code in ok_set:
            return response
        raise OciError(self._status_detail(response, source), source, response.status_code)

    async def get_json(self, path_or_url: str, *, scope: str, accept: str | None = None) -> tuple[Any, httpx.Response]:
        response = await self.request("GET", path_or_url, scope=scope, accept=accept)
        source = f"GET {response.request.url}"
        try:
            return json.loads(response.content), response
        except (ValueError, UnicodeDecodeError):
            raise OciError(f"invalid JSON from GET {response.request.url.path}", source) from None

    async def _send(
        self, method: str, url: str, scope: str, accept: str | None, source: str, *, fresh_token: bool = False
    ) -> httpx.Response:
        headers: dict[str, str] = {}
        if accept:
            headers["Accept"] = accept
        auth = await self._authorization(scope, fresh_token)
        if auth:
            headers["Authorization"] = auth
        try:
            return await self._pool.request(method, url, headers=headers)
        except httpx.HTTPError as exc:
            raise OciError(self.redact(describe_transport_error(exc, self._timeout)), source) from None

    def _status_detail(self, response: httpx.Response, source: str) -> str:
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
        self._check_realm(realm, source)
        params: list[tuple[str, str | int | float | bool | None]] = []
        if self._challenge.service:
            params.append(("service", self._challenge.service))
        if scope:
            params.append(("scope", scope))
        headers = {"Authorization": self._creds.basic_header()}
        try:
            response = await self._pool.request("GET", realm, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise OciError(self.redact(describe_transport_error(exc, self._timeout)), source) from None
        if response.status_code != 200:
            hint = " (credentials rejected)" if response.status_code in (401, 403) else ""
            raise OciError(f"HTTP {response.status_code} from token service {realm}{hint}", source)
        return self._parse_token(response, source)

    def _parse_token(self, response: httpx.Response, source: str) -> _Token:
        try:
            body = json.loads(response.content)
        except (ValueError, UnicodeDecodeError):
            raise OciError(f"invalid JSON from token service {response.request.url.path}", source) from None
        value = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(value, str) or not value:
            raise OciError("token service answered without a token", source)
        self.redact.add(value)
        ttl = body.get("expires_in")
        ttl_s = float(ttl) if isinstance(ttl, (int, float)) and ttl > 0 else _TOKEN_DEFAULT_TTL
        return _Token(value, time.monotonic() + max(ttl_s - _TOKEN_MARGIN, 1.0))

    def _check_realm(self, realm: str, source: str) -> None:
        """Credentials go to the token realm only over HTTPS, or over HTTP when
        the registry itself was configured as plain HTTP on the same host."""
        realm_parts = urlsplit(realm)
        base_parts = urlsplit(self.base_url)
        if realm_parts.scheme == "https":
            return
        if realm_parts.scheme == "http" and base_parts.scheme == "http" and realm_parts.hostname == base_parts.hostname:
            return
        raise OciError("token realm is not HTTPS; credentials were not sent", source)

    # ---- API calls ----------------------------------------------------------

    async def paginate(self, first: str, key: str, *, scope: str) -> list[str]:
        """Collect `key` (a list of strings) over every page, following
        `Link: <...>; rel="next"` until there is none. Links must stay on the
        registry's origin: credentials are never sent elsewhere."""
        items: list[str] = []
        url: str | None = self._absolute(first)
        seen: set[str] = set()
        while url is not None:
            if url in seen or len(seen) >= _MAX_PAGES:
                raise OciError(f"pagination loops at {urlsplit(url).path}", f"GET {url}")
            seen.add(url)
            body, response = await self.get_json(url, scope=scope)
            items.extend(self._string_list(body, key, f"GET {url}", response))
            url = self._next_page(response, url)
        return items

    def _string_list(self, body: Any, key: str, source: str, response: httpx.Response) -> list[str]:
        if not isinstance(body, dict):
            raise OciError(f"unexpected response from GET {response.request.url.path}: not an object", source)
        value = body.get(key)
        if value is None:
            return []  # Distribution sends "tags": null for a repository without tags
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise OciError(f"unexpected response from GET {response.request.url.path}: {key} is not a list", source)
        return list(value)

    def _next_page(self, response: httpx.Response, url: str) -> str | None:
        link = response.headers.get("link")
        if not link:
            return None
        target = parse_link_next(link)
        if target is None:
            return None
        absolute = urljoin(url, target)
        if _origin(absolute) != _origin(self.base_url):
            raise OciError("pagination link points outside the registry", f"GET {url}")
        return absolute

    async def catalog(self, page_size: int = 100) -> list[str]:
        return await self.paginate(f"/v2/_catalog?n={page_size}", "repositories", scope="registry:catalog:*")

    async def tags(self, repository: str, page_size: int = 1000) -> list[str]:
        """All tags; follows `Link` when the registry paginates and stops when
        it does not (Distribution 2.8 returns everything regardless of `n`)."""
        return await self.paginate(f"/v2/{repository}/tags/list?n={page_size}", "tags", scope=pull_scope(repository))

    async def head_manifest(self, repository: str, reference: str) -> ManifestRef:
        """Digest and media type of a manifest with one HEAD; falls back to a
        GET (and hashing the body) when the registry omits the digest header."""
        path = f"/v2/{repository}/manifests/{reference}"
        response = await self.request("HEAD", path, scope=pull_scope(repository), accept=MANIFEST_ACCEPT)
        digest = response.headers.get("docker-content-digest")
        media_type = _media_type(response)
        if digest and valid_digest(digest):
            return ManifestRef(digest, media_type)
        full = await self.request("GET", path, scope=pull_scope(repository), accept=MANIFEST_ACCEPT)
        return ManifestRef("sha256:" + hashlib.sha256(full.content).hexdigest(), _media_type(full))

    async def get_manifest(self, repository: str, reference: str) -> dict[str, Any]:
        path = f"/v2/{repository}/manifests/{reference}"
        body, response = await self.get_json(path, scope=pull_scope(repository), accept=MANIFEST_ACCEPT)
        if not isinstance(body, dict):
            raise OciError(f"unexpected response from GET {path}: not an object", f"GET {response.request.url}")
        return body

    async def get_blob(self, repository: str, digest: str) -> bytes:
        """A blob's bytes, checked against its digest (sha256 only)."""
        path = f"/v2/{repository}/blobs/{digest}"
        response = await self.request("GET", path, scope=pull_scope(repository))
        if digest.startswith("sha256:") and "sha256:" + hashlib.sha256(response.content).hexdigest() != digest:
            raise OciError(f"blob {digest} does not match its digest", f"GET {response.request.url}")
        return response.content

    async def referrers(self, repository: str, digest: str) -> list[dict[str, Any]] | None:
        """Referrer descriptors of `digest` (OCI 1.1, following pages), or None
        when the registry has no referrers API (it answers 404)."""
        url: str | None = self._absolute(f"/v2/{repository}/referrers/{digest}")
        descriptors: list[dict[str, Any]] = []
        pages = 0
        while url is not None and pages < _MAX_PAGES:
            pages += 1
            response = await self.request("GET", url, scope=pull_scope(repository), accept=OCI_INDEX, ok=(200, 404))
            if response.status_code == 404:
                return None if pages == 1 else descriptors
            try:
                body = json.loads(response.content)
            except (ValueError, UnicodeDecodeError):
                raise OciError(f"invalid JSON from GET {response.request.url.path}", f"GET {url}") from None
            manifests = body.get("manifests") if isinstance(body, dict) else None
            if not isinstance(manifests, list):
                return None if pages == 1 else descriptors  # not an image index: no referrers API
            descriptors.extend(m for m in manifests if isinstance(m, dict))
            url = self._next_page(response, url)
        return descriptors


def pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def _media_type(response: httpx.Response) -> str | None:
    value = response.headers.get("content-type")
    return value.split(";")[0].strip() if value else None


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()
