"""A small, stateful Harbor API v2.0 emulator in front of a real registry.

Harbor needs containers, so it cannot run here; this server stands in for it
the way the audit sees Harbor:

* `/api/v2.0/...` — only operations the committed upstream swagger
  (`sandbox/api-specs/harbor/swagger.yaml`) documents, only with documented
  query parameters, Basic-authenticated against the emulator's users
  (system admins see everything; other users get Harbor's 403 on system-admin
  calls). Every answer is checked against the swagger schema *before* it is
  sent (`sandbox.apispec`): an answer that does not validate is never sent —
  the client gets a 500 and the violation is recorded in `violations`.
* `/service/token` — Harbor's token service: Basic credentials in, a bearer
  token out.
* `/v2/...` — forwarded to a real `docker-registry` (Harbor's own registry is
  Distribution) once the bearer token checks out, so digests, manifests and
  cosign signatures are the real thing.

State is a `HarborState` (plain swagger-shaped dicts), editable while the
server runs (`PUT /projects/{id}` updates a project's metadata as Harbor
does). Run it in a thread (`start_emulator`) or as a process
(`python -m sandbox.harbor_emulator --state state.json ...`, what
`sandbox up` leaves running).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import re
import secrets
import ssl
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from sandbox.apispec import ApiSpec, SpecViolation

SWAGGER = Path(__file__).parent / "api-specs" / "harbor" / "swagger.yaml"
API = "/api/v2.0"
HOST = "127.0.0.1"
UNDOCUMENTED_REFUSALS = frozenset({401, 403})
"""Harbor refuses some calls with a 401/403 its swagger leaves out (listing robots
without the system permission answers 403; GET /robots documents 400/404/500 only).
The emulator sends those as Harbor does, with a body checked against `Errors`."""
_SPEC_LOCK = threading.Lock()
_SPEC: list[ApiSpec] = []


def harbor_spec() -> ApiSpec:
    """The committed swagger, loaded once per process (half a second)."""
    with _SPEC_LOCK:
        if not _SPEC:
            _SPEC.append(ApiSpec.load(SWAGGER))
        return _SPEC[0]


def harbor_time(at: datetime) -> str:
    """Harbor's timestamp format (RFC 3339, UTC, milliseconds)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


@dataclass
class HarborUser:
    password: str = field(repr=False)
    sysadmin: bool = False


@dataclass
class HarborState:
    """Everything the emulator serves, as the swagger shapes it."""

    users: dict[str, HarborUser] = field(default_factory=dict)
    systeminfo: dict[str, Any] = field(default_factory=dict)
    configurations: dict[str, Any] = field(default_factory=dict)
    projects: list[dict[str, Any]] = field(default_factory=list)
    repositories: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # project -> repositories
    artifacts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # "project/repo" -> artifacts
    immutable_rules: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # project id -> rules
    retentions: dict[int, dict[str, Any]] = field(default_factory=dict)
    robots: list[dict[str, Any]] = field(default_factory=list)
    scanners: list[dict[str, Any]] = field(default_factory=list)
    replication_policies: list[dict[str, Any]] = field(default_factory=list)
    audit_logs: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> HarborState:
        raw = json.loads(text)
        raw["users"] = {name: HarborUser(**u) for name, u in raw["users"].items()}
        raw["immutable_rules"] = {int(k): v for k, v in raw["immutable_rules"].items()}
        raw["retentions"] = {int(k): v for k, v in raw["retentions"].items()}
        return cls(**raw)

    def project(self, name_or_id: str) -> dict[str, Any] | None:
        return next((p for p in self.projects if p["name"] == name_or_id or str(p["project_id"]) == name_or_id), None)


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Route = Callable[["_Call"], Answer]


@dataclass(frozen=True)
class _Call:
    method: str
    path: str
    query: dict[str, str]
    user: str | None
    sysadmin: bool
    params: tuple[str, ...]  # path parameters, in order
    body: bytes = b""


