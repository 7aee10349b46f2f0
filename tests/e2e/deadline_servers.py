"""Small registries on 127.0.0.1 for the deadline tests: one that answers like a
Distribution registry (with a catalog as large as asked), and one that drips its
answers one byte a second, which no per-read timeout ever trips."""

from __future__ import annotations

import bisect
import hashlib
import json
import socket
import ssl
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from tests.e2e.fake_servers import _Handler

MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + "0" * 64, "size": 2},
        "layers": [],
    }
).encode()
MANIFEST_DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
TAG = "1.0.0"


class _RegistryHandler(_Handler):
    """/v2/, a paginated `_catalog`, one tag per repository, its manifest; 404 otherwise.
    (`fake_servers._Handler` sends the common headers and keeps quiet.)"""

    names: Sequence[str] = ()  # sorted
    served: list[str] = []  # noqa: RUF012 - one list per registry, set by tiny_registry

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        url = urlsplit(self.path)
        if url.path == "/v2/":
            self._reply(200, b"{}")
        elif url.path == "/v2/_catalog":
            self._catalog(parse_qs(url.query))
        elif url.path.endswith("/tags/list"):
            name = url.path[len("/v2/") : -len("/tags/list")]
            self._reply(200, json.dumps({"name": name, "tags": [TAG]}).encode())
        elif "/manifests/" in url.path:
            self.served.append(url.path)
            digest = {"Docker-Content-Digest": MANIFEST_DIGEST}
            self._reply(200, MANIFEST, "application/vnd.oci.image.manifest.v1+json", digest)
        else:
            self._reply(404, b'{"errors": [{"code": "NOT_FOUND"}]}')

    do_HEAD = do_GET  # noqa: N815

    def _catalog(self, query: dict[str, list[str]]) -> None:
        page = min(int(query.get("n", ["100"])[0]), 1000)
        start = bisect.bisect_right(self.names, query["last"][0]) if "last" in query else 0
        names = list(self.names[start : start + page])
        headers = {}
        if start + page < len(self.names) and names:
            headers["Link"] = f'</v2/_catalog?n={page}&last={names[-1]}>; rel="next"'
        self._reply(200, json.dumps({"repositories": names}).encode(), headers=headers)

    def _reply(
        self, status: int, body: bytes, ctype: str = "application/json", headers: dict[str, str] | None = None
    ) -> None:
        self._extra_headers = headers or {}
        self._send(status, body, ctype)

    def end_headers(self) -> None:
        for name, value in getattr(self, "_extra_headers", {}).items():
            self.send_header(name, value)
        super().end_headers()


@dataclass
class TinyRegistry:
    url: str
    manifests_served: list[str]  # paths of the manifest requests answered so far


@contextmanager
def tiny_registry(names: Sequence[str]) -> Iterator[TinyRegistry]:
    """A plain-HTTP registry holding `names`, each with one tag."""
    served: list[str] = []
    handler = type("Handler", (_RegistryHandler,), {"names": sorted(names), "served": served})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield TinyRegistry(f"http://127.0.0.1:{server.server_address[1]}", served)
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class DripServer:
    """Answers every request with a status line sent one byte per `interval` s."""

    url: str
    connected: threading.Event = field(default_factory=threading.Event)


MAX_DRIP_BYTES = 120  # a bound on every connection: two minutes at one byte a second
HTTP_REPLY = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"." * MAX_DRIP_BYTES
TLS_RECORD = b"\x16\x03\x03\x40\x00" + b"\x02" * MAX_DRIP_BYTES
"""A TLS handshake record announcing 16 KiB, sent a byte at a time: the client's
handshake waits for all of it, and every byte restarts its socket timeout."""


def _drip(conn: socket.socket, server: DripServer, stop: threading.Event, interval: float, reply: bytes) -> None:
    try:
        conn.settimeout(5)
        conn.recv(65536)  # the request, or the client hello when `reply` is a TLS record
        server.connected.set()
        for byte in reply[:MAX_DRIP_BYTES]:
            if stop.wait(interval):
                return
            conn.sendall(bytes([byte]))
    except OSError:
        return
    finally:
        conn.close()


@contextmanager
def drip_server(
    *, tls: ssl.SSLContext | None = None, interval: float = 1.0, reply: bytes = HTTP_REPLY, scheme: str = "http"
) -> Iterator[DripServer]:
    """Yield a server that never finishes an answer; `tls` wraps each connection
    (the handshake itself is fast, so the TLS probe sees a good certificate).
    With `reply=TLS_RECORD, scheme="https"` it is the handshake that never ends."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.settimeout(0.2)
    scheme = "https" if tls else scheme
    server = DripServer(f"{scheme}://127.0.0.1:{sock.getsockname()[1]}")
    stop = threading.Event()
    workers: list[threading.Thread] = []

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            worker = threading.Thread(target=_serve, args=(conn,), daemon=True)
            workers.append(worker)
            worker.start()

    def _serve(conn: socket.socket) -> None:
        if tls is not None:
            try:
                conn.settimeout(5)
                conn = tls.wrap_socket(conn, server_side=True)
            except (OSError, ssl.SSLError):
                conn.close()
                return
        _drip(conn, server, stop, interval, reply)

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield server
    finally:
        stop.set()
        acceptor.join(2)
        for worker in workers:
            worker.join(2)
        sock.close()


def tls_context(cert_dir: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context with a certificate for 127.0.0.1 from a fresh CA, and the CA file."""
    from sandbox.certs import server_certificate

    cert = server_certificate(cert_dir, "slow")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert.cert_file, cert.key_file)
    return context, cert.ca_file
