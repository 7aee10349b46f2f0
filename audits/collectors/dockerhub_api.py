"""A small client for the Docker Hub API (`hub.docker.com/v2/...`): login,
bounded pagination and rate limits.

Why plain httpx on the shared `HttpPool`: the same bounds as the OCI side
(total deadline per request, capped bodies, counted requests) and no SDK,
since Docker publishes none for the Hub API.

Rate limits. Docker Hub answers 429 with `Retry-After` (seconds or an HTTP
date) and sends `X-RateLimit-Limit/-Remaining/-Reset`. A 429 pauses every
request of the run until the announced time (one shared pause, see
`rate_limit`: sixteen requests limited together cost one wait), at most
`RETRIES` times per request, and only while the target's `rate_limit_wait`
budget lasts; beyond that the request fails with `HubError` saying what was
skipped and why. The last budget the server announced is kept for the run
summary.

Secrets: the access token and the JWT the login returns are added to the
`Redactor`; error details are composed from fixed phrases, status codes and
paths, never from what the server sent.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlencode, urljoin

import httpx

from audits.collectors.oci import (
    MIB,
    BodyCap,
    HttpPool,
    OciError,
    Redactor,
    describe_transport_error,
    origin_of,
    parse_json,
)
from audits.collectors.rate_limit import RateBudget, Sleep, retry_after

HUB_ANSWER_CAP = BodyCap(4 * MIB, "a Docker Hub API answer")
PAGE_SIZE = 100
MAX_PAGES = 200  # 20,000 entries per listing; a namespace with more is cut with an error
RETRIES = 3  # 429 answers one request may wait out
MAX_SINGLE_WAIT = 120.0  # a Retry-After beyond this is not waited for, whatever the budget


class HubError(Exception):
    """A Hub API call that gave no usable answer; `detail` is safe to show."""

    def __init__(self, detail: str, source: str, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.source = source
        self.status = status


def rate_summary(budget: RateBudget) -> str | None:
    """One line for the run summary, or None when nothing was announced or waited."""
    parts = []
    if budget.remaining is not None:
        of = f" of {budget.limit}" if budget.limit is not None else ""
        parts.append(f"{budget.remaining}{of} requests left in the current window")
    if budget.waited:
        parts.append(f"waited {budget.waited:.1f} s on Retry-After")
    if budget.skipped:
        parts.append(f"{len(budget.skipped)} call(s) skipped when rate limited")
    return "Docker Hub rate limit: " + "; ".join(parts) if parts else None


class HubClient:
    """Authenticated, bounded access to one Hub API base URL."""

    def __init__(
        self,
        base_url: str,
        pool: HttpPool,
        *,
        timeout: float,
        budget: RateBudget,
        redactor: Redactor,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._pool = pool
        self._timeout = timeout
        self.budget = budget
        self.redact = redactor
        self._sleep = sleep
        self._bearer: str | None = None

    async def login(self, identifier: str, secret: str) -> None:
        """Exchange an access token for the short-lived JWT the API takes
        (`POST /v2/auth/token`)."""
        self.redact.add(secret)
        body = json.dumps({"identifier": identifier, "secret": secret}).encode()
        response = await self._send("POST", f"{self.base_url}/v2/auth/token", body)
        if response.status_code != 200:
            raise HubError(self._status_detail(response), f"POST {self.base_url}/v2/auth/token", response.status_code)
        answer = self._json(response)
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token or not token.isascii() or not token.isprintable() or " " in token:
            raise HubError("the token service answered without a usable access_token", f"POST {response.url}")
        self.redact.add(token)
        self._bearer = token

    async def get(self, path: str, params: dict[str, str | int] | None = None) -> Any:
        """The JSON answer of a GET; HubError unless it is a 200."""
        url = self.base_url + path + (f"?{urlencode(params)}" if params else "")
        return await self.get_url(url)

    async def get_url(self, url: str) -> Any:
        response = await self._send("GET", url)
        if response.status_code != 200:
            raise HubError(self._status_detail(response), f"GET {url}", response.status_code)
        return self._json(response)

    async def pages(self, path: str, params: dict[str, str | int] | None = None) -> list[dict[str, Any]]:
        """Every `results` entry of a paginated listing, following `next` on
        the API's own origin only; cut with an error at a loop or MAX_PAGES."""
        entries: list[dict[str, Any]] = []
        url: str | None = self.base_url + path + "?" + urlencode({**(params or {}), "page_size": PAGE_SIZE})
        seen: set[str] = set()
        while url is not None:
            if url in seen or len(seen) >= MAX_PAGES:
                why = "links back to a page already read" if url in seen else f"announces more than {MAX_PAGES} pages"
                raise HubError(f"listing cut: the API {why}", f"GET {url}")
            seen.add(url)
            body = await self.get_url(url)
            results = body.get("results") if isinstance(body, dict) else None
            if not isinstance(results, list):
                raise HubError(f"unexpected answer from GET {path}: no results list", f"GET {url}")
            entries.extend(r for r in results if isinstance(r, dict))
            url = self._next(body.get("next"), url)
        return entries

    def _next(self, link: Any, url: str) -> str | None:
        if not link:
            return None
        absolute = urljoin(url, link) if isinstance(link, str) else ""
        if origin_of(absolute) is None or origin_of(absolute) != origin_of(self.base_url):
            raise HubError("pagination link points outside the Docker Hub API; not followed", f"GET {url}")
        return absolute

    async def _send(self, method: str, url: str, content: bytes | None = None) -> httpx.Response:
        """One request, waiting out 429 answers while the budget allows."""
        source = f"{method} {url.split('?')[0]}"
        for attempt in range(RETRIES + 1):
            await self.budget.wait_turn(self._sleep)
            response = await self._request(method, url, content, source)
            self.budget.observe(response.headers)
            if response.status_code != 429:
                return response
            wait = retry_after(response.headers)
            seconds = wait if wait is not None else 1.0
            if attempt == RETRIES or seconds > MAX_SINGLE_WAIT or not self.budget.pause(seconds):
                break
        announced = f", Retry-After {wait:g} s" if wait is not None else ""
        self.budget.skipped.append(source)
        raise HubError(
            f"rate limited (HTTP 429{announced}): skipped, waiting longer would exceed rate_limit_wait "
            f"({self.budget.wait_left:.0f} s of wait budget left)",
            source,
            429,
        )

    async def _request(self, method: str, url: str, content: bytes | None, source: str) -> httpx.Response:
        headers = {"Accept": "application/json"}
        if content is not None:
            headers["Content-Type"] = "application/json"
        if self._bearer is not None:
            headers["Authorization"] = f"Bearer {self._bearer}"
        try:
            return await self._pool.request(
                method, url, headers=headers, content=content, cap=HUB_ANSWER_CAP, deadline=self._timeout
            )
        except OciError as exc:
            raise HubError(self.redact(exc.detail), source) from None
        except httpx.HTTPError as exc:
            raise HubError(self.redact(describe_transport_error(exc, self._timeout)), source) from None

    def _json(self, response: httpx.Response) -> Any:
        try:
            return parse_json(response)
        except OciError as exc:
            raise HubError(exc.detail, exc.source) from None

    @staticmethod
    def _status_detail(response: httpx.Response) -> str:
        where = f"{response.request.method} {response.request.url.path}"
        hint = {401: " (token rejected)", 403: " (access denied)", 404: " (not found)"}
        return f"HTTP {response.status_code} from {where}{hint.get(response.status_code, '')}"
