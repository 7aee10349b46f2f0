"""A stateful emulator of the GitHub REST paths the GHCR collector reads, for
tests, the bench and the demo (github.com cannot be reached from here).

It serves only documented operations — the packages API extract and the
organization Actions workflow-permissions operation under
`sandbox/api-specs/github/` — and checks every request and every body against
them (`sandbox.apispec`) before sending; a body the description does not allow
is a 500 naming the violation, so a collector test cannot pass on an invented
shape. Errors GitHub sends that the description does not list (429, secondary
rate limits) are checked against its `basic-error` schema.

What GitHub does that the collector depends on, and the emulator copies:
tokens in `Authorization: Bearer|token`, `X-OAuth-Scopes` on classic PATs,
`GitHub-Authentication-Token-Expiration` for tokens with an expiry, a 403 with
`X-Accepted-OAuth-Scopes` when a scope is missing, `X-RateLimit-*` on every
answer, a primary rate limit (403/429 with `x-ratelimit-remaining: 0`), the
secondary rate limit (403 "secondary rate limit", `Retry-After`) and `Link`
pagination. Faults are injected per path (`Fault`).

The OCI side (`ghcr.io`) is a real `docker-registry`: see `sandbox.ghcr_estate`.
Run as `python -m sandbox.github_emulator STATE.json PORT CERT KEY` (the estate does).
"""

from __future__ import annotations

import json
import ssl
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from sandbox.apispec import ApiSpec, SpecViolation

SPEC_DIR = Path(__file__).parent / "api-specs" / "github"
HOST = "127.0.0.1"
DOCS = "https://docs.github.com/rest"
SECONDARY_MESSAGE = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."


@dataclass
class Token:
    """What GitHub knows about a token: its kind decides the headers it gets."""

    kind: str  # "classic", "fine-grained", "actions"
    scopes: tuple[str, ...] = ()  # classic PATs only
    expires_at: str | None = None  # ISO date-time; None: no expiry
    org_admin_read: bool = False  # fine-grained: "Administration: read" on the organization


@dataclass
class Version:
    id: int
    digest: str
    tags: list[str]
    created_at: str


@dataclass
class Package:
    name: str
    visibility: str  # "public" / "private"
    repository: str | None  # "owner/repo" the package is linked to, or None
    versions: list[Version] = field(default_factory=list)
    created_at: str = "2026-01-05T10:00:00Z"


@dataclass
class Owner:
    login: str
    type: str  # "org" / "user"
    packages: dict[str, Package] = field(default_factory=dict)
    workflow_permissions: str = "read"
    can_approve_pull_requests: bool = False


@dataclass
class Fault:
    """Answer `status` (with `retry_after` / a secondary-limit body) to the next
    `times` requests whose path contains `path`."""

    path: str
    status: int
    times: int = 1
    retry_after: int | None = None
    secondary: bool = False
    rate_limited: bool = False  # a primary limit: x-ratelimit-remaining 0


@dataclass
class GitHubState:
    owners: dict[str, Owner] = field(default_factory=dict)
    tokens: dict[str, Token] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    rate_limit: int = 5000
    rate_used: int = 0
    requests: int = 0
    paths: list[str] = field(default_factory=list)  # every path requested, in order (tests read it)

    def to_json(self) -> str:
        def plain(o: Any) -> Any:
            return o.__dict__ if hasattr(o, "__dict__") else o

        return json.dumps({"owners": self.owners, "tokens": self.tokens}, default=plain)

    @classmethod
    def from_json(cls, text: str) -> GitHubState:
        raw = json.loads(text)
        owners = {}
        for login, o in raw["owners"].items():
            packages = {
                n: Package(p["name"], p["visibility"], p["repository"], [Version(**v) for v in p["versions"]],
                           p["created_at"])
                for n, p in o["packages"].items()
            }
            owners[login] = Owner(o["login"], o["type"], packages, o["workflow_permissions"],
                                  o["can_approve_pull_requests"])
        tokens = {value: Token(t["kind"], tuple(t["scopes"]), t["expires_at"], t["org_admin_read"])
                  for value, t in raw["tokens"].items()}
        return cls(owners=owners, tokens=tokens)


class _Specs:
    def __init__(self) -> None:
        self.packages = ApiSpec.load(SPEC_DIR / "packages-openapi.json")
        self.actions = ApiSpec.load(SPEC_DIR / "actions-permissions-openapi.json")

    def for_path(self, path: str) -> ApiSpec:
        return self.actions if "/actions/" in path else self.packages


class _Answer(Exception):
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.status, self.body, self.headers = status, body, headers or {}


