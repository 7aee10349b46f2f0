"""A small stateful emulator of the Docker Hub API (the paths regguard reads),
held to Docker's own description: every request must be a documented operation
with documented query parameters, and every response body is validated against
`sandbox/api-specs/dockerhub/hub-api.yaml` before it is sent. A body that does
not validate is never sent: the emulator answers 500 and records the violation
(`violations`), so a test sees an emulator that drifted from the contract.

Served: `POST /v2/auth/token`; `GET /v2/namespaces/{ns}/repositories[/{repo}[/tags]]`;
`GET /v2/access-tokens`; `GET /v2/orgs/{org}/access-tokens`; `GET
/v2/orgs/{org}/settings`; `GET /v2/auditlogs/{account}`. Pages follow the
documented `page` / `page_size` and `next` links. Every answer carries
`X-RateLimit-Limit/-Remaining/-Reset`.

Faults (`Fault`) answer a path with a status for a number of requests: 401,
403 and 404 with a documented error body, 429 with `Retry-After` and no body
(Docker documents rate limiting for every endpoint on its rate-limit page, the
description only for the audit log). Only 127.0.0.1 is ever bound.

Runs in a thread (`HubEmulator`, tests and bench) or as a process
(`python -m sandbox.dockerhub_emulator STATE.json PORT`, the sandbox estate).
"""

from __future__ import annotations

import json
import re
import secrets
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sandbox.apispec import ApiSpec, SpecViolation
from sandbox.process import StopsOnExit

HOST = "127.0.0.1"
SPEC_FILE = Path(__file__).parent / "api-specs" / "dockerhub" / "hub-api.yaml"
RATE_LIMIT = 600  # requests per window, as X-RateLimit-Limit announces
MAX_BODY = 64 * 1024  # request bodies the emulator reads at most


@dataclass
class HubRepository:
    name: str
    is_private: bool = True
    pull_count: int = 0
    immutable_tags: bool = False
    immutable_rules: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)  # tag -> last pushed (ISO)


@dataclass
class PersonalToken:
    uuid: str
    label: str
    scopes: list[str]
    created_at: str
    expires_at: str | None = None
    last_used: str | None = None
    is_active: bool = True


@dataclass
class OrgToken:
    id: str
    label: str
    created_by: str
    created_at: str
    expires_at: str | None = None
    last_used_at: str | None = None
    is_active: bool = True


@dataclass
class HubNamespace:
    name: str
    organization: bool = True
    owners: list[str] = field(default_factory=list)  # Docker IDs allowed to read org tokens, settings, audit log
    repositories: dict[str, HubRepository] = field(default_factory=dict)
    org_tokens: list[OrgToken] = field(default_factory=list)
    restricted_images: dict[str, bool] | None = None
    audit_log: bool = True


@dataclass
class Fault:
    """Answer requests whose path matches `path` (a regex, searched) with `status`,
    `times` times (None: always). 429 answers carry `Retry-After: retry_after`."""

    path: str
    status: int
    times: int | None = 1
    retry_after: str | None = "1"
    method: str = "GET"


@dataclass
class HubState:
    accounts: dict[str, str] = field(default_factory=dict)  # identifier (Docker ID or org) -> secret
    personal_tokens: dict[str, list[PersonalToken]] = field(default_factory=dict)  # Docker ID -> its tokens
    namespaces: dict[str, HubNamespace] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> HubState:
        raw = json.loads(text)
        namespaces = {}
        for name, ns in raw.get("namespaces", {}).items():
            repos = {r: HubRepository(**v) for r, v in ns.pop("repositories", {}).items()}
            tokens = [OrgToken(**t) for t in ns.pop("org_tokens", [])]
            namespaces[name] = HubNamespace(**ns, repositories=repos, org_tokens=tokens)
        return cls(
            accounts=raw.get("accounts", {}),
            personal_tokens={u: [PersonalToken(**t) for t in ts] for u, ts in raw.get("personal_tokens", {}).items()},
            namespaces=namespaces,
            faults=[Fault(**f) for f in raw.get("faults", [])],
        )


class _Answer(Exception):
    """An early answer (error status) raised from inside a route."""

    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


def _error(status: int, message: str) -> _Answer:
    return _Answer(status, {"detail": message, "message": message})


