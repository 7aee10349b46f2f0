"""A local, stateful emulator of Google Artifact Registry's REST API (v1) for one project.

Nothing Google runs is reachable here, so the GAR collector is tested against
this server through the SDK's own endpoint setting (`client_options.api_endpoint`)
and Google's real service-account flow: the emulator writes a service-account key
file whose `token_uri` is its own `/token`; google-auth signs a JWT with that key
and exchanges it there (the emulator checks the RS256 signature and audience), and
every API call must carry a token the emulator issued.

Contract: every request must be a documented method of the committed discovery
document (`sandbox/api-specs/gcp-artifactregistry/artifactregistry.v1.json`) with
documented query parameters, and every success body is validated against the
method's response schema before it is sent (`sandbox.discovery`); a violation is
answered 500 with the reason and kept in `violations`, so a test sees it.

One method is not Artifact Registry's: Cloud Resource Manager v1
`projects.getIamPolicy` (`POST v1/projects/{p}:getIamPolicy`), where the project's
Data Access audit log config lives. Its discovery document is not committed (too
large to bring here); its answer is validated against the shared google.iam.v1
`Policy` schema of the Artifact Registry document (which has no `auditConfigs`
property, so those are checked by shape only).

Faults (`Faults`): a 403 on repository IAM policies (and on the project policy),
429 with `Retry-After` for the first N calls, 500 on one repository's image
listing, a repository listing whose page token never ends.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import jwt

from sandbox.apispec import SpecViolation
from sandbox.discovery import DiscoveryDocument, Method

SPEC_PATH = Path(__file__).parent / "api-specs" / "gcp-artifactregistry" / "artifactregistry.v1.json"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# The audience Google's token endpoint requires of a service-account assertion
# (google-auth writes it whatever `token_uri` says).
ASSERTION_AUDIENCE = "https://oauth2.googleapis.com/token"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
SELF_SIGNED_AUDIENCES = ["https://artifactregistry.googleapis.com/", "https://cloudresourcemanager.googleapis.com/"]
CRM_GET_IAM_POLICY = "cloudresourcemanager.projects.getIamPolicy"
MAX_BODY = 1 << 20


@dataclass
class Faults:
    """What the emulator gets wrong on purpose. Counters count down."""

    iam_forbidden: bool = False
    project_policy_forbidden: bool = False
    throttle_first: int = 0  # answer this many API calls 429
    retry_after_s: int = 1
    failing_repositories: set[str] = field(default_factory=set)  # repository ids whose image listing is 500
    endless_repository_pages: bool = False


@dataclass
class EmulatedRepository:
    location: str
    repository_id: str
    settings: dict[str, Any]  # the Repository body without `name`
    bindings: list[dict[str, Any]] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)  # DockerImage bodies without `name`/`uri`


class GarEmulator:
    """`start()` serves on 127.0.0.1 at a free port; `stop()` ends it."""

    def __init__(self, project: str, workdir: Path, *, latency_s: float = 0.0) -> None:
        self.project = project
        self.workdir = workdir
        self.spec = DiscoveryDocument.load(SPEC_PATH)
        self.faults = Faults()
        self.repositories: dict[tuple[str, str], EmulatedRepository] = {}
        self.legacy_redirection_state = "REDIRECTION_FROM_GCR_IO_ENABLED"
        self.audit_configs: list[dict[str, Any]] = []
        self.calls: Counter[str] = Counter()
        self.violations: list[str] = []
        self.latency_s = latency_s
        self._tokens: set[str] = set()
        self._lock = threading.Lock()
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- state ---------------------------------------------------------------

    def add_repository(self, repository: EmulatedRepository) -> None:
        self.repositories[(repository.location, repository.repository_id)] = repository

    @property
    def locations(self) -> list[str]:
        return sorted({loc for loc, _ in self.repositories})

    # ---- lifecycle -------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    def start(self) -> GarEmulator:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="gar-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> GarEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def write_key_file(self, path: Path | None = None, token_uri: str | None = None) -> Path:
        """A service-account key file as the IAM console writes one, with the
        emulator's token endpoint as `token_uri` (what ADC reads)."""
        path = path or self.workdir / "gar-auditor-key.json"
        pem = self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        key = {
            "type": "service_account",
            "project_id": self.project,
            "private_key_id": "emulated-key-1",
            "private_key": pem,
            "client_email": self.client_email,
            "client_id": "100000000000000000001",
            "token_uri": token_uri or self.token_uri,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(key), encoding="utf-8")
        path.chmod(0o600)
        return path

    # ---- token endpoint ----------------------------------------------------------

    def exchange(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        if form.get("grant_type") != [JWT_BEARER] or len(form.get("assertion", [])) != 1:
            return 400, {"error": "unsupported_grant_type"}
        try:
            jwt.decode(form["assertion"][0], certs=self._public_pem(), audience=ASSERTION_AUDIENCE)
        except ValueError as exc:
            return 400, {"error": "invalid_grant", "error_description": str(exc)[:200]}
        token = "ya29.emulated-" + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens.add(token)
        return 200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}

    def authorized(self, header: str | None) -> bool:
        """An access token this emulator issued, or — what the GAPIC clients send
        for a service account — a JWT the account signed itself for the API's
        audience (Google's "self-signed JWT" access)."""
        scheme, _, token = (header or "").partition(" ")
        if scheme != "Bearer":
            return False
        with self._lock:
            if token in self._tokens:
                return True
        try:
            claims = jwt.decode(token, certs=self._public_pem())  # signature and expiry
        except ValueError:
            return False
        scoped = CLOUD_PLATFORM in str(claims.get("scope", "")).split() or claims.get("aud") in SELF_SIGNED_AUDIENCES
        return bool(claims.get("iss") == self.client_email and scoped)

    @property
    def client_email(self) -> str:
        return f"regguard-auditor@{self.project}.iam.gserviceaccount.com"

    def _public_pem(self) -> str:
        public = self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return public.decode()

    # ---- API -----------------------------------------------------------------------

    def answer(self, method: Method, path: str, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        """(status, body, extra headers) for one documented call."""
        with self._lock:
            self.calls[method.id] += 1
            if self.faults.throttle_first > 0:
                self.faults.throttle_first -= 1
                headers = {"Retry-After": str(self.faults.retry_after_s)}
                return 429, _error(429, "RESOURCE_EXHAUSTED", "Quota exceeded"), headers
        handler = _HANDLERS.get(method.id.rsplit(".", 2)[-2] + "." + method.id.rsplit(".", 1)[-1])
        if handler is None:
            return 501, _error(501, "UNIMPLEMENTED", f"{method.id} is not emulated"), {}
        status, body = handler(self, _path_ids(path), query)
        return status, body, {}

    def repository_body(self, repo: EmulatedRepository) -> dict[str, Any]:
        return {"name": self._repository_name(repo), **repo.settings}

    def _repository_name(self, repo: EmulatedRepository) -> str:
        return f"projects/{self.project}/locations/{repo.location}/repositories/{repo.repository_id}"

    def image_bodies(self, repo: EmulatedRepository) -> list[dict[str, Any]]:
        host = f"{repo.location}-docker.pkg.dev/{self.project}/{repo.repository_id}"
        out = []
        for image in repo.images:
            package, digest = image["package"], image["digest"]
            body = {k: v for k, v in image.items() if k not in ("package", "digest")}
            out.append(
                {
                    "name": f"{self._repository_name(repo)}/dockerImages/{package}@{digest}",
                    "uri": f"{host}/{package}@{digest}",
                    **body,
                }
            )
        return out


# ---- method handlers (by `<resource>.<method>`) ----------------------------------


def _locations_list(emu: GarEmulator, ids: dict[str, str], query: dict[str, str]) -> tuple[int, Any]:
    locations = [
        {"name": f"projects/{emu.project}/locations/{loc}", "locationId": loc} for loc in emu.locations
    ]
    return 200, {"locations": locations}


def _project_settings(emu: GarEmulator, ids: dict[str, str], query: dict[str, str]) -> tuple[int, Any]:
    return 200, {
        "name": f"projects/{emu.project}/projectSettings",
        "legacyRedirectionState": emu.legacy_redirection_state,
    }


def _repositories_list(emu: GarEmulator, ids: dict[str, str], query: dict[str, str]) -> tuple[int, Any]:
    repos = sorted(
        (r for (loc, _), r in emu.repositories.items() if loc == ids["locations"]), key=lambda r: r.repository_id
    )
    size = max(1, min(int(query.get("pageSize", "100") or 100), 1000))
    start = int(query.get("pageToken", "0") or 0)
    page = repos[start : start + size]
    body: dict[str, Any] = {"repositories": [emu.repository_body(r) for r in page]}
    if emu.faults.endless_repository_pages:
        body["nextPageToken"] = str(start + size)  # a new token every time, never the end
        body["repositories"] = body["repositories"][:1] or []
    elif start + size < len(repos):
        body["nextPageToken"] = str(start + size)
    return 200, body


def _repository(emu: GarEmulator, ids: dict[str, str]) -> EmulatedRepository | None:
    return emu.repositories.get((ids["locations"], ids["repositories"]))


def _get_iam_policy(emu: GarEmulator, ids: dict[str, str], query: dict[str, str]) -> tuple[int, Any]:
    repo = _repository(emu, ids)
    if repo is None:
        return 404, _error(404, "NOT_FOUND", "repository not found")
    if emu.faults.iam_forbidden:
        message = "Permission 'artifactregistry.repositories.getIamPolicy' denied on resource"
        return 403, _error(403, "PERMISSION_DENIED", message)
    return 200, {"version": 1, "etag": "BwWWja0YfJA=", "bindings": repo.bindings}


def _docker_images_list(emu: GarEmulator, ids: dict[str, str], query: dict[str, str]) -> tuple[int, Any]:
    repo = _repository(emu, ids)
    if repo is None:
        return 404, _error(404, "NOT_FOUND", "repository not found")
    if repo.repository_id in emu.faults.failing_repositories:
        return 500, _error(500, "INTERNAL", "Internal error encountered.")
    images = emu.image_bodies(repo)
    size = max(1, min(int(query.get("pageSize", "100") or 100), 1000))
    start = int(query.get("pageToken", "0") or 0)
    body: dict[str, Any] = {"dockerImages": images[start : start + size]}
    if start + size < len(images):
        body["nextPageToken"] = str(start + size)
    return 200, body


def _project_iam_policy(emu: GarEmulator, ids: dict[str, str], query: dict[str, str]) -> tuple[int, Any]:
    if emu.faults.project_policy_forbidden:
        message = "Permission 'resourcemanager.projects.getIamPolicy' denied on resource"
        return 403, _error(403, "PERMISSION_DENIED", message)
    return 200, {"version": 1, "etag": "BwWWja0YfJA=", "bindings": [], "auditConfigs": emu.audit_configs}


_HANDLERS = {
    "locations.list": _locations_list,
    "projects.getProjectSettings": _project_settings,
    "repositories.list": _repositories_list,
    "repositories.getIamPolicy": _get_iam_policy,
    "dockerImages.list": _docker_images_list,
    "projects.getIamPolicy": _project_iam_policy,
}

_CRM_METHOD = Method(
    CRM_GET_IAM_POLICY,
    "POST",
    "v1/projects/{projectsId}:getIamPolicy",
    {"response": {"$ref": "Policy"}, "parameters": {}},
)


def _path_ids(path: str) -> dict[str, str]:
    """`/v1/projects/p/locations/l/repositories/r:getIamPolicy` -> {projects: p, locations: l, repositories: r}."""
    parts = unquote(path).strip("/").split("/")[1:]
    ids = {}
    for i in range(0, len(parts) - 1, 2):
        ids[parts[i]] = parts[i + 1].split(":", 1)[0]
    return ids


def _error(code: int, status: str, message: str) -> dict[str, Any]:
    """Google's JSON error envelope (google.rpc.Status as the REST APIs send it)."""
    return {"error": {"code": code, "message": message, "status": status}}


def _handler_for(emu: GarEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PATCH(self) -> None:
            self._serve("PATCH")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def _serve(self, http_method: str) -> None:
            if emu.latency_s:
                threading.Event().wait(emu.latency_s)
            split = urlsplit(self.path)
            body = self._body()
            if split.path == "/token" and http_method == "POST":
                status, answer = emu.exchange(parse_qs(body.decode("utf-8", "replace")))
                return self._send(status, answer)
            query = {k: v[-1] for k, v in parse_qs(split.query).items()}
            method = self._method(http_method, split.path, query)
            if method is None:
                return None
            if not emu.authorized(self.headers.get("Authorization")):
                refused = _error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
                return self._send(401, refused)
            status, answer, headers = emu.answer(method, split.path, query)
            if status == 200:
                try:
                    emu.spec.check_response(method, answer)
                except SpecViolation as exc:
                    emu.violations.append(str(exc))
                    return self._send(500, _error(500, "INTERNAL", f"emulator contract violation: {exc}"))
            return self._send(status, answer, headers)

        def _method(self, http_method: str, path: str, query: dict[str, str]) -> Method | None:
            if http_method == "POST" and _route_crm(path):
                return _CRM_METHOD
            try:
                return emu.spec.check_request(http_method, path, query)
            except SpecViolation as exc:
                emu.violations.append(str(exc))
                self._send(404, _error(404, "NOT_FOUND", str(exc)))
                return None

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(min(length, MAX_BODY)) if length else b""

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _route_crm(path: str) -> bool:
    parts = path.strip("/").split("/")
    return len(parts) == 3 and parts[0] == "v1" and parts[1] == "projects" and parts[2].endswith(":getIamPolicy")