class GitHubEmulator:
    """The HTTPS server over a `GitHubState`; `url` is the API base URL."""

    def __init__(self, state: GitHubState, cert_file: Path, key_file: Path, port: int = 0) -> None:
        self.state = state
        self.specs = _Specs()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((HOST, port), _handler(self))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self._server.server_address[1]}"

    def start(self) -> GitHubEmulator:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:  # shutdown() waits for serve_forever: only when it runs
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()

    # ---- one request --------------------------------------------------------

    def answer(self, method: str, target: str, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        """(status, body, headers) for one request, the body checked against the spec."""
        parts = urlsplit(target)
        path, query = parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}
        spec = self.specs.for_path(path)
        with self._lock:
            self.state.requests += 1
            self.state.paths.append(path)
            try:
                spec.check_request(method, path, query)
                status, body, extra = self._route(method, path, query, headers)
            except _Answer as answer:
                status, body, extra = answer.status, answer.body, answer.headers
            except SpecViolation as exc:
                return 400, {"message": f"emulator: {exc}"}, {}
            extra = {**self._rate_headers(), **extra}
        try:
            if _documented(spec, method, path, status):
                spec.check_response(method, path, status, body)
            else:  # GitHub sends it (429, a 403 on the Actions path); the description lists it not
                self.specs.packages.check_schema("basic-error", body)
        except SpecViolation as exc:
            return 500, {"message": f"emulator refused its own answer: {exc}"}, {}
        return status, body, extra

    def _route(self, method: str, path: str, query: dict[str, str], headers: dict[str, str]) -> tuple[int, Any, dict]:
        token, token_headers = self._authenticate(headers)
        self._fault(path)
        self._count_rate()
        segments = [unquote(s) for s in path.strip("/").split("/")]
        if segments[0] in ("orgs", "users") and len(segments) >= 3:
            owner = self.state.owners.get(segments[1])
            if owner is None or (owner.type == "org") != (segments[0] == "orgs"):
                raise _Answer(404, _error("Not Found", "packages"), token_headers)
            if segments[2] == "actions":
                return 200, self._workflow_permissions(owner, token), token_headers
            self._require_scope(token, "read:packages", token_headers)
            paging = {**token_headers, "host": headers.get("host", "")}
            if len(segments) == 3:
                return self._page(self._packages(owner), query, path, paging)
            package = owner.packages.get(segments[4])
            if package is None:
                raise _Answer(404, _error("Package not found.", "packages"), token_headers)
            return self._page(self._versions(owner, package), query, path, paging)
        raise _Answer(404, _error("Not Found", ""), token_headers)

    def _authenticate(self, headers: dict[str, str]) -> tuple[Token, dict[str, str]]:
        scheme, _, value = headers.get("authorization", "").partition(" ")
        token = self.state.tokens.get(value.strip()) if scheme.lower() in ("bearer", "token") else None
        if token is None:
            raise _Answer(401, _error("Bad credentials", ""))
        out: dict[str, str] = {}
        if token.kind == "classic":
            out["X-OAuth-Scopes"] = ", ".join(token.scopes)
        if token.expires_at:
            stamp = datetime.fromisoformat(token.expires_at).astimezone(UTC)
            out["GitHub-Authentication-Token-Expiration"] = stamp.strftime("%Y-%m-%d %H:%M:%S UTC")
        return token, out

    def _require_scope(self, token: Token, scope: str, headers: dict[str, str]) -> None:
        if token.kind == "classic" and scope not in token.scopes and "write:packages" not in token.scopes:
            message = f"You need at least {scope} scope to list packages."
            raise _Answer(403, _error(message, "packages"), {**headers, "X-Accepted-OAuth-Scopes": scope})

    def _workflow_permissions(self, owner: Owner, token: Token) -> dict[str, Any]:
        allowed = "admin:org" in token.scopes or token.org_admin_read
        if not allowed:
            raise _Answer(403, _error("Resource not accessible by personal access token", "actions"),
                          {"X-Accepted-OAuth-Scopes": "admin:org"} if token.kind == "classic" else {})
        return {"default_workflow_permissions": owner.workflow_permissions,
                "can_approve_pull_request_reviews": owner.can_approve_pull_requests}

    def _fault(self, path: str) -> None:
        for fault in self.state.faults:
            if fault.times > 0 and fault.path in path:
                fault.times -= 1
                headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                if fault.rate_limited:
                    headers.update({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time()) + 3600)})
                message = SECONDARY_MESSAGE if fault.secondary else _FAULT_MESSAGES.get(fault.status, "Error")
                raise _Answer(fault.status, _error(message, ""), headers)

    def _count_rate(self) -> None:
        if self.state.rate_used >= self.state.rate_limit:
            raise _Answer(403, _error("API rate limit exceeded.", ""), {"X-RateLimit-Remaining": "0"})
        self.state.rate_used += 1

    def _rate_headers(self) -> dict[str, str]:
        remaining = max(self.state.rate_limit - self.state.rate_used, 0)
        return {
            "X-RateLimit-Limit": str(self.state.rate_limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Used": str(self.state.rate_used),
            "X-RateLimit-Reset": str(int(time.time()) + 3600),
            "X-RateLimit-Resource": "core",
        }

    # ---- bodies -------------------------------------------------------------

    def _page(self, items: list[Any], query: dict[str, str], path: str, headers: dict[str, str]) -> tuple:
        """One page; the `Link` names the host the client asked for (it may sit behind a proxy)."""
        per_page = min(int(query.get("per_page", 30)), 100)
        page = max(int(query.get("page", 1)), 1)
        chunk = items[(page - 1) * per_page : page * per_page]
        out = dict(headers)
        host = out.pop("host", "") or self.url.removeprefix("https://")
        if page * per_page < len(items):
            rest = "&".join(f"{k}={v}" for k, v in query.items() if k not in ("page",))
            out["Link"] = f'<https://{host}{path}?{rest}&page={page + 1}>; rel="next"'
        return 200, chunk, out

    def _packages(self, owner: Owner) -> list[dict[str, Any]]:
        return [self._package(owner, p) for p in sorted(owner.packages.values(), key=lambda p: p.name)]

    def _package(self, owner: Owner, package: Package) -> dict[str, Any]:
        base = f"{self.url}/{'orgs' if owner.type == 'org' else 'users'}/{owner.login}/packages/container"
        body: dict[str, Any] = {
            "id": zlib.crc32(f"{owner.login}/{package.name}".encode()),  # stable across runs
            "name": package.name,
            "package_type": "container",
            "url": f"{base}/{quote(package.name, safe='')}",
            "html_url": f"https://github.com/{owner.login}/packages/container/package/{package.name}",
            "version_count": len(package.versions),
            "visibility": package.visibility,
            "owner": _simple_user(owner),
            "created_at": package.created_at,
            "updated_at": package.created_at,
        }
        if package.repository:
            body["repository"] = _repository(owner, package.repository)
        return body

    def _versions(self, owner: Owner, package: Package) -> list[dict[str, Any]]:
        base = self._package(owner, package)["url"]
        newest_first = sorted(package.versions, key=lambda v: v.created_at, reverse=True)
        return [
            {
                "id": v.id,
                "name": v.digest,
                "url": f"{base}/versions/{v.id}",
                "package_html_url": self._package(owner, package)["html_url"],
                "created_at": v.created_at,
                "updated_at": v.created_at,
                "metadata": {"package_type": "container", "container": {"tags": list(v.tags)}},
            }
            for v in newest_first
        ]


def _documented(spec: ApiSpec, method: str, path: str, status: int) -> bool:
    operation = spec.operation(method, path)
    return operation is not None and str(status) in operation.definition.get("responses", {})


_FAULT_MESSAGES = {401: "Bad credentials", 403: "Forbidden", 404: "Not Found", 429: "Too Many Requests"}


def _error(message: str, area: str) -> dict[str, str]:
    return {"message": message, "documentation_url": f"{DOCS}/{area}", "status": ""}


def _simple_user(owner: Owner) -> dict[str, Any]:
    api = f"https://api.github.com/users/{owner.login}"
    urls = {k: f"{api}/{k.removesuffix('_url')}" for k in (
        "events_url", "followers_url", "following_url", "gists_url", "organizations_url",
        "received_events_url", "repos_url", "starred_url", "subscriptions_url")}
    return {"login": owner.login, "id": 1, "node_id": "O_1", "avatar_url": "", "gravatar_id": "", "url": api,
            "html_url": f"https://github.com/{owner.login}", "type": "Organization" if owner.type == "org" else "User",
            "site_admin": False, **urls}


_REPO_URL_KEYS = (
    "archive_url", "assignees_url", "blobs_url", "branches_url", "collaborators_url", "comments_url",
    "commits_url", "compare_url", "contents_url", "contributors_url", "deployments_url", "downloads_url",
    "events_url", "forks_url", "git_commits_url", "git_refs_url", "git_tags_url", "hooks_url",
    "issue_comment_url", "issue_events_url", "issues_url", "keys_url", "labels_url", "languages_url",
    "merges_url", "milestones_url", "notifications_url", "pulls_url", "releases_url", "stargazers_url",
    "statuses_url", "subscribers_url", "subscription_url", "tags_url", "teams_url", "trees_url",
)


def _repository(owner: Owner, full_name: str) -> dict[str, Any]:
    api = f"https://api.github.com/repos/{full_name}"
    return {"id": 2, "node_id": "R_2", "name": full_name.split("/")[-1], "full_name": full_name,
            "owner": _simple_user(owner), "private": False, "html_url": f"https://github.com/{full_name}",
            "description": None, "fork": False, "url": api,
            **{k: f"{api}/{k.removesuffix('_url')}" for k in _REPO_URL_KEYS}}


def _handler(emulator: GitHubEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, body, extra = emulator.answer("GET", self.path, headers)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
            return

    return Handler


def main(argv: list[str]) -> None:
    """`STATE.json PORT CERT KEY`: serve until terminated (the estate's subprocess)."""
    state_file, port, cert, key = argv
    state = GitHubState.from_json(Path(state_file).read_text(encoding="utf-8"))
    emulator = GitHubEmulator(state, Path(cert), Path(key), int(port))
    print(f"github emulator on {emulator.url}", flush=True)
    emulator._server.serve_forever()


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
