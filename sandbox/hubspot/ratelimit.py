"""HubSpot's private-app limits: a rolling 10-second window and a daily count, with their response headers. Pure.

Every authenticated API request is admitted or refused here. Admitted requests count against both limits;
refused ones (429) count against neither, so a client that backs off recovers once the oldest admitted
request leaves the window (whether HubSpot counts its 429s is UNCONFIRMED). The daily count restarts at
midnight UTC (HubSpot uses the account's time zone). Headers, as HubSpot sends them to private apps:
X-HubSpot-RateLimit-Daily, -Daily-Remaining, -Interval-Milliseconds, -Max, -Remaining (after this request).
No Retry-After: HubSpot does not document one for these 429s.

The search API (paths ending in /search) has its own limit instead, `SecondlyLimiter`: a rolling second
(5 requests by default, "five requests per second per account"); its answers carry no rate-limit headers
and it is exempt from the ten-second window, as the appointments spec says.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sandbox.hubspot.errors import RatePolicy

INTERVAL_MS = 10_000
_INTERVAL = timedelta(milliseconds=INTERVAL_MS)
_SECOND = timedelta(seconds=1)


@dataclass(frozen=True)
class RateDecision:
    """`refused` names the policy that refused the request (None = admitted); `headers` go on the answer."""

    refused: RatePolicy | None
    headers: dict[str, str]


class RateLimiter:
    def __init__(self, interval_max: int, daily_limit: int) -> None:
        self.interval_max = interval_max
        self.daily_limit = daily_limit
        self._window: deque[datetime] = deque()
        self._day: date | None = None
        self._daily_count = 0

    def reset(self) -> None:
        self._window.clear()
        self._day = None
        self._daily_count = 0

    def _roll(self, now: datetime) -> None:
        while self._window and self._window[0] <= now - _INTERVAL:
            self._window.popleft()
        if self._day != now.date():
            self._day = now.date()
            self._daily_count = 0

    def admit(self, now: datetime) -> RateDecision:
        """Count the request if both limits allow it; otherwise refuse it with the exhausted policy."""
        self._roll(now)
        if self._daily_count >= self.daily_limit:
            return RateDecision("DAILY", self.headers(now))
        if len(self._window) >= self.interval_max:
            return RateDecision("TEN_SECONDLY_ROLLING", self.headers(now))
        self._window.append(now)
        self._daily_count += 1
        return RateDecision(None, self.headers(now))

    def admit_daily(self, now: datetime) -> RatePolicy | None:
        """Count a request exempt from the ten-secondly window (search) against the daily limit only."""
        self._roll(now)
        if self._daily_count >= self.daily_limit:
            return "DAILY"
        self._daily_count += 1
        return None

    def headers(self, now: datetime, exhausted: RatePolicy | None = None) -> dict[str, str]:
        """The current headers without counting anything; `exhausted` forces that policy's remaining to 0."""
        self._roll(now)
        daily_remaining = 0 if exhausted == "DAILY" else max(0, self.daily_limit - self._daily_count)
        remaining = 0 if exhausted == "TEN_SECONDLY_ROLLING" else max(0, self.interval_max - len(self._window))
        return {
            "X-HubSpot-RateLimit-Daily": str(self.daily_limit),
            "X-HubSpot-RateLimit-Daily-Remaining": str(daily_remaining),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(INTERVAL_MS),
            "X-HubSpot-RateLimit-Max": str(self.interval_max),
            "X-HubSpot-RateLimit-Remaining": str(remaining),
        }


class SecondlyLimiter:
    """The search endpoints' own limit: `per_second` requests in any rolling second per account.

    HubSpot: "rate limited to five requests per second per account" (docs/hubspot.md, "Search"); its
    answers carry none of the rate-limit headers, and a refusal says "You have reached your secondly limit.".
    """

    def __init__(self, per_second: int) -> None:
        self.per_second = per_second
        self._window: deque[datetime] = deque()

    def reset(self) -> None:
        self._window.clear()

    def admit(self, now: datetime) -> bool:
        """Count the request and admit it, unless `per_second` were admitted within the last second."""
        while self._window and self._window[0] <= now - _SECOND:
            self._window.popleft()
        if len(self._window) >= self.per_second:
            return False
        self._window.append(now)
        return True
