"""A registry that sends its headers or body one byte at a time never trips a
per-read timeout. Every request must still end, headers and body, within the
target's `timeout`, and that request alone becomes an error naming the deadline."""

from __future__ import annotations

import time
from collections.abc import Iterable

from audits.model import ANONYMOUS_ACCESS, PLAIN_HTTP, REPOSITORIES, FactState, TargetFacts
from tests.unit.hostile_server import Chunk, HostileServer, Request, answer, audit, drip, registry

DEADLINE = "timed out: no complete answer within 1 s"
SLOW_HEADERS = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Padding: " + b"." * 40 + b"\r\n\r\n{}"


def timed_audit(server: HostileServer) -> tuple[TargetFacts, float]:
    started = time.monotonic()
    facts = audit(server, timeout=1)
    return facts, time.monotonic() - started


def dripping_headers(request: Request) -> Iterable[Chunk]:
    return drip(SLOW_HEADERS, 0.1)  # about 7 s for the whole answer, a byte every 0.1 s


def test_a_registry_dripping_every_answer_cannot_hang_the_audit() -> None:
    with HostileServer(dripping_headers) as server:
        facts, elapsed = timed_audit(server)
    assert elapsed < 5
    for name in (PLAIN_HTTP, ANONYMOUS_ACCESS, REPOSITORIES):
        assert facts.facts[name].state is FactState.ERROR, name
        assert facts.facts[name].detail == DEADLINE, name


def test_a_dripping_body_is_cut_at_the_deadline() -> None:
    def slow_catalog(request: Request) -> Iterable[Chunk]:
        body = b'{"repositories": []}' + b" " * 40
        return answer(200, drip(body, 0.1), headers={"Content-Type": "application/json"}, length=len(body))

    with HostileServer(registry({}, {"/v2/_catalog": slow_catalog})) as server:
        facts, elapsed = timed_audit(server)
    assert elapsed < 5
    assert facts.facts[REPOSITORIES].detail == DEADLINE
    assert facts.facts[PLAIN_HTTP].state is FactState.OK  # /v2/ answered in time


def test_one_dripping_manifest_only_costs_its_tag() -> None:
    route = registry({"app": ["fast", "slow"]}, {"/v2/app/manifests/slow": dripping_headers})
    with HostileServer(route) as server:
        facts, elapsed = timed_audit(server)
    assert elapsed < 5
    [repo] = facts.facts[REPOSITORIES].value
    tags = {t.name: t for t in repo.tags}
    assert tags["fast"].error is None and tags["fast"].digest
    assert tags["slow"].error == DEADLINE and tags["slow"].digest is None
