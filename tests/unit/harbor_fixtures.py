"""Shared pieces of the Harbor tests: the demo seed with made-up digests in a
thread-run emulator, and a fault proxy that answers chosen paths itself (a
500, a body the swagger does not allow) and forwards everything else."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from audits.collectors.base import CollectOptions
from audits.collectors.harbor import collect
from audits.model import TargetFacts
from audits.targets import HarborTarget
from sandbox.harbor_emulator import HarborState, RunningEmulator, start_emulator
from sandbox.harbor_seed import DEMO_IMAGES, SeededImage, demo_state

USER_ENV, PASSWORD_ENV = "HARBOR_TEST_USER", "HARBOR_TEST_PASSWORD"
ADMIN_PASSWORD = "s3cret-admin-pass"
AUDITOR_PASSWORD = "s3cret-auditor-pass"


def seeded_images() -> list[SeededImage]:
    images = []
    for n, (repo, tag, signed, critical) in enumerate(DEMO_IMAGES):
        digest = f"sha256:{n:064x}"
        images.append(SeededImage(repo, tag, digest, f"sha256:{n + 100:064x}" if signed else None, critical))
    return images


def seeded_state() -> HarborState:
    """The demo's Harbor: `admin` (system admin) and `auditor` (no admin role)."""
    return demo_state(seeded_images(), {"admin": (ADMIN_PASSWORD, True), "auditor": (AUDITOR_PASSWORD, False)})


@contextmanager
def running_harbor(state: HarborState | None = None) -> Iterator[RunningEmulator]:
    running = start_emulator(state or seeded_state())
    try:
        yield running
    finally:
        running.stop()


def audit(url: str, **target: Any) -> TargetFacts:
    """Collect `url` as the harbor target named `harbor` with the test credentials."""
    settings: dict[str, Any] = {"name": "harbor", "kind": "harbor", "url": url, "timeout": 5,
                                "username_env": USER_ENV, "password_env": PASSWORD_ENV, **target}  # fmt: skip
    return collect(HarborTarget(**settings), CollectOptions(concurrency=4))


@dataclass(frozen=True)
class Fault:
    status: int
    body: bytes = b""
    delay_s: float = 0.0  # answer only after this pause (bounded: the proxy's own stop ends it)


@dataclass
class FaultProxy:
    """Answers `faults` (request path -> Fault) itself; forwards the rest upstream."""

    upstream: str
    faults: Mapping[str, Fault]
    url: str = ""
    stopping: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)

    def __enter__(self) -> FaultProxy:
        proxy = self
        up = urlsplit(self.upstream)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def do_GET(self) -> None:  # noqa: N802
                fault = proxy.faults.get(urlsplit(self.path).path)
                if fault is not None:
                    proxy.stopping.wait(fault.delay_s)
                    self._answer(fault.status, {"Content-Type": "application/json"}, fault.body)
                    return
                conn = http.client.HTTPConnection(up.hostname or "127.0.0.1", up.port or 80, timeout=5)
                try:
                    conn.request("GET", self.path, headers=dict(self.headers.items()))
                    response = conn.getresponse()
                    headers = {k: v for k, v in response.getheaders() if k.lower() != "content-length"}
                    self._answer(response.status, headers, response.read())
                finally:
                    conn.close()

            def _answer(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
