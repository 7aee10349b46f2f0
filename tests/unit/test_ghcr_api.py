"""The GitHub REST client treats every answer as untrusted: pagination stays on the
API's origin, bad bodies and absurd headers are errors or ignored, a rate limit
it may not wait out stops all later requests instead of hammering GitHub."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from audits.collectors.base import RequestCounter
from audits.collectors.ghcr_api import ApiError, GitHubApi, RateLimited, rate_limit_wait
from audits.collectors.oci import Redactor, counted_pool

BASE = "https://api.example.test"


def api_with(handler: Callable[[httpx.Request], httpx.Response], max_wait: float = 5.0) -> tuple[GitHubApi, list[str]]:
    seen: list[str] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return handler(request)

    pool = counted_pool(asyncio.Semaphore(4), timeout=5, verify=True, counter=RequestCounter(),
                        transport=httpx.MockTransport(record))
    return GitHubApi(BASE, pool, "ghp_secret", 5.0, Redactor(["ghp_secret"]), max_wait), seen


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_a_next_page_on_another_origin_is_not_followed() -> None:
    api, seen = api_with(lambda r: httpx.Response(200, json=[{"name": "a"}],
                                                  headers={"Link": '<https://evil.test/x?page=2>; rel="next"'}))
    with pytest.raises(ApiError, match="outside the GitHub API"):
        run(api.pages("/orgs/o/packages", {"package_type": "container"}))
    assert all(url.startswith(BASE) for url in seen)


def test_a_page_that_links_to_itself_is_cut() -> None:
    api, seen = api_with(lambda r: httpx.Response(200, json=[], headers={"Link": f'<{BASE}/loop>; rel="next"'}))
    with pytest.raises(ApiError, match="loop"):
        run(api.pages("/loop", {}))
    assert len(seen) <= 3


def test_invalid_json_and_a_non_list_page_are_errors() -> None:
    api, _ = api_with(lambda r: httpx.Response(200, content=b"{not json"))
    with pytest.raises(ApiError, match="invalid JSON"):
        run(api.get("/x"))
    api, _ = api_with(lambda r: httpx.Response(200, json={"message": "hi"}))
    with pytest.raises(ApiError, match="not a list"):
        run(api.pages("/x", {}))


def test_a_limit_beyond_the_allowed_wait_blocks_every_later_request() -> None:
    api, seen = api_with(lambda r: httpx.Response(429, json={"message": "slow down"}, headers={"Retry-After": "3600"}))
    with pytest.raises(RateLimited, match="resets in 3600 s"):
        run(api.get("/a"))
    with pytest.raises(RateLimited):
        run(api.get("/b"))
    assert seen == [f"{BASE}/a"]


@pytest.mark.parametrize(("status", "headers", "body", "wait"), [
    (429, {"Retry-After": "7"}, b"{}", 7.0),
    (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1000"}, b"{}", 100.0),
    (403, {}, b'{"message": "You have exceeded a secondary rate limit."}', 60.0),
    (403, {}, b'{"message": "Resource not accessible"}', None),
    (429, {"Retry-After": "9" * 400}, b"{}", 60.0),  # absurd header: ignored, GitHub's default wait
])
def test_rate_limit_waits(status: int, headers: dict[str, str], body: bytes, wait: float | None) -> None:
    response = httpx.Response(status, headers=headers, content=body, request=httpx.Request("GET", BASE))
    assert rate_limit_wait(response, now=900.0) == wait


def test_the_token_never_appears_in_an_error() -> None:
    api, _ = api_with(lambda r: httpx.Response(401, json={"message": "Bad credentials ghp_secret"}))
    with pytest.raises(ApiError) as caught:
        run(api.get("/orgs/o/packages"))
    assert "ghp_secret" not in caught.value.detail and "HTTP 401" in caught.value.detail


def test_requests_limited_together_share_one_wait() -> None:
    """Eight GETs in flight together, each first answered 429 Retry-After 1,
    with a 3 s budget: one shared pause of about a second, then all eight succeed."""
    answered: set[str] = set()
    seen: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        await asyncio.sleep(0.05)  # every request is in flight before the first answer
        if request.url.path not in answered:
            answered.add(request.url.path)
            return httpx.Response(429, json={"message": "slow down"}, headers={"Retry-After": "1"})
        return httpx.Response(200, json={"ok": True})

    async def eight() -> tuple[list[Any], GitHubApi]:
        pool = counted_pool(asyncio.Semaphore(8), timeout=5, verify=True, counter=RequestCounter(),
                            transport=httpx.MockTransport(handler))
        api = GitHubApi(BASE, pool, "ghp_secret", 5.0, Redactor(["ghp_secret"]), 3.0)
        return await asyncio.gather(*(api.get(f"/p{i}") for i in range(8)), return_exceptions=True), api

    started = time.monotonic()
    results, api = run(eight())
    assert [r[0] if isinstance(r, tuple) else r for r in results] == [{"ok": True}] * 8
    assert len(seen) == 16
    assert 1.0 <= time.monotonic() - started < 2.5
    assert api.budget.waited < 1.5 and api.budget.wait_left > 1.5  # one wait charged, not eight
