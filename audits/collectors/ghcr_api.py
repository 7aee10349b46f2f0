"""The GitHub REST client of the GHCR collector: plain httpx through the shared
bounded pool (`oci.HttpPool`), because the audit must count every request,
bound every body and read the headers GitHub uses to say what a token is
(`X-OAuth-Scopes`, `GitHub-Authentication-Token-Expiration`) and how much of
the rate limit is left (`X-RateLimit-*`) — headers an SDK such as githubkit
hides or turns into retries the audit cannot bound.

Rate limits. A 429, or a 403 that is a primary (`x-ratelimit-remaining: 0`)
or secondary ("secondary rate limit") limit, is waited out when GitHub says how
long (`Retry-After`, else `X-RateLimit-Reset`; a secondary limit without either
waits 60 s, as GitHub's docs ask) and the wait fits in what is left of the
target's `max_rate_limit_wait`; then the request is retried (at most
`MAX_ATTEMPTS` times). The wait is one pause shared by every request in
flight (`rate_limit.RateBudget`): eight requests limited together cost one
wait, charged once. Otherwise the limit is remembered and this and every
later request fail at once with `RateLimited`, whose reason the facts carry —
skipped work is an error, never a pass. Bodies are untrusted: only a fixed
phrase is looked for in them, nothing from them is shown.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from audits.collectors.oci import (
    ERROR_CAP,
    LISTING_CAP,
    HttpPool,
    OciError,
    Redactor,
    describe_transport_error,
    origin_of,
    parse_json,
    parse_link_next,
)
from audits.collectors.rate_limit import RateBudget, Sleep, retry_after, retry_after_header

API_VERSION = "2022-11-28"
PER_PAGE = 100  # the most GitHub serves per page
MAX_PAGES = 100  # 10,000 entries: GitHub's own cap on page * per_page for package listings
MAX_ATTEMPTS = 3
SECONDARY_DEFAULT_WAIT = 60.0


class ApiError(Exception):
    """A GitHub answer that could not be used; `detail` is built here, never from the body."""

    def __init__(self, detail: str, source: str, status: int | None = None, scope: str | None = None) -> None:
        super().__init__(detail)
        self.detail, self.source, self.status, self.accepted_scope = detail, source, status, scope


class RateLimited(ApiError):
    """Work skipped because GitHub's rate limit would have outlasted the allowed wait."""


@dataclass
class TokenHeaders:
    """What GitHub's answers say about the token (first successful answer)."""

    seen: bool = False
    oauth_scopes: tuple[str, ...] | None = None  # classic PATs and OAuth tokens only
    expires_at: datetime | None = None