class HubApi:
    """The emulator's behaviour, independent of the HTTP server."""

    def __init__(self, state: HubState, spec: ApiSpec, base_url: str) -> None:
        self.state = state
        self.spec = spec
        self.base_url = base_url
        self.sessions: dict[str, str] = {}  # bearer -> identifier
        self.violations: list[str] = []
        self.requests: list[str] = []
        self.remaining = RATE_LIMIT
        self.reset_at = int(time.time()) + 3600
        self.break_body: Callable[[str, Any], Any] | None = None  # tests: corrupt a body before the check
        self._request_base = threading.local()  # the origin the client used (a proxy in front changes it)
        self._lock = threading.Lock()
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., Any]]] = [
            ("POST", re.compile(r"/v2/auth/token"), self._login),
            ("GET", re.compile(r"/v2/namespaces/([^/]+)/repositories"), self._repositories),
            ("GET", re.compile(r"/v2/namespaces/([^/]+)/repositories/([^/]+)"), self._repository),
            ("GET", re.compile(r"/v2/namespaces/([^/]+)/repositories/([^/]+)/tags"), self._tags),
            ("GET", re.compile(r"/v2/access-tokens"), self._personal_tokens),
            ("GET", re.compile(r"/v2/orgs/([^/]+)/access-tokens"), self._org_tokens),
            ("GET", re.compile(r"/v2/orgs/([^/]+)/settings"), self._org_settings),
            ("GET", re.compile(r"/v2/auditlogs/([^/]+)"), self._audit_log),
        ]

    # ---- one request ------------------------------------------------------------

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(target)
        path, query = parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()}
        host = headers.get("host", "")
        self._request_base.url = f"http://{host}" if re.fullmatch(r"127\.0\.0\.1:\d{1,5}", host) else self.base_url
        with self._lock:
            self.requests.append(f"{method} {path}")
            self.remaining = max(0, self.remaining - 1)
        limits = {
            "X-RateLimit-Limit": str(RATE_LIMIT),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_at),
        }
        try:
            self.spec.check_request(method, path, query)
        except SpecViolation as exc:
            self._violation(str(exc))
            return 404, limits, b""
        try:
            status, answer, extra = self._route(method, path, query, headers, body)
        except _Answer as early:
            status, answer, extra = early.status, early.body, early.headers
        if status == 429:
            return status, {**limits, **extra}, b""
        if self.break_body is not None:
            answer = self.break_body(path, answer)
        try:
            self.spec.check_response(method, path, status, answer)
        except SpecViolation as exc:
            self._violation(str(exc))
            return 500, limits, b""
        data = b"" if answer is None else json.dumps(answer).encode()
        return status, {**limits, **extra, "Content-Type": "application/json"}, data

    def _violation(self, text: str) -> None:
        with self._lock:
            self.violations.append(text)

    def _route(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        self._fault(method, path)
        for verb, pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if verb == method and match:
                identity = None if handler == self._login else self._identity(headers)
                return 200, handler(*match.groups(), query=query, identity=identity, body=body), {}
        raise _error(404, "not emulated")

    def _fault(self, method: str, path: str) -> None:
        with self._lock:
            for fault in self.state.faults:
                if fault.method == method and re.search(fault.path, path) and fault.times != 0:
                    if fault.times is not None:
                        fault.times -= 1
                    if fault.status == 429:
                        raise _Answer(429, headers={"Retry-After": fault.retry_after} if fault.retry_after else {})
                    raise _error(fault.status, f"emulated fault {fault.status}")

    def _identity(self, headers: dict[str, str]) -> str:
        auth = headers.get("authorization", "")
        identity = self.sessions.get(auth.removeprefix("Bearer ")) if auth.startswith("Bearer ") else None
        if identity is None:
            raise _error(401, "authentication required")
        return identity

    # ---- routes -------------------------------------------------------------------

    def _login(self, *, query: dict[str, str], identity: None, body: bytes) -> Any:
        try:
            request = json.loads(body)
        except ValueError:
            raise _error(401, "invalid credentials") from None
        identifier, secret = request.get("identifier"), request.get("secret")
        if not isinstance(identifier, str) or self.state.accounts.get(identifier) != secret:
            raise _error(401, "invalid credentials")
        bearer = "emu." + secrets.token_urlsafe(24)
        with self._lock:
            self.sessions[bearer] = identifier
        return {"access_token": bearer}

    def _namespace(self, name: str) -> HubNamespace:
        ns = self.state.namespaces.get(name)
        if ns is None:
            raise _error(404, "namespace not found")
        return ns

    def _owned_org(self, name: str, identity: str) -> HubNamespace:
        ns = self._namespace(name)
        if not ns.organization:
            raise _error(404, "organization not found")
        if identity not in ns.owners and identity != ns.name:
            raise _error(403, "only organization owners may read this")
        return ns

    def _visible(self, ns: HubNamespace, identity: str) -> list[HubRepository]:
        member = identity == ns.name or identity in ns.owners
        return [r for _, r in sorted(ns.repositories.items()) if member or not r.is_private]

    def _repositories(self, namespace: str, *, query: dict[str, str], identity: str, body: bytes) -> Any:
        ns = self._namespace(namespace)
        entries = [self._entry(ns, r) for r in self._visible(ns, identity)]
        return self._page(f"/v2/namespaces/{namespace}/repositories", entries, query)

    def _repository_of(self, namespace: str, repository: str, identity: str) -> HubRepository:
        ns = self._namespace(namespace)
        repo = next((r for r in self._visible(ns, identity) if r.name == repository), None)
        if repo is None:
            raise _error(404, "repository not found")
        return repo

    def _repository(self, namespace: str, repository: str, *, query: dict[str, str], identity: str, body: bytes) -> Any:
        repo = self._repository_of(namespace, repository, identity)
        info = self._entry(self._namespace(namespace), repo)
        info.pop("affiliation", None)
        return {
            **info,
            "user": namespace,
            "is_automated": False,
            "collaborator_count": 0,
            "hub_user": namespace,
            "has_starred": False,
            "full_description": "",
            "permissions": {"read": True, "write": False, "admin": False},
            "immutable_tags_settings": {"enabled": repo.immutable_tags, "rules": list(repo.immutable_rules)},
        }

    def _tags(self, namespace: str, repository: str, *, query: dict[str, str], identity: str, body: bytes) -> Any:
        repo = self._repository_of(namespace, repository, identity)
        tags = [_tag_body(i, name, pushed) for i, (name, pushed) in enumerate(sorted(repo.tags.items()), start=1)]
        return self._page(f"/v2/namespaces/{namespace}/repositories/{repository}/tags", tags, query)

    def _personal_tokens(self, *, query: dict[str, str], identity: str, body: bytes) -> Any:
        tokens = [{**asdict(t), "token_label": t.label, "token": "", "client_id": "HUB", "generated_by": "manual",
                   "creator_ip": "127.0.0.1", "creator_ua": "regguard-sandbox"}
                  for t in self.state.personal_tokens.get(identity, [])]  # fmt: skip
        for t in tokens:
            t.pop("label")
            if t["expires_at"] is None:
                t.pop("expires_at")  # never expires: the field is absent (it is not nullable)
        page = _without_null_links(self._page("/v2/access-tokens", tokens, query))
        return {**page, "active_count": sum(1 for t in tokens if t["is_active"])}

    def _org_tokens(self, org: str, *, query: dict[str, str], identity: str, body: bytes) -> Any:
        ns = self._owned_org(org, identity)
        tokens = [asdict(t) for t in ns.org_tokens]
        page = _without_null_links(self._page(f"/v2/orgs/{org}/access-tokens", tokens, query))
        return {**page, "total": page.pop("count")}

    def _org_settings(self, org: str, *, query: dict[str, str], identity: str, body: bytes) -> Any:
        ns = self._owned_org(org, identity)
        default = {"enabled": False, "allow_official_images": True, "allow_verified_publishers": True}
        return {"restricted_images": ns.restricted_images or default}

    def _audit_log(self, account: str, *, query: dict[str, str], identity: str, body: bytes) -> Any:
        ns = self._owned_org(account, identity)
        if not ns.audit_log:
            raise _error(404, "audit log not available on this plan")
        event = {"account": account, "action": "repo.tag.push", "name": f"{account}/app", "actor": account,
                 "data": {"tag": "v1.0.0"}, "timestamp": "2026-11-30T12:00:00Z",
                 "action_description": "pushed the tag v1.0.0"}  # fmt: skip
        return {"logs": [event][: int(query.get("page_size", "25") or 25)]}

    # ---- shapes -------------------------------------------------------------------

    def _entry(self, ns: HubNamespace, repo: HubRepository) -> dict[str, Any]:
        return {
            "name": repo.name,
            "namespace": ns.name,
            "repository_type": "image",
            "status": 1,
            "status_description": "active",
            "description": "",
            "is_private": repo.is_private,
            "star_count": 0,
            "pull_count": repo.pull_count,
            "last_updated": max(repo.tags.values(), default="2026-01-01T00:00:00Z"),
            "last_modified": "2026-01-01T00:00:00Z",
            "date_registered": "2025-01-01T00:00:00Z",
            "affiliation": "",
            "media_types": ["application/vnd.oci.image.index.v1+json"],
            "content_types": ["image"],
            "categories": [],
        }

    def _page(self, path: str, entries: list[Any], query: dict[str, str]) -> dict[str, Any]:
        size = max(1, min(int(query.get("page_size", "10") or 10), 100))
        page = max(1, int(query.get("page", "1") or 1))
        start = (page - 1) * size
        if start and start >= len(entries):
            raise _error(404, "page not found")
        more = start + size < len(entries)
        base = getattr(self._request_base, "url", self.base_url)
        link = f"{base}{path}?page={page + 1}&page_size={size}" if more else None
        previous = f"{base}{path}?page={page - 1}&page_size={size}" if page > 1 else None
        return {"count": len(entries), "next": link, "previous": previous, "results": entries[start : start + size]}


def _without_null_links(page: dict[str, Any]) -> dict[str, Any]:
    """The token listings describe `next` / `previous` as strings, not nullable: absent when there is none."""
    return {k: v for k, v in page.items() if not (k in ("next", "previous") and v is None)}


def _tag_body(index: int, name: str, pushed: str) -> dict[str, Any]:
    return {
        "id": index,
        "images": {"architecture": "amd64", "os": "linux", "size": 1024, "status": "active", "last_pushed": pushed},
        "creator": 1,
        "last_updated": pushed,
        "last_updater": 1,
        "last_updater_username": "ci",
        "name": name,
        "repository": 1,
        "full_size": 1024,
        "v2": "true",
        "status": "active",
        "tag_last_pulled": None,
        "tag_last_pushed": pushed,
    }


# --------------------------------------------------------------------------
# The HTTP server
# --------------------------------------------------------------------------


def _handler(api: HubApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = min(int(self.headers.get("Content-Length", "0") or 0), MAX_BODY)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, out_headers, data = api.handle(self.command, self.path, headers, body)
            self.send_response(status)
            for key, value in out_headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_HEAD = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

    return Handler


class HubEmulator(StopsOnExit):
    """The emulator on a free 127.0.0.1 port, served from a thread."""

    def __init__(self, state: HubState, *, port: int = 0, spec: ApiSpec | None = None) -> None:
        self._server = ThreadingHTTPServer((HOST, port), _handler_placeholder())
        self._server.daemon_threads = True
        self.url = f"http://{HOST}:{self._server.server_address[1]}"
        self.api = HubApi(state, spec or load_spec(), self.url)
        self._server.RequestHandlerClass = _handler(self.api)
        self._thread = threading.Thread(target=self._server.serve_forever, name="dockerhub-emulator", daemon=True)
        self._thread.start()

    @property
    def state(self) -> HubState:
        return self.api.state

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler_placeholder() -> type[BaseHTTPRequestHandler]:
    return BaseHTTPRequestHandler


_SPEC: ApiSpec | None = None


def load_spec() -> ApiSpec:
    """The committed description, parsed once per process (it is 150 KB of YAML)."""
    global _SPEC
    if _SPEC is None:
        _SPEC = ApiSpec.load(SPEC_FILE)
    return _SPEC


def main(argv: list[str]) -> int:
    """`python -m sandbox.dockerhub_emulator STATE.json PORT`: serve until terminated."""
    state_file, port = Path(argv[0]), int(argv[1])
    emulator = HubEmulator(HubState.from_json(state_file.read_text()), port=port)
    print(f"dockerhub emulator on {emulator.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        emulator.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
