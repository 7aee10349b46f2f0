"""Small hostile HTTP(S) servers for the hostile-registry tests.

A `HostileServer` listens on 127.0.0.1 (a free port, plain or TLS) and answers
each request with whatever raw bytes the test's route yields: status line and
headers it chooses, bodies generated lazily while they are sent (a 1 GiB
answer is never held in memory), and pauses (a float yielded by the route is a
pause in seconds) to drip bytes slowly. An answer with a length keeps the
connection open for the next request (as a registry would); any other ends it. The
server stops at the end of the `with` block: pauses are cut short and every
handler thread is joined.
"""

from __future__ import annotations

import hashlib
import json
import socket
import socketserver
import ssl
import struct
import threading
import tracemalloc
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from audits.collectors.base import CollectOptions
from audits.collectors.distribution import collect
from audits.model import REPOSITORIES, FactState, RepositoryFacts, TargetFacts
from audits.targets import DistributionTarget

T = TypeVar("T")
Chunk = bytes | float  # bytes to send, or a pause in seconds
Route = Callable[["Request"], Iterable[Chunk]]

GIB = 1 << 30
MIB = 1 << 20


@dataclass(frozen=True)
class Request:
    method: str
    target: str  # path and query, as sent
    headers: Mapping[str, str]  # lower-case names

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


