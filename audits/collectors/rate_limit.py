"""Waiting out an API's rate limit within a budget, shared by the Docker Hub
and GitHub clients.

One `RateBudget` per target run. A rate-limited answer extends one shared
pause (`pause`), and every request waits for it (`wait_turn`) before it is
sent, so many requests limited together cost one wait, not one each: only the
extension of the pause is charged to the budget. When the budget does not
cover the extension the caller skips the work and says why. Which answers are
rate limits is each API's own rule; how long to wait is read here
(`retry_after`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

Sleep = Callable[[float], Awaitable[None]]


@dataclass
class RateBudget:
    """The rate-limit state of one run: the wait budget left, the shared pause,
    and the last limit the server announced (`X-RateLimit-*`)."""

    wait_left: float
    resume_at: float = 0.0  # monotonic time before which no request is sent
    limit: int | None = None
    remaining: int | None = None
    reset: datetime | None = None
    waited: float = 0.0
    skipped: list[str] = field(default_factory=list)

    def observe(self, headers: httpx.Headers) -> None:
        limit, remaining = header_int(headers, "x-ratelimit-limit"), header_int(headers, "x-ratelimit-remaining")
        if limit is not None:
            self.limit = limit
        if remaining is not None:
            self.remaining = remaining
        reset = header_int(headers, "x-ratelimit-reset")
        if reset is not None and 0 < reset < 2**32:
            self.reset = datetime.fromtimestamp(reset, UTC)

    def pause(self, seconds: float) -> bool:
        """Extend the shared pause to `seconds` from now if the budget allows
        it (charging only the extension); False when it does not."""
        now = time.monotonic()
        target = now + seconds
        extension = max(0.0, target - max(now, self.resume_at))
        if extension > self.wait_left:
            return False
        self.wait_left -= extension
        self.waited += extension
        self.resume_at = max(self.resume_at, target)
        return True

    async def wait_turn(self, sleep: Sleep = asyncio.sleep) -> None:
        """Sleep until the shared pause is over (no sleep when there is none)."""
        delay = self.resume_at - time.monotonic()
        if delay > 0:
            await sleep(delay)


def header_int(headers: httpx.Headers, name: str) -> int | None:
    value = headers.get(name, "").strip()
    return int(value) if value.isdigit() and len(value) <= 12 else None


def retry_after_header(headers: httpx.Headers, now: float | None = None) -> float | None:
    """Seconds `Retry-After` asks for (seconds or an HTTP date); None when it is absent or unreadable."""
    value = headers.get("retry-after", "").strip()
    if value.isdigit() and len(value) <= 12:
        return float(value)
    if value:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - (time.time() if now is None else now))
        except (TypeError, ValueError, IndexError, OverflowError):
            pass
    return None


def retry_after(headers: httpx.Headers, now: float | None = None) -> float | None:
    """Seconds to wait as the server asks: `Retry-After` (seconds or an HTTP
    date), else `X-RateLimit-Reset` (epoch seconds); None when neither says."""
    wall = time.time() if now is None else now
    asked = retry_after_header(headers, wall)
    if asked is not None:
        return asked
    reset = header_int(headers, "x-ratelimit-reset")
    return max(0.0, reset - wall) if reset is not None else None
