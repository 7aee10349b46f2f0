"""A hostile Docker Hub API: pagination links elsewhere or in a loop, unusable
login answers, made-up names, and rate-limit headers in every form. Each
test's server is a small local one (127.0.0.1) it starts and stops itself."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from audits.collectors.base import CollectOptions
from audits.collectors.dockerhub import collect
from audits.collectors.dockerhub_api import retry_after
from audits.model import CREDENTIALS, REPOSITORIES, FactState, TargetFacts
from audits.targets import DockerHubTarget
from tests.unit.hostile_server import Chunk, HostileServer, Request, json_answer

TOKEN = "dckr_pat_hostile-test-token"


def login_then(route: dict[str, Iterable[Chunk] | None], token: str = "jwt.ok") -> object:
    def serve(request: Request) -> Iterable[Chunk]:
        if request.path == "/v2/auth/token":
            return json_answer(200, {"access_token": token})
        for prefix, chunks in route.items():
            if request.path.startswith(prefix) and chunks is not None:
                return chunks
        return json_answer(404, {"detail": "no"})

    return serve


def audit(server: HostileServer, monkeypatch: pytest.MonkeyPatch) -> TargetFacts:
    monkeypatch.setenv("HOSTILE_HUB_TOKEN", TOKEN)
    target = DockerHubTarget(name="hostile", kind="dockerhub", namespace="acme", token_env="HOSTILE_HUB_TOKEN",
                             hub_url=server.url, registry_url=server.url, timeout=2, rate_limit_wait=1)  # fmt: skip
    return collect(target, CollectOptions(concurrency=4))


def page(next_link: str | None) -> Iterable[Chunk]:
    return json_answer(200, {"count": 1, "next": next_link, "results": [{"name": "app", "is_private": True}]})


def test_a_pagination_link_to_another_origin_is_not_followed(monkeypatch: pytest.MonkeyPatch) -> None:
    route: dict[str, Iterable[Chunk] | None] = {}
    with HostileServer(login_then(route)) as server:
        route["/v2/namespaces/acme/repositories"] = page("https://attacker.invalid/steal?page=2")
        facts = audit(server, monkeypatch)
    assert facts.facts[REPOSITORIES].state is FactState.ERROR
    assert "pagination link points outside the Docker Hub API" in (facts.facts[REPOSITORIES].detail or "")


def test_a_pagination_loop_is_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    def looping(request: Request) -> Iterable[Chunk]:
        if request.path == "/v2/auth/token":
            return json_answer(200, {"access_token": "jwt.ok"})
        if request.path == "/v2/namespaces/acme/repositories":
            return page(f"http://127.0.0.1:{server.port}/v2/namespaces/acme/repositories?page_size=100")
        return json_answer(404, {})

    with HostileServer(looping) as server:
        facts = audit(server, monkeypatch)
        asked = [p for p in server.paths() if p.endswith("/repositories")]
    assert "links back to a page already read" in (facts.facts[REPOSITORIES].detail or "")
    assert len(asked) == 1  # the link names the page just read


@pytest.mark.parametrize("token", ["jwt with spaces", "jwt\r\nX-Injected: 1", ""])
def test_an_unusable_login_answer_is_an_error_on_every_hub_fact(monkeypatch: pytest.MonkeyPatch, token: str) -> None:
    with HostileServer(login_then({}, token=token)) as server:
        facts = audit(server, monkeypatch)
    for name in (REPOSITORIES, CREDENTIALS):
        assert "without a usable access_token" in (facts.facts[name].detail or "")
    assert TOKEN not in repr(facts)


def test_made_up_repository_names_are_reported_and_never_requested(monkeypatch: pytest.MonkeyPatch) -> None:
    names = [{"name": "../../v2/access-tokens"}, {"name": "a/b"}, {"name": "UPPER"}]
    route = {"/v2/namespaces/acme/repositories": json_answer(200, {"count": 3, "next": None, "results": names})}
    with HostileServer(login_then(route)) as server:
        facts = audit(server, monkeypatch)
        requested = server.paths()
    repos = facts.facts[REPOSITORIES].value
    assert len(repos) == 3 and all("not allowed" in (r.error or "") for r in repos)
    assert not any("UPPER" in p or "/a/b" in p or ".." in p for p in requested)


def test_retry_after_in_seconds_as_a_date_or_from_the_reset_header() -> None:
    now = datetime(2026, 12, 1, 10, 0, tzinfo=UTC).timestamp()
    assert retry_after(httpx.Headers({"Retry-After": "12"}), now) == 12
    in_30 = format_datetime(datetime.fromtimestamp(now, UTC) + timedelta(seconds=30), usegmt=True)
    assert retry_after(httpx.Headers({"Retry-After": in_30}), now) == 30
    assert retry_after(httpx.Headers({"X-RateLimit-Reset": str(int(now) + 45)}), now) == 45
    assert retry_after(httpx.Headers({"Retry-After": "soon", "X-RateLimit-Reset": "-1"}), now) is None
    assert retry_after(httpx.Headers({"Retry-After": "9" * 400}), now) is None  # no absurd number parsed
