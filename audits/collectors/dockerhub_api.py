"""A small client for the Docker Hub API (`hub.docker.com/v2/...`): login,
bounded pagination and rate limits.

Why plain httpx on the shared `HttpPool`: the same bounds as the OCI side
(total deadline per request, capped bodies, counted requests) and no SDK,
since Docker publishes none for the Hub API.

Rate limits. Docker Hub answers 429 with `Retry-After` (seconds or an HTTP
date) and sends `X-RateLimit-Limit/-Remaining/-Reset`. A 429 pauses every
request of the run until the announced time (one shared pause, so sixteen
requests hitting the limit together cost one wait, not sixteen), at most
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
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
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

HUB_ANSWER_CAP = BodyCap(4 * MIB, "a Docker Hub API answer")
PAGE_SIZE = 100
MAX_PAGES = 200  # 20,000 entries per listing; a namespace with more is cut with an error
RETRIES = 3  # 429 answers one request may wait out
MAX_SINGLE_WAIT = 120.0  # a Retry-After beyond this is not waited for, whatever the budget

Sleep = Callable[[float], Awaitable[None]]


class HubError(Exception):
    """A Hub API call that gave no usable answer; `detail` is safe to show."""

    def __init__(self, detail: str, source: str, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.source = source
        self.status = status


@dataclass
class RateBudget:
    """The rate-limit state of one run: the wait budget left, the shared pause,
    and the last limit the server announced."""

    wait_left: float
    resume_at: float = 0.0  # monotonic time before which no request is sent
    limit: int | None = None
    remaining: int | None = None
    waited: float = 0.0
    skipped: list[str] = field(default_factory=list)

    def observe(self, headers: httpx.Headers) -> None:
        limit, remaining = _header_int(headers, "x-ratelimit-limit"), _header_int(headers, "x-ratelimit-remaining")
        if limit is not None:
            self.limit = limit
        if remaining is not None:
            self.remaining = remaining

    def pause(self, seconds: float) -> bool:
        """Extend the shared pause to `seconds` from now if the budget allows
        it (charging only the extension); False when it does not."""
        now = time.monotonic()
        target = now + seconds
        extension = max(0.0, target - max(now, self.resume_at))
        if seconds > MAX_SINGLE_WAIT or extension > self.wait_left:
            return False
        self.wait_left -= extension
        self.waited += extension
        self.resume_at = max(self.resume_at, target)
        return True

    def summary(self) -> str | None:
        """One line for the run summary, or None when nothing was announced or waited."""
        parts = []
        if self.remaining is not None:
            of = f" of {self.limit}" if self.limit is not None else ""
            parts.append(f"{self.remaining}{of} requests left in the current window")
        if self.waited:
            parts.append(f"waited {self.waited:.1f} s on Retry-After")
        if self.skipped:
            parts.append(f"{len(self.skipped)} call(s) skipped when rate limited")
        return "Docker Hub rate limit: " + "; ".join(parts) if parts else None


def _header_int(headers: httpx.Headers, name: str) -> int | None:
    value = headers.get(name, "").strip()
    return int(value) if value.isdigit() and len(value) <= 12 else None


def retry_after(headers: httpx.Headers, now: float | None = None) -> float | None:
    """Seconds to wait as the server asks: `Retry-After` (seconds or an HTTP
    date), else `X-RateLimit-Reset` (epoch seconds); None when neither says."""
    wall = time.time() if now is None else now
    value = headers.get("retry-after", "").strip()
    if value.isdigit() and len(value) <= 12:
        return float(value)
    if value:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - wall)
        except (TypeError, ValueError, IndexError, OverflowError):
            pass
    reset = _header_int(headers, "x-ratelimit-reset")
    return max(0.0, reset - wall) if reset is not None else None


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
            delay = self.budget.resume_at - time.monotonic()
            if delay > 0:
                await self._sleep(delay)
            response = await self._request(method, url, content, source)
            self.budget.observe(response.headers)
            if response.status_code != 429:
                return response
            wait = retry_after(response.headers)
            if attempt == RETRIES or not self.budget.pause(wait if wait is not None else 1.0):
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
