"""Registries on 127.0.0.1 that answer well-formed HTTP with hostile text:
tag names carrying rich markup, terminal escapes and bidi overrides, and a
`Link: rel="next"` pointing at such a path. Each serves one repository, `app`."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from tests.e2e.fake_servers import _Handler, serve_http

# What a terminal obeys: clear screen, an OSC 8 hyperlink ended by BEL, a right-to-left override.
ESCAPES = "a\x1b[2Jb\x1b]8;;https://evil.example/\x07c\u202ed"
CLOSING_TAG = "[/x]"
FAKE_PASS = "[link=https://evil.example/]x[/link][bold green]ALL CHECKS PASSED[/]"


class _HostileHandler(_Handler):
    tags: Sequence[str] = ()
    next_link: str | None = None

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self.path
        if path.rstrip("/") == "/v2":
            self._json(200, b"{}")
        elif path.startswith("/v2/_catalog/"):
            self._json(200, b"not json")  # the page the hostile Link points at
        elif path.startswith("/v2/_catalog"):
            link = f'<{self.next_link}>; rel="next"' if self.next_link else None
            self._json(200, json.dumps({"repositories": ["app"]}).encode(), link)
        elif path.startswith("/v2/app/tags/list"):
            self._json(200, json.dumps({"name": "app", "tags": list(self.tags)}).encode())
        else:
            self._json(404, b'{"errors": [{"code": "MANIFEST_UNKNOWN"}]}')

    do_HEAD = do_GET  # noqa: N815

    def _json(self, status: int, body: bytes, link: str | None = None) -> None:
        self._send(status, body, "application/json", {"Link": link} if link else None)


@contextmanager
def hostile_registry(tags: Sequence[str] = (), next_link: str | None = None) -> Iterator[str]:
    """Yield the http URL of a registry listing `tags` for `app`, whose
    catalog page links to `next_link` (answered with garbage) when given."""
    handler = type("HostileHandler", (_HostileHandler,), {"tags": tuple(tags), "next_link": next_link})
    with serve_http(handler) as url:
        yield url