@dataclass
class GitHubApi:
    base_url: str
    pool: HttpPool
    token: str = field(repr=False)
    timeout: float
    redact: Redactor
    max_wait: float  # the target's max_rate_limit_wait
    budget: RateBudget = field(init=False)
    resource: str | None = None  # `X-RateLimit-Resource` of the last answer
    token_headers: TokenHeaders = field(default_factory=TokenHeaders)
    sleep: Sleep = asyncio.sleep
    _blocked: RateLimited | None = None

    def __post_init__(self) -> None:
        self.budget = RateBudget(wait_left=self.max_wait)

    async def get(self, path: str, params: dict[str, str | int] | None = None) -> tuple[Any, httpx.Response]:
        """One GET (retried after a rate limit it may wait out); the body parsed as JSON."""
        url = path if path.startswith("https://") or path.startswith("http://") else self.base_url + path
        source = f"GET {url}"
        for attempt in range(1, MAX_ATTEMPTS + 1):
            self._refuse_if_blocked(source)
            await self.budget.wait_turn(self.sleep)
            self._refuse_if_blocked(source)  # another request may have been refused during the pause
            response = await self._send(url, params, source)
            self._note(response)
            if response.is_success:
                try:
                    return parse_json(response), response
                except OciError as exc:
                    raise ApiError(exc.detail, source, response.status_code) from None
            wait = rate_limit_wait(response)
            if wait is None:
                raise self._error(response, source)
            if attempt == MAX_ATTEMPTS or not self.budget.pause(wait):
                self._blocked = RateLimited(self._limit_detail(response, wait), source, response.status_code)
                self.budget.skipped.append(source)
                raise self._blocked
        raise AssertionError("unreachable")  # pragma: no cover

    def _refuse_if_blocked(self, source: str) -> None:
        if self._blocked is not None:
            raise RateLimited(self._blocked.detail, source, self._blocked.status)

    async def pages(self, path: str, params: dict[str, str | int]) -> list[Any]:
        """Every entry of a paginated list, following `Link: rel="next"` on the API's origin only."""
        entries: list[Any] = []
        url: str | None = self.base_url + path
        query: dict[str, str | int] | None = {**params, "per_page": PER_PAGE}
        seen: set[str] = set()
        while url is not None:
            if url in seen or len(seen) >= MAX_PAGES:
                raise ApiError(f"listing cut after {len(seen)} pages (a loop or the {MAX_PAGES}-page cap)", url)
            seen.add(url)
            body, response = await self.get(url, query)
            if not isinstance(body, list):
                raise ApiError(f"unexpected answer from GET {response.request.url.path}: not a list", url)
            entries.extend(body)
            url, query = self._next(response), None
        return entries

    async def _send(self, url: str, params: dict[str, str | int] | None, source: str) -> httpx.Response:
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
        }
        query: list[tuple[str, str | int | float | bool | None]] | None = list((params or {}).items()) or None
        try:
            return await self.pool.request(
                "GET", url, headers=headers, params=query, cap=LISTING_CAP, deadline=self.timeout
            )
        except OciError as exc:
            raise ApiError(self.redact(exc.detail), source) from None
        except httpx.HTTPError as exc:
            raise ApiError(self.redact(describe_transport_error(exc, self.timeout)), source) from None

    def _next(self, response: httpx.Response) -> str | None:
        link = response.headers.get("link")
        target = parse_link_next(link) if link else None
        if target is None:
            return None
        if origin_of(target) != origin_of(self.base_url):
            raise ApiError("pagination link points outside the GitHub API; not followed", str(response.request.url))
        return target

    def describe_rate_limit(self) -> str | None:
        """The rate limit as GitHub last reported it, for the run summary."""
        budget = self.budget
        if budget.remaining is None:
            return None
        limit = f" of {budget.limit:,}" if budget.limit is not None else ""
        reset = f", resets {budget.reset:%H:%M} UTC" if budget.reset is not None else ""
        waited = f"; waited {budget.waited:.0f} s for rate limits" if budget.waited else ""
        resource = self.resource or "core"
        return f"GitHub API rate limit: {budget.remaining:,}{limit} requests left ({resource}{reset}){waited}"

    def _note(self, response: httpx.Response) -> None:
        headers = response.headers
        self.budget.observe(headers)
        self.resource = headers.get("x-ratelimit-resource", self.resource)
        if response.is_success and not self.token_headers.seen:
            self.token_headers = TokenHeaders(True, _scopes(headers.get("x-oauth-scopes")), _expiry(headers))

    def _error(self, response: httpx.Response, source: str) -> ApiError:
        status, path = response.status_code, response.request.url.path
        accepted = response.headers.get("x-accepted-oauth-scopes", "").strip() or None
        hints = {401: "the token was rejected", 403: "the token lacks a permission", 404: "not found"}
        hint = hints.get(status)
        detail = f"HTTP {status} from GET {path}" + (f" ({hint})" if hint else "")
        return ApiError(detail, source, status, accepted if accepted and len(accepted) < 100 else None)

    def _limit_detail(self, response: httpx.Response, wait: float) -> str:
        kind = "secondary rate limit" if is_secondary_limit(response) else "rate limit"
        return (
            f"skipped: GitHub {kind} (HTTP {response.status_code}); it resets in {wait:.0f} s, more than the "
            f"{self.budget.wait_left:.0f} s left of max_rate_limit_wait"
        )


def rate_limit_wait(response: httpx.Response, now: float | None = None) -> float | None:
    """Seconds to wait before retrying, or None when the answer is no rate limit.

    GitHub's rule: `Retry-After` when sent; else, for an exhausted primary
    limit, until `X-RateLimit-Reset` (which otherwise describes the primary
    window, not a secondary limit); else a minute."""
    status, headers = response.status_code, response.headers
    primary = headers.get("x-ratelimit-remaining") == "0"
    if status != 429 and not (status == 403 and (primary or is_secondary_limit(response))):
        return None
    wait = retry_after(headers, now) if primary else retry_after_header(headers, now)
    return SECONDARY_DEFAULT_WAIT if wait is None else wait


def is_secondary_limit(response: httpx.Response) -> bool:
    return b"secondary rate limit" in response.content[: ERROR_CAP.size].lower()


def _scopes(header: str | None) -> tuple[str, ...] | None:
    if header is None:
        return None
    return tuple(s.strip() for s in header.split(",")[:50] if s.strip())


def _expiry(headers: httpx.Headers) -> datetime | None:
    """`GitHub-Authentication-Token-Expiration: 2026-12-31 00:00:00 UTC`."""
    text = headers.get("github-authentication-token-expiration", "").strip()
    for pattern in ("%Y-%m-%d %H:%M:%S UTC", "%Y-%m-%d %H:%M:%S %z"):
        try:
            parsed = datetime.strptime(text[:40], pattern)
        except ValueError:
            continue
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None