class HostileServer:
    """`with HostileServer(route) as server:` serves `route` at `server.url`;
    `server.requests` lists what arrived, in order."""

    def __init__(self, route: Route, *, tls: ssl.SSLContext | None = None) -> None:
        self.route = route
        self.requests: list[Request] = []
        self._stopping = threading.Event()
        self._tls = tls
        self._server = _Server(self)
        self.port = int(self._server.server_address[1])
        self.origin = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.url = self.origin
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()  # joins the handler threads (block_on_close)
        self._thread.join(timeout=5)

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    def serve(self, sock: socket.socket) -> None:
        """One connection: (TLS,) then requests and the route's answers, for as
        long as each answer says `Connection: keep-alive`."""
        sock.settimeout(5)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms delayed-ACK stall per answer
        try:
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_side=True)
            while self._answer_one(sock):
                pass
        except OSError:
            return  # the client gave up (that is usually the point of the test)
        finally:
            sock.close()

    def _answer_one(self, sock: socket.socket) -> bool:
        """Read a request and send its answer; True to keep the connection."""
        request = _read_request(sock)
        if request is None:
            return False
        self.requests.append(request)
        keep = False
        for i, chunk in enumerate(self.route(request)):
            if isinstance(chunk, float):
                if self._stopping.wait(chunk):
                    return False
                continue
            if i == 0:
                keep = b"\r\nConnection: keep-alive\r\n" in chunk.split(b"\r\n\r\n", 1)[0] + b"\r\n"
            sock.sendall(chunk)
        return keep and not self._stopping.is_set()


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = False
    block_on_close = True

    def __init__(self, owner: HostileServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server = self.server
        assert isinstance(server, _Server)
        server.owner.serve(self.request)


def _read_request(sock: socket.socket) -> Request | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk or len(data) > 1 << 20:
            return None
        data += chunk
    raw_head, _, body = data.partition(b"\r\n\r\n")
    head = raw_head.decode("latin-1").split("\r\n")
    method, target, _ = head[0].split(" ", 2)
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    while len(body) < min(length, 1 << 20):  # a request body (a login) is read, so closing sends no reset
        chunk = sock.recv(65536)
        if not chunk:
            return None
        body += chunk
    return Request(method, target, headers)


# --------------------------------------------------------------------------
# Answers
# --------------------------------------------------------------------------


def answer(
    status: int,
    body: bytes | Iterable[Chunk] = b"",
    *,
    headers: Mapping[str, str] | None = None,
    length: int | None = None,
) -> Iterator[Chunk]:
    """Status line, headers (`Content-Length` from `body` when it is bytes, or
    `length`), then the body chunks. Without a length the body ends with the
    connection; with one the connection stays open."""
    if isinstance(body, bytes):
        length = len(body)
    lines = [f"HTTP/1.1 {status} Hostile", f"Connection: {'close' if length is None else 'keep-alive'}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    yield ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if isinstance(body, bytes):
        yield body
    else:
        yield from body


def json_answer(status: int, value: Any, headers: Mapping[str, str] | None = None) -> Iterator[Chunk]:
    return answer(status, json.dumps(value).encode(), headers={"Content-Type": "application/json", **(headers or {})})


def drip(data: bytes, every: float) -> Iterator[Chunk]:
    """`data` one byte at a time, `every` seconds apart."""
    for i in range(len(data)):
        yield data[i : i + 1]
        yield every


def repeated(piece: bytes, total: int) -> Iterator[bytes]:
    """`total` bytes made of `piece` over and over, generated while sent."""
    sent = 0
    while sent + len(piece) <= total:
        yield piece
        sent += len(piece)
    if sent < total:
        yield piece[: total - sent]


def huge_json_list(key: str, total: int = GIB) -> tuple[int, Iterator[bytes]]:
    """(length, chunks) of a syntactically plausible `{"<key>": ["aaa…", …` of `total` bytes."""
    opening = f'{{"{key}": ['.encode()
    item = b'"' + b"a" * 60 + b'",'
    piece = item * (65536 // len(item))
    body_total = total - len(opening)

    def chunks() -> Iterator[bytes]:
        yield opening
        yield from repeated(piece, body_total)

    return total, chunks()


def gzip_bomb(decoded: int = GIB) -> tuple[int, Iterator[bytes]]:
    """(length, chunks) of a valid gzip stream of `decoded` zero bytes (about
    1 KiB per MiB): each fully flushed MiB compresses to the same block, so
    the stream is a few blocks repeated rather than a real compression run."""
    mib = bytes(MIB)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    first = compressor.compress(mib) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(mib) + compressor.flush(zlib.Z_FULL_FLUSH)
    final = compressor.flush(zlib.Z_FINISH)[:-8]  # the last empty block, without the 2 MiB trailer
    crc = 0
    for _ in range(decoded // MIB):
        crc = zlib.crc32(mib, crc)
    trailer = struct.pack("<II", crc, decoded & 0xFFFFFFFF)
    count = decoded // MIB - 1

    def chunks() -> Iterator[bytes]:
        yield first
        for _ in range(count):
            yield block
        yield final + trailer

    return len(first) + count * len(block) + len(final) + len(trailer), chunks()


def peak_memory(action: Callable[[], T]) -> tuple[T, int]:
    """`action()`'s result and the peak of Python memory allocated while it ran
    (every thread, the hostile server's included), in bytes."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        baseline = tracemalloc.get_traced_memory()[0]
        result = action()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return result, peak - baseline


def tls_context(directory: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context with a certificate for 127.0.0.1 issued by a fresh CA,
    and the CA file a client verifies it with."""
    from tests.unit.test_tls_probe import make_cert, pem

    ca = make_cert("hostile test CA", ca=True, days=(-1, 30))
    leaf_cert, leaf_key = pem(make_cert("127.0.0.1", issuer=ca, ips=("127.0.0.1",)))
    ca_file, cert_file, key_file = directory / "ca.pem", directory / "leaf.pem", directory / "leaf.key"
    ca_file.write_bytes(pem(ca)[0])
    cert_file.write_bytes(leaf_cert)
    key_file.write_bytes(leaf_key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context, ca_file


def digest_of(repository: str, tag: str) -> str:
    return "sha256:" + hashlib.sha256(f"{repository}:{tag}".encode()).hexdigest()


def registry(tags: Mapping[str, Iterable[str]], overrides: Mapping[str, Route] | None = None) -> Route:
    """A well-behaved open Distribution 2.8 serving `tags` (repository -> tag
    names; each tag's digest is `digest_of`), with `overrides` (a path -> its
    own route) where the test makes it hostile. No referrers API (404)."""
    hostile = dict(overrides or {})
    api = {"Docker-Distribution-API-Version": "registry/2.0"}

    def route(request: Request) -> Iterable[Chunk]:
        if request.path in hostile:
            return hostile[request.path](request)
        if request.path == "/v2/":
            return json_answer(200, {}, api)
        if request.path == "/v2/_catalog":
            return json_answer(200, {"repositories": sorted(tags)}, api)
        repo, _, rest = request.path.removeprefix("/v2/").rpartition("/")
        if request.path.endswith("/tags/list") and repo.removesuffix("/tags") in tags:
            name = repo.removesuffix("/tags")
            return json_answer(200, {"name": name, "tags": list(tags[name])}, api)
        repo = repo.removesuffix("/manifests")
        if request.method == "HEAD" and repo in tags and rest in tags[repo]:
            media = "application/vnd.oci.image.manifest.v1+json"
            return answer(200, headers={"Docker-Content-Digest": digest_of(repo, rest), "Content-Type": media})
        return json_answer(404, {"errors": [{"code": "NOT_FOUND"}]})

    return route


def trusted_key(directory: Path) -> str:
    """The path of a fresh P-256 public key (PEM), as `trusted_keys` lists it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    path = directory / "release.pub"
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    path.write_bytes(public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return str(path)


PAYLOAD_DIGEST = "sha256:" + "e" * 64  # not cosign's canonical payload, so the audit downloads it


def signed_image(payload: Route, payload_digest: str = PAYLOAD_DIGEST) -> Route:
    """A registry holding app:v1 with a cosign signature (tag scheme) whose
    payload blob, `payload_digest`, `payload` serves."""
    sig_tag = digest_of("app", "v1").replace(":", "-") + ".sig"
    layer = {
        "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
        "digest": payload_digest,
        "size": 1,
        "annotations": {"dev.cosignproject.cosign/signature": "AAAA"},
    }
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": [layer]}
    overrides: dict[str, Route] = {
        f"/v2/app/manifests/{sig_tag}": lambda request: json_answer(200, manifest),
        f"/v2/app/blobs/{payload_digest}": payload,
    }
    return registry({"app": ["v1", sig_tag]}, overrides)


# --------------------------------------------------------------------------
# Auditing a hostile server
# --------------------------------------------------------------------------


def audit(server: HostileServer, *, keys: tuple[str, ...] = (), **target: Any) -> TargetFacts:
    """The distribution collector's facts about `server` (timeout 2 s unless
    `target` says otherwise; `target` holds any other DistributionTarget keys)."""
    config = DistributionTarget.model_validate(
        {"name": "hostile", "kind": "distribution", "url": server.url, "timeout": 2, **target}
    )
    return collect(config, CollectOptions(concurrency=4, trusted_keys=keys))


def audit_route(route: Route, **target: Any) -> tuple[TargetFacts, list[str]]:
    """`audit` a server answering with `route`; also the paths it was asked for."""
    with HostileServer(route) as server:
        facts = audit(server, **target)
    return facts, server.paths()


def repositories(facts: TargetFacts) -> dict[str, RepositoryFacts]:
    fact = facts.facts[REPOSITORIES]
    assert fact.state is FactState.OK, fact.detail
    return {r.name: r for r in fact.value}