class HarborEmulator:
    """The emulator's logic, independent of the HTTP server that carries it."""

    def __init__(self, state: HarborState, registry_url: str | None = None) -> None:
        self.state = state
        self.registry_url = registry_url
        self.spec = harbor_spec()
        self.violations: list[str] = []
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # (method, path, query) of API calls
        self._tokens: set[str] = set()
        self._valid: set[tuple[str, int, str]] = set()
        self._lock = threading.Lock()
        self._routes: list[tuple[str, re.Pattern[str], Route, bool]] = [
            ("GET", re.compile(r"/systeminfo"), self._systeminfo, False),
            ("GET", re.compile(r"/configurations"), self._configurations, True),
            ("GET", re.compile(r"/users/current"), self._current_user, False),
            ("GET", re.compile(r"/projects"), self._projects, False),
            ("PUT", re.compile(r"/projects/([^/]+)"), self._update_project, True),
            ("GET", re.compile(r"/projects/([^/]+)/immutabletagrules"), self._immutable_rules, False),
            ("GET", re.compile(r"/projects/([^/]+)/repositories"), self._repositories, False),
            ("GET", re.compile(r"/projects/([^/]+)/repositories/([^/]+)/artifacts"), self._artifacts, False),
            ("GET", re.compile(r"/retentions/(\d+)"), self._retention, False),
            ("GET", re.compile(r"/robots"), self._robots, True),
            ("GET", re.compile(r"/scanners"), self._scanners, True),
            ("GET", re.compile(r"/replication/policies"), self._replication, True),
            ("GET", re.compile(r"/audit-logs"), self._audit_logs, False),
        ]

    # ---- the API ------------------------------------------------------------

    def api(self, method: str, raw_path: str, query: dict[str, str], auth: str | None, body: bytes = b"") -> Answer:
        """One `/api/v2.0` request: checked against the swagger, routed, and
        its answer checked before it may leave."""
        path = raw_path[len(API) :]
        with self._lock:
            self.requests.append((method, raw_path, dict(query)))
        try:
            self.spec.check_request(method, raw_path, query)
        except SpecViolation as exc:
            self._violation(str(exc))
            return Answer(404, _errors("NOT_FOUND", "undocumented operation"))
        user = self._user(auth)
        if user is None:
            return self._checked(method, raw_path, self._error(method, raw_path, 401, "UNAUTHORIZED"))
        for route_method, pattern, route, admin_only in self._routes:
            match = pattern.fullmatch(path)
            if route_method != method or match is None:
                continue
            sysadmin = self.state.users[user].sysadmin
            if admin_only and not sysadmin:
                return self._checked(method, raw_path, self._error(method, raw_path, 403, "FORBIDDEN"))
            params = tuple(unquote(unquote(g)) for g in match.groups())
            answer = route(_Call(method, path, query, user, sysadmin, params, body))
            return self._checked(method, raw_path, answer)
        return self._checked(method, raw_path, Answer(404, _errors("NOT_FOUND", "not found")))

    def _error(self, method: str, raw_path: str, status: int, code: str) -> Answer:
        """Harbor's error answer: the `Errors` body, or none where the swagger
        documents this status without one (`/configurations`)."""
        operation = self.spec.operation(method, raw_path)
        documented = operation.definition.get("responses", {}).get(str(status)) if operation else None
        if isinstance(documented, dict) and "$ref" in documented:
            documented = self.spec.document["responses"][documented["$ref"].rsplit("/", 1)[1]]
        if isinstance(documented, dict) and "schema" not in documented:
            return Answer(status)
        return Answer(status, _errors(code, code.lower()))

    def _checked(self, method: str, raw_path: str, answer: Answer) -> Answer:
        """`answer` if the swagger allows it, else a 500 (and a recorded violation).
        A body already found valid for the same operation and status is not
        checked again (the same bytes get the same verdict; the bench's second
        audit then measures the collector, not jsonschema)."""
        operation = self.spec.operation(method, raw_path)
        key = (operation.pointer if operation else raw_path, answer.status, _fingerprint(answer.body))
        if key in self._valid:
            return answer
        try:
            if answer.status in UNDOCUMENTED_REFUSALS and self._undocumented(method, raw_path, answer.status):
                self.spec.check_schema("Errors", answer.body)
                return answer
            self.spec.check_response(method, raw_path, answer.status, answer.body)
        except SpecViolation as exc:
            self._violation(str(exc))
            return Answer(500, _errors("INTERNAL_SERVER_ERROR", "the emulator refused an invalid answer"))
        with self._lock:
            self._valid.add(key)
        return answer

    def _undocumented(self, method: str, raw_path: str, status: int) -> bool:
        operation = self.spec.operation(method, raw_path)
        return operation is not None and str(status) not in operation.definition.get("responses", {})

    def _violation(self, text: str) -> None:
        with self._lock:
            self.violations.append(text)

    def _user(self, auth: str | None) -> str | None:
        if not auth or not auth.startswith("Basic "):
            return None
        try:
            name, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        user = self.state.users.get(name)
        return name if user is not None and secrets.compare_digest(user.password, password) else None

    # ---- token service and /v2/ ---------------------------------------------

    def token(self, auth: str | None) -> Answer:
        if self._user(auth) is None:
            return Answer(401, {"errors": [{"code": "UNAUTHORIZED"}]})
        value = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens.add(value)
        return Answer(200, {"token": value, "access_token": value, "expires_in": 1800})

    def bearer_ok(self, auth: str | None) -> bool:
        return bool(auth and auth.startswith("Bearer ") and auth[7:] in self._tokens)

    # ---- routes -------------------------------------------------------------

    def _systeminfo(self, call: _Call) -> Answer:
        return Answer(200, {**self.state.systeminfo, "current_time": harbor_time(datetime.now(UTC))})

    def _configurations(self, call: _Call) -> Answer:
        return Answer(200, self.state.configurations)

    def _current_user(self, call: _Call) -> Answer:
        return Answer(200, {"username": call.user, "sysadmin_flag": call.sysadmin})

    def _projects(self, call: _Call) -> Answer:
        return _page(call, self.state.projects)

    def _update_project(self, call: _Call) -> Answer:
        project = self.state.project(call.params[0])
        if project is None:
            return Answer(404, _errors("NOT_FOUND", "project not found"))
        update = json.loads(call.body or b"{}")
        project.setdefault("metadata", {}).update(update.get("metadata") or {})
        return Answer(200)

    def _immutable_rules(self, call: _Call) -> Answer:
        project = self.state.project(call.params[0])
        if project is None:
            return Answer(403, _errors("FORBIDDEN", "forbidden"))
        return _page(call, self.state.immutable_rules.get(project["project_id"], []))

    def _repositories(self, call: _Call) -> Answer:
        if self.state.project(call.params[0]) is None:
            return Answer(404, _errors("NOT_FOUND", "project not found"))
        return _page(call, self.state.repositories.get(call.params[0], []))

    def _artifacts(self, call: _Call) -> Answer:
        name = f"{call.params[0]}/{call.params[1]}"
        if name not in self.state.artifacts:
            return Answer(404, _errors("NOT_FOUND", "repository not found"))
        wanted = self.state.artifacts[name]
        if call.query.get("with_accessory") != "true":
            wanted = [{k: v for k, v in a.items() if k != "accessories"} for a in wanted]
        return _page(call, wanted)

    def _retention(self, call: _Call) -> Answer:
        policy = self.state.retentions.get(int(call.params[0]))
        if policy is None:
            return Answer(403, _errors("FORBIDDEN", "forbidden"))  # Harbor answers 403 for a policy you cannot see
        return Answer(200, policy)

    def _robots(self, call: _Call) -> Answer:
        return _page(call, self.state.robots)

    def _scanners(self, call: _Call) -> Answer:
        return _page(call, self.state.scanners)

    def _replication(self, call: _Call) -> Answer:
        return _page(call, self.state.replication_policies)

    def _audit_logs(self, call: _Call) -> Answer:
        return _page(call, [log for log in self.state.audit_logs if _matches_query(log, call.query.get("q", ""))])


