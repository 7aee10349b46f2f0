"""A local, stateful emulator of an Azure subscription's container registries.

Azure cannot run here, so the ACR collector is pointed at this emulator through
the settings a user of a sovereign cloud would set: `endpoint_url` (the SDK's
`base_url`), `authority_host` (azure-identity's authority, with instance
discovery off) and `ca_file` (the sandbox CA, passed as `connection_verify`).
Everything is HTTPS on 127.0.0.1 with free ports:

* one server answers Microsoft Entra ID (OpenID configuration and the v2.0
  token endpoint, client-credentials grant: MSAL's real flow) and Azure
  Resource Manager (`Microsoft.ContainerRegistry` API 2025-11-01 and the
  registry's diagnostic settings, 2021-05-01-preview);
* each registry has its own data-plane server (its `loginServer`): ACR's token
  exchange (`/oauth2/exchange`, `/oauth2/token`), `/acr/v1/_catalog` and
  `/acr/v1/{name}/_tags` (API 2021-07-01).

Every ARM and data-plane request must be a documented operation of the committed
description (sandbox/api-specs/azure-acr/, checked with sandbox/apispec.py) with
the documented api-version, and every response body is validated against the
schema documented for its status before it is sent; a violation is recorded in
`violations` and answered 500, so a contract break fails the test that caused it.
The Entra endpoints are OpenID Connect discovery / OAuth 2.0 token endpoints,
which the ARM description does not cover.

Faults (`Faults`): 403 on diagnostic settings or on the data plane, 429 with
Retry-After on the first ARM requests, 500 on every sub-resource of one
registry, and a registry listing whose nextLink never ends.
"""

from __future__ import annotations

import json
import re
import secrets
import ssl
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from sandbox.apispec import ApiSpec, SpecViolation
from sandbox.certs import server_certificate
from sandbox.process import StopsOnExit

SPECS = Path(__file__).parent / "api-specs" / "azure-acr"
ARM_API = "2025-11-01"
DIAGNOSTICS_API = "2021-05-01-preview"
DATA_API = "2021-07-01"
_CT = "../../../../../../common-types/resource-management/{}/types.json"
_PROVIDER = "/providers/Microsoft.ContainerRegistry/registries"
_DIAGNOSTICS = "/providers/Microsoft.Insights/diagnosticSettings"
MAX_BODY = 64 * 1024  # request bodies larger than this are refused


def load_specs() -> dict[str, ApiSpec]:
    """The three committed descriptions: ARM, diagnostic settings, data plane."""
    return {
        "arm": ApiSpec.load(
            SPECS / "2025-11-01" / "containerregistry.json",
            extra_documents={_CT.format("v6"): SPECS / "common-types/resource-management/v6/types.json"},
        ),
        "monitor": ApiSpec.load(
            SPECS / "monitor/2021-05-01-preview/diagnosticsSettings_API.json",
            extra_documents={_CT.format("v2"): SPECS / "common-types/resource-management/v2/types.json"},
        ),
        "data": ApiSpec.load(SPECS / "data-plane/2021-07-01/containerregistry.json"),
    }


# --------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------


@dataclass
class EmulatedRegistry:
    """One registry: its ARM properties (wire names), sub-resources and repositories.
    `repositories` maps a repository name to its tags as `_tags` returns them."""

    name: str
    resource_group: str
    location: str = "westeurope"
    sku: str = "Premium"
    properties: dict[str, Any] = field(default_factory=dict)
    replica_locations: list[str] = field(default_factory=list)
    tokens: list[dict[str, Any]] = field(default_factory=list)  # {"name", "scope_map", "passwords": [...]}
    scope_maps: dict[str, list[str]] = field(default_factory=dict)  # name -> actions
    diagnostic_settings: list[dict[str, Any]] = field(default_factory=list)  # ARM `properties` of each
    repositories: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    manifests: dict[str, dict[str, Any]] = field(default_factory=dict)  # "repo:reference" -> manifest JSON
    login_server: str = ""

    def resource_id(self, subscription: str) -> str:
        return f"/subscriptions/{subscription}/resourceGroups/{self.resource_group}{_PROVIDER}/{self.name}"


