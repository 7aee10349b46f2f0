"""ghcr.io answers `/v2/` with a Bearer challenge whose realm is its own `/token`;
the collector exchanges the same GitHub token there (Basic owner:token) and reads
signatures with the registry token it gets back. A small HTTPS registry on
127.0.0.1 plays ghcr.io's part (docker-registry 2.8 cannot be a token realm)."""

from __future__ import annotations

import base64
import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from audits.collectors.base import CollectOptions
from audits.collectors.ghcr import collect
from audits.model import REPOSITORIES, FactState
from audits.targets import GhcrTarget
from sandbox.certs import server_certificate
from sandbox.github_emulator import GitHubEmulator, GitHubState, Owner, Package, Token, Version
from sandbox.signing import generate_key_pair, signature_for

pytestmark = pytest.mark.integration

GITHUB_TOKEN = "github_pat_exchange" + "7" * 20
REGISTRY_TOKEN = "registry-token-for-pull"
DIGEST = "sha256:" + "c" * 64
REPO = "acme/api"


class TokenRegistry:
    """/v2/ challenges; /token swaps Basic acme:<GitHub token> for a registry token;
    the signature manifest is served only with that registry token."""

    def __init__(self, cert: Path, key: Path, manifest: dict[str, bytes]) -> None:
        self.seen_basic: list[str] = []
        registry = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                origin = f"https://{self.headers['Host']}"
                auth = self.headers.get("Authorization", "")
                if self.path.startswith("/token"):
                    registry.seen_basic.append(auth)
                    ok = auth == "Basic " + base64.b64encode(f"acme:{GITHUB_TOKEN}".encode()).decode()
                    self.reply(200 if ok else 401, json.dumps({"token": REGISTRY_TOKEN}).encode() if ok else b"{}")
                elif self.path in manifest and auth == f"Bearer {REGISTRY_TOKEN}":
                    self.reply(200, manifest[self.path], "application/vnd.oci.image.manifest.v1+json")
                else:
                    challenge = f'Bearer realm="{origin}/token",service="ghcr.io"'
                    self.reply(401, b'{"errors":[]}', headers={"WWW-Authenticate": challenge})

            def reply(self, status: int, body: bytes, media: str = "application/json",
                      headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", media)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(5)
        self.server.server_close()


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[GitHubEmulator, TokenRegistry, Path, Path]]:
    cert = server_certificate(tmp_path / "certs", "ghcr")
    keys = generate_key_pair(tmp_path / "keys", "release")
    manifests: dict[str, bytes] = {}
    registry = TokenRegistry(cert.cert_file, cert.key_file, manifests)
    tag, manifest = signature_for(registry.address, REPO, DIGEST, keys.private_key)
    manifests[f"/v2/{REPO}/manifests/{tag}"] = manifest.data
    owner = Owner("acme", "org")
    when = "2026-05-01T00:00:00Z"
    owner.packages["api"] = Package("api", "private", REPO, [Version(1, DIGEST, ["v1.0.0"], when),
                                                             Version(2, manifest.digest, [tag], when)])
    state = GitHubState(owners={"acme": owner}, tokens={GITHUB_TOKEN: Token("fine-grained", (), None, True)})
    emulator = GitHubEmulator(state, cert.cert_file, cert.key_file).start()
    try:
        yield emulator, registry, cert.ca_file, keys.public_key
    finally:
        emulator.stop()
        registry.stop()


def test_the_github_token_is_exchanged_at_the_registrys_own_realm(
    servers: tuple[GitHubEmulator, TokenRegistry, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator, registry, ca_file, public_key = servers
    monkeypatch.setenv("GH_TOKEN_X", GITHUB_TOKEN)
    target = GhcrTarget(name="x", kind="ghcr", owner="acme", token_env="GH_TOKEN_X", api_url=emulator.url,
                        registry_url=f"https://{registry.address}", ca_file=ca_file)
    facts = collect(target, CollectOptions(trusted_keys=(str(public_key),)))
    fact = facts.facts[REPOSITORIES]
    assert fact.state is FactState.OK, fact.detail
    ((tag,),) = [r.tags for r in fact.value or ()]
    assert tag.signatures and tag.signatures[0].verified is True, tag
    assert registry.seen_basic, "the registry's token realm was asked"