def _fingerprint(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _errors(code: str, message: str) -> dict[str, Any]:
    return {"errors": [{"code": code, "message": message}]}


def _page(call: _Call, items: list[dict[str, Any]]) -> Answer:
    """Harbor's pagination: `page`/`page_size`, `X-Total-Count`, `Link`."""
    try:
        page = max(1, int(call.query.get("page", "1")))
        size = max(1, min(100, int(call.query.get("page_size", "10"))))
    except ValueError:
        return Answer(400, _errors("BAD_REQUEST", "invalid page"))
    chunk = items[(page - 1) * size : page * size]
    headers = {"X-Total-Count": str(len(items))}
    if page * size < len(items):
        following = urlencode({**call.query, "page": page + 1, "page_size": size})
        headers["Link"] = f'<{API}{call.path}?{following}>; rel="next"'
    return Answer(200, chunk, headers)


def _matches_query(item: dict[str, Any], q: str) -> bool:
    """Harbor's `q`: `k=v` exact, `k=[min~max]` range, comma separated."""
    for clause in filter(None, q.split(",")):
        key, _, value = clause.partition("=")
        have = str(item.get(key, ""))
        if value.startswith("[") and value.endswith("]"):
            low, _, high = value[1:-1].partition("~")
            stamp = have.replace("T", " ")[:19]
            if not low.strip() <= stamp <= high.strip():
                return False
        elif have != value:
            return False
    return True


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stall

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        return

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._handle()

    def do_HEAD(self) -> None:  # noqa: N802
        self._handle()

    def do_PUT(self) -> None:  # noqa: N802
        self._handle()

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        raw_path = parts.path
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        auth = self.headers.get("Authorization")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) if self.command == "PUT" else b""
        emulator = self.server.emulator
        if raw_path.startswith(API + "/"):
            self._send(emulator.api(self.command, raw_path, query, auth, body))
        elif raw_path == "/service/token":
            self._send(emulator.token(auth))
        elif raw_path.startswith("/v2/"):
            self._registry(emulator, auth)
        else:
            self._send(Answer(404, {"errors": [{"code": "NOT_FOUND"}]}))

    def _registry(self, emulator: HarborEmulator, auth: str | None) -> None:
        if not emulator.bearer_ok(auth) or emulator.registry_url is None:
            realm = f"{self.server.base_url}/service/token"
            challenge = f'Bearer realm="{realm}",service="harbor-registry"'
            answer = Answer(401, {"errors": [{"code": "UNAUTHORIZED"}]}, {"WWW-Authenticate": challenge})
            self._send(answer)
            return
        self._forward(emulator.registry_url)

    def _forward(self, registry_url: str) -> None:
        target = urlsplit(registry_url)
        conn = http.client.HTTPConnection(target.hostname or HOST, target.port or 80, timeout=10)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() in ("accept", "range")}
            conn.request(self.command, self.path, headers=headers)
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        self.send_response(response.status)
        for key in ("Content-Type", "Docker-Content-Digest", "Docker-Distribution-Api-Version", "Link"):
            value = response.getheader(key)
            if value:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _send(self, answer: Answer) -> None:
        data = b"" if answer.body is None else json.dumps(answer.body).encode()
        self.send_response(answer.status)
        for key, value in answer.headers.items():
            self.send_header(key, value)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # 16 clients connecting at once overflow the default backlog of 5 (1 s SYN retry)

    def __init__(self, emulator: HarborEmulator, port: int, tls: ssl.SSLContext | None) -> None:
        super().__init__((HOST, port), _Handler)
        self.emulator = emulator
        self.tls = tls
        scheme = "https" if tls else "http"
        self.base_url = f"{scheme}://{HOST}:{self.server_address[1]}"
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is not None:
            try:
                request.settimeout(10)
                request.do_handshake()
            except (OSError, ssl.SSLError):
                return
        super().finish_request(request, client_address)