@dataclass
class Faults:
    forbidden_diagnostics: set[str] = field(default_factory=set)  # registries whose diagnostic settings answer 403
    forbidden_data_plane: set[str] = field(default_factory=set)  # registries whose token exchange answers 403
    throttle_first_arm: int = 0  # the first N ARM requests answer 429 with Retry-After
    throttle_first_data: int = 0  # the first N data-plane requests answer 429 with Retry-After
    retry_after_s: int = 1
    broken_registry: str | None = None  # every sub-resource of this registry answers 500
    endless_registry_list: bool = False  # Registries_List always has a nextLink (to itself)


@dataclass
class Identity:
    tenant_id: str = "72f988bf-86f1-41af-91ab-2d7cd011db47"
    client_id: str = "3b4c1f0e-5d6a-4e7b-8c9d-0a1b2c3d4e5f"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))


# --------------------------------------------------------------------------
# The emulator
# --------------------------------------------------------------------------


class AcrEmulator(StopsOnExit):
    """The HTTPS servers and their shared state; `start()` then `stop()` (or `with`)."""

    def __init__(
        self,
        workdir: Path,
        subscription_id: str,
        registries: list[EmulatedRegistry],
        *,
        faults: Faults | None = None,
        identity: Identity | None = None,
    ) -> None:
        self.workdir = workdir
        self.subscription_id = subscription_id
        self.registries = {r.name: r for r in registries}
        self.faults = faults or Faults()
        self.identity = identity or Identity()
        self.specs = load_specs()
        self.requests: list[tuple[str, str]] = []  # (server, "METHOD path?query") in arrival order
        self.violations: list[str] = []
        self.mutate_response: Callable[[str, Any], Any] | None = None  # (operation path, body) -> body, for tests
        self._aad_tokens: set[str] = set()
        self._refresh_tokens: dict[str, str] = {}  # ACR refresh token -> registry
        self._access_tokens: dict[str, tuple[str, str]] = {}  # ACR access token -> (registry, scope)
        self._lock = threading.Lock()
        self._arm_count = 0
        self._data_count = 0
        self._servers: list[ThreadingHTTPServer] = []
        self.base_url = ""
        self.ca_file = Path()

    # ---- lifecycle -----------------------------------------------------------

    def start(self) -> AcrEmulator:
        cert = server_certificate(self.workdir / "acr-tls", "acr-emulator")
        self.ca_file = cert.ca_file
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert.cert_file, cert.key_file)
        try:
            port = self._serve(context, "arm", None)
            self.base_url = f"https://127.0.0.1:{port}"
            for registry in self.registries.values():
                registry.login_server = f"127.0.0.1:{self._serve(context, 'data', registry.name)}"
        except BaseException:
            self.stop()
            raise
        return self

    def _serve(self, context: ssl.SSLContext, plane: str, registry: str | None) -> int:
        handler = type("Handler", (_Handler,), {"emulator": self, "plane": plane, "registry": registry})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        self._servers.append(server)
        return int(server.server_address[1])

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers.clear()

    # ---- what a client is told -------------------------------------------------

    def target(self, name: str, registries: list[str] | None = None, **extra: Any) -> dict[str, Any]:
        """An audit config entry for this subscription (the env vars are `env()`)."""
        entry: dict[str, Any] = {
            "name": name,
            "kind": "acr",
            "subscription_id": self.subscription_id,
            "endpoint_url": self.base_url,
            "authority_host": self.base_url,
            "tenant_id": self.identity.tenant_id,
            "client_id_env": "REGGUARD_ACR_CLIENT_ID",
            "client_secret_env": "REGGUARD_ACR_CLIENT_SECRET",
            "ca_file": str(self.ca_file),
        }
        if registries:
            entry["registries"] = registries
        return {**entry, **extra}

    def env(self) -> dict[str, str]:
        return {
            "REGGUARD_ACR_CLIENT_ID": self.identity.client_id,
            "REGGUARD_ACR_CLIENT_SECRET": self.identity.client_secret,
        }

    # ---- Microsoft Entra ID ------------------------------------------------------

    def openid_configuration(self, tenant: str) -> dict[str, Any]:
        issuer = f"{self.base_url}/{tenant}/v2.0"
        return {
            "issuer": issuer,
            "token_endpoint": f"{self.base_url}/{tenant}/oauth2/v2.0/token",
            "authorization_endpoint": f"{self.base_url}/{tenant}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{self.base_url}/{tenant}/oauth2/v2.0/devicecode",
            "jwks_uri": f"{self.base_url}/{tenant}/discovery/v2.0/keys",
            "response_types_supported": ["code", "id_token", "token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    def issue_aad_token(self, tenant: str, form: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        ident = self.identity
        if tenant != ident.tenant_id or form.get("grant_type") != "client_credentials":
            return 400, {"error": "invalid_request", "error_description": "unknown tenant or grant"}
        if form.get("client_id") != ident.client_id or form.get("client_secret") != ident.client_secret:
            return 401, {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret."}
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._aad_tokens.add(token)
        return 200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}

    def aad_token_valid(self, header: str | None) -> bool:
        token = (header or "").removeprefix("Bearer ").strip()
        with self._lock:
            return token in self._aad_tokens

    # ---- ARM -----------------------------------------------------------------------

    def arm_throttled(self) -> bool:
        with self._lock:
            self._arm_count += 1
            return self._arm_count <= self.faults.throttle_first_arm

    def data_throttled(self) -> bool:
        with self._lock:
            self._data_count += 1
            return self._data_count <= self.faults.throttle_first_data

    def arm_answer(self, path: str) -> tuple[int, Any]:
        """(status, body) of a documented, authorized ARM GET."""
        sub = f"/subscriptions/{self.subscription_id}"
        if path.endswith(_DIAGNOSTICS):
            registry = self._registry_of(path.removesuffix(_DIAGNOSTICS))
            if registry is None:
                return _arm_error(404, "ResourceNotFound", "registry not found")
            if registry.name in self.faults.forbidden_diagnostics:
                return _arm_error(
                    403,
                    "AuthorizationFailed",
                    "does not have authorization to perform action 'microsoft.insights/diagnosticSettings/read'",
                )
            return 200, {
                "value": [self._diagnostic(registry, i, s) for i, s in enumerate(registry.diagnostic_settings)]
            }
        if path in (sub + _PROVIDER,) or re.fullmatch(rf"{re.escape(sub)}/resourceGroups/[^/]+{_PROVIDER}", path):
            group = path.split("/")[4] if "/resourceGroups/" in path else None
            return 200, self._registry_list(path, group)
        match = re.fullmatch(rf"{re.escape(sub)}/resourceGroups/([^/]+){_PROVIDER}/([^/]+)(?:/([A-Za-z]+))?", path)
        if match is None:
            return _arm_error(404, "ResourceNotFound", "no such resource")
        registry = self.registries.get(match[2])
        if registry is None or registry.resource_group != match[1]:
            return _arm_error(404, "ResourceNotFound", f"registry {match[2]} not found")
        if match[3] is None:
            return 200, self.registry_resource(registry)
        if registry.name == self.faults.broken_registry:
            return _arm_error(500, "InternalServerError", "An internal error occurred.")
        return 200, {"value": self._sub_resources(registry, match[3])}

    def _registry_of(self, resource_id: str) -> EmulatedRegistry | None:
        return next(
            (r for r in self.registries.values() if r.resource_id(self.subscription_id).lower() == resource_id.lower()),
            None,
        )

    def _registry_list(self, path: str, group: str | None) -> dict[str, Any]:
        found = [self.registry_resource(r) for r in self.registries.values() if group in (None, r.resource_group)]
        body: dict[str, Any] = {"value": found}
        if self.faults.endless_registry_list:
            body["nextLink"] = f"{self.base_url}{path}?api-version={ARM_API}"
        return body

    def registry_resource(self, r: EmulatedRegistry) -> dict[str, Any]:
        props = {
            "loginServer": r.login_server,
            "creationDate": "2026-01-15T09:30:00.0000000Z",
            "provisioningState": "Succeeded",
            "dataEndpointEnabled": False,
            "dataEndpointHostNames": [],
            "privateEndpointConnections": [],
            "roleAssignmentMode": "LegacyRegistryPermissions",
            **r.properties,
        }
        return {
            "id": r.resource_id(self.subscription_id),
            "name": r.name,
            "type": "Microsoft.ContainerRegistry/registries",
            "location": r.location,
            "tags": {},
            "sku": {"name": r.sku, "tier": r.sku},
            "properties": props,
        }

    def _sub_resources(self, r: EmulatedRegistry, kind: str) -> list[dict[str, Any]]:
        base = r.resource_id(self.subscription_id)
        if kind == "replications":
            return [
                {
                    "id": f"{base}/replications/{loc}",
                    "name": loc,
                    "type": "Microsoft.ContainerRegistry/registries/replications",
                    "location": loc,
                    "tags": {},
                    "properties": {
                        "provisioningState": "Succeeded",
                        "regionEndpointEnabled": True,
                        "zoneRedundancy": "Enabled",
                    },
                }
                for loc in [r.location, *r.replica_locations]
            ]
        if kind == "scopeMaps":
            return [
                {
                    "id": f"{base}/scopeMaps/{name}",
                    "name": name,
                    "type": "Microsoft.ContainerRegistry/registries/scopeMaps",
                    "properties": {
                        "type": "UserDefined",
                        "actions": actions,
                        "creationDate": "2026-01-15T09:30:00Z",
                        "provisioningState": "Succeeded",
                    },
                }
                for name, actions in r.scope_maps.items()
            ]
        if kind == "tokens":
            return [self._token(r, base, t) for t in r.tokens]
        return []  # privateEndpointConnections: carried on the registry itself

    def _token(self, r: EmulatedRegistry, base: str, token: dict[str, Any]) -> dict[str, Any]:
        passwords = [
            {
                "name": p["name"],
                "creationTime": p["creationTime"],
                **({"expiry": p["expiry"]} if p.get("expiry") else {}),
            }
            for p in token.get("passwords", [])
        ]
        return {
            "id": f"{base}/tokens/{token['name']}",
            "name": token["name"],
            "type": "Microsoft.ContainerRegistry/registries/tokens",
            "properties": {
                "creationDate": token.get("creationDate", "2026-01-15T09:30:00Z"),
                "provisioningState": "Succeeded",
                "scopeMapId": f"{base}/scopeMaps/{token['scope_map']}",
                "status": token.get("status", "enabled"),
                "credentials": {"passwords": passwords},
            },
        }

    def _diagnostic(self, r: EmulatedRegistry, index: int, props: dict[str, Any]) -> dict[str, Any]:
        name = f"regguard-audit-{index}"
        return {
            "id": f"{r.resource_id(self.subscription_id)}{_DIAGNOSTICS}/{name}",
            "name": name,
            "type": "Microsoft.Insights/diagnosticSettings",
            "properties": props,
        }

    # ---- data plane ------------------------------------------------------------------

    def exchange(self, registry: str, form: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        if registry in self.faults.forbidden_data_plane:
            return 403, {"errors": [{"code": "DENIED", "message": "requested access to the resource is denied"}]}
        if form.get("grant_type") != "access_token" or not self.aad_token_valid(form.get("access_token")):
            return 401, {"errors": [{"code": "UNAUTHORIZED", "message": "invalid Entra token"}]}
        if form.get("service") != self.registries[registry].login_server:
            return 400, {"errors": [{"code": "BAD_REQUEST", "message": "service is not this registry"}]}
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._refresh_tokens[token] = registry
        return 200, {"refresh_token": token}

    def access_token(self, registry: str, form: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            owner = self._refresh_tokens.get(form.get("refresh_token", ""))
        if owner != registry or form.get("grant_type") != "refresh_token" or not form.get("scope"):
            return 401, {"errors": [{"code": "UNAUTHORIZED", "message": "invalid refresh token"}]}
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._access_tokens[token] = (registry, form["scope"])
        return 200, {"access_token": token}

    def authorized(self, registry: str, header: str | None, scope: str) -> bool:
        """The token was issued by this registry for `scope` (`type:name:action`) or for
        the same resource with a list of actions that includes it (`...:metadata_read,pull`)."""
        with self._lock:
            granted = self._access_tokens.get((header or "").removeprefix("Bearer ").strip())
        if granted is None or granted[0] != registry:
            return False
        wanted, _, action = scope.rpartition(":")
        resource, _, actions = granted[1].rpartition(":")
        return resource == wanted and action in actions.split(",")

    def catalog(self, registry: str, query: Mapping[str, str]) -> tuple[dict[str, Any], str | None]:
        names = sorted(self.registries[registry].repositories)
        return _page(names, query, "/acr/v1/_catalog", lambda n: n, "repositories", {})

    def tags(self, registry: str, repository: str, query: Mapping[str, str]) -> tuple[dict[str, Any], str | None]:
        reg = self.registries[registry]
        found = sorted(reg.repositories[repository], key=lambda t: str(t["name"]))
        extra = {"registry": reg.login_server, "imageName": repository}
        path = f"/acr/v1/{quote(repository, safe='')}/_tags"
        return _page(found, query, path, lambda t: str(t["name"]), "tags", extra)

    def record(self, plane: str, line: str) -> None:
        with self._lock:
            self.requests.append((plane, line))

    def violation(self, text: str) -> None:
        with self._lock:
            self.violations.append(text)


def _page(
    items: list[Any],
    query: Mapping[str, str],
    path: str,
    key: Callable[[Any], str],
    field_name: str,
    extra: dict[str, Any],
) -> tuple[dict[str, Any], str | None]:
    """One page after `last`, at most `n` items; the Link to the next page or None."""
    size = max(1, min(int(query.get("n", "100") or 100), 1000))
    last = query.get("last")
    remaining = [i for i in items if last is None or key(i) > last]
    page = remaining[:size]
    link = None
    if len(remaining) > size:
        link = f'<{path}?last={quote(key(page[-1]), safe="")}&n={size}>; rel="next"'
    return {**extra, field_name: page}, link


def _arm_error(status: int, code: str, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"code": code, "message": message}}


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    emulator: AcrEmulator
    plane: str  # "arm" (Entra + ARM) or "data" (one registry's login server)
    registry: str | None
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        """Quiet: the emulator records requests itself."""

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        self.emulator.record(self.plane, f"{method} {self.path}")
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._send(413, {"error": "request body too large"})
            return
        form = {k: v[-1] for k, v in parse_qs(self.rfile.read(length).decode("utf-8", "replace")).items()}
        try:
            if self.plane == "arm":
                self._arm(method, split.path, query, form)
            else:
                self._data(method, split.path, query, form)
        except SpecViolation as exc:
            self.emulator.violation(str(exc))
            self._send(500, {"error": {"code": "ContractViolation", "message": str(exc)[:300]}})

    # ---- Entra + ARM ----

    def _arm(self, method: str, path: str, query: dict[str, str], form: dict[str, str]) -> None:
        emulator = self.emulator
        aad = re.fullmatch(r"/([^/]+)/(v2\.0/\.well-known/openid-configuration|oauth2/v2\.0/token)", path)
        if aad and aad[2].startswith("v2.0") and method == "GET":
            self._send(200, emulator.openid_configuration(aad[1]))
            return
        if aad and method == "POST":
            self._send(*emulator.issue_aad_token(aad[1], form))
            return
        spec, version = (
            (emulator.specs["monitor"], DIAGNOSTICS_API) if _DIAGNOSTICS in path else (emulator.specs["arm"], ARM_API)
        )
        spec.check_request(method, path, query)
        if query.get("api-version") != version:
            raise SpecViolation(f"{method} {path}: api-version {query.get('api-version')!r}, documented {version}")
        if not emulator.aad_token_valid(self.headers.get("Authorization")):
            self._send(401, {"error": {"code": "InvalidAuthenticationToken", "message": "no valid token"}})
            return
        if emulator.arm_throttled():
            body = {"error": {"code": "TooManyRequests", "message": "throttled"}}
            self._send(429, body, {"Retry-After": str(emulator.faults.retry_after_s)})
            return
        status, body = emulator.arm_answer(path)
        self._checked(spec, method, path, status, body)

    # ---- data plane ----

    def _data(self, method: str, path: str, query: dict[str, str], form: dict[str, str]) -> None:
        emulator, registry = self.emulator, str(self.registry)
        spec = emulator.specs["data"]
        spec.check_request(method, path, query)
        if emulator.data_throttled():
            body = {"errors": [{"code": "TOOMANYREQUESTS", "message": "too many requests"}]}
            self._checked(spec, method, path, 429, body, {"Retry-After": str(emulator.faults.retry_after_s)})
            return
        if path == "/oauth2/exchange":
            self._checked(spec, method, path, *emulator.exchange(registry, form))
            return
        if path == "/oauth2/token":
            self._checked(spec, method, path, *emulator.access_token(registry, form))
            return
        tags = re.fullmatch(r"/acr/v1/([^/]+)/_tags", path)
        manifest = re.fullmatch(r"/v2/([^/]+)/manifests/([^/]+)", path)
        known = emulator.registries[registry]
        answer: Callable[[], tuple[Any, str | None]]
        if path == "/acr/v1/_catalog":
            scope, answer = "registry:catalog:*", lambda: emulator.catalog(registry, query)
        elif tags and (repository := unquote(tags[1])) in known.repositories:
            scope = f"repository:{repository}:metadata_read"
            answer = lambda: emulator.tags(registry, repository, query)  # noqa: E731 - one branch of three
        elif manifest and f"{unquote(manifest[1])}:{unquote(manifest[2])}" in known.manifests:
            scope = f"repository:{unquote(manifest[1])}:pull"
            answer = lambda: (known.manifests[f"{unquote(manifest[1])}:{unquote(manifest[2])}"], None)  # noqa: E731
        else:
            self._checked(
                spec, method, path, 404, {"errors": [{"code": "NAME_UNKNOWN", "message": "no such repository"}]}
            )
            return
        if not emulator.authorized(registry, self.headers.get("Authorization"), scope):
            self._checked(
                spec, method, path, 401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}
            )
            return
        body, link = answer()
        headers = {"Link": link} if link else {}
        if manifest:
            headers["Content-Type"] = str(body.get("mediaType", "application/vnd.oci.image.manifest.v1+json"))
        self._checked(spec, method, path, 200, body, headers)

    # ---- sending ----

    def _checked(
        self, spec: ApiSpec, method: str, path: str, status: int, body: Any, headers: dict[str, str] | None = None
    ) -> None:
        if self.emulator.mutate_response is not None:
            body = self.emulator.mutate_response(path, body)
        spec.check_response(method, path, status, body)
        self._send(status, body, headers)

    def _send(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(body, separators=(",", ":")).encode("utf-8")
        extra = dict(headers or {})
        self.send_response(status)
        self.send_header("Content-Type", extra.pop("Content-Type", "application/json; charset=utf-8"))
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        for key, value in extra.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)