@dataclass
class RunningEmulator:
    """An emulator serving from a thread of this process."""

    emulator: HarborEmulator
    url: str
    _server: _Server = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def tls_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert_file), str(key_file))
    return context


def start_emulator(
    state: HarborState, *, registry_url: str | None = None, tls: ssl.SSLContext | None = None, port: int = 0
) -> RunningEmulator:
    """Serve `state` on 127.0.0.1 (a free port unless given) from a daemon thread."""
    emulator = HarborEmulator(state, registry_url)
    server = _Server(emulator, port, tls)
    thread = threading.Thread(target=server.serve_forever, name="harbor-emulator", daemon=True)
    thread.start()
    return RunningEmulator(emulator, server.base_url, server, thread)


def main(argv: list[str] | None = None) -> None:
    """`python -m sandbox.harbor_emulator`: serve a state file until terminated."""
    parser = argparse.ArgumentParser(description="Harbor API v2.0 emulator")
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--registry", default=None, help="http URL of the registry behind /v2/")
    parser.add_argument("--cert", type=Path)
    parser.add_argument("--key", type=Path)
    args = parser.parse_args(argv)
    state = HarborState.from_json(args.state.read_text(encoding="utf-8"))
    tls = tls_context(args.cert, args.key) if args.cert and args.key else None
    server = _Server(HarborEmulator(state, args.registry), args.port, tls)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
