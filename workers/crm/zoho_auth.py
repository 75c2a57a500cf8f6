"""Zoho OAuth: one access token shared by every worker through Redis, refreshed under a lock.

Zoho allows about 10 refreshes per 10 minutes per refresh token and at most 10 to 15 live access tokens
(docs/zoho-crm.md, "OAuth"), so workers never refresh on their own: the token lives in Redis,
is refreshed only near expiry or after an INVALID_TOKEN answer, and only by the worker holding the lock.
A local budget keeps refreshes below Zoho's throttle even if something keeps rejecting the token.

The token is stored under a digest of the credentials it was issued to (workers/keys.py `zoho_token_for`):
a process with another client secret or refresh token never uses it, so its first call still meets Zoho's
verdict on its credentials (`crmflow doctor --online` shares the token this way). The lock and the budget are
per account (accounts URL and client id), whatever the credentials.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from pydantic import SecretStr
from redis.asyncio import Redis

from workers import keys
from workers.crm.responses import Call, Gate, body_of, send
from workers.errors import CrmAuthError, CrmRateLimitedError, CrmTransientError

logger = logging.getLogger("crmflow.zoho.auth")

REFRESH_MARGIN_S = 120  # refresh this long before Zoho's expiry
REFRESH_BUDGET = 8  # refreshes allowed per window (Zoho's limit is 10 per 10 minutes)
REFRESH_WINDOW_S = keys.ZOHO_REFRESH_WINDOW_S
DEFAULT_EXPIRES_IN_S = 3600  # Zoho sometimes omits expires_in; its tokens live one hour
# How long a process reuses the token it last read from (or wrote to) Redis before reading it again: every API
# call needs it, and a read per call was a Redis round trip per call. A token another worker refreshed meanwhile
# reaches this process within that time, or at once when Zoho refuses the old one (`refresh(stale=...)`).
LOCAL_REUSE_S = 5.0


def token_lifetime_s(grant: dict[str, Any]) -> float:
    """Seconds the granted token lives: expires_in_sec if given (then expires_in is in ms), else expires_in."""
    for key in ("expires_in_sec", "expires_in"):
        value = grant.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return float(value)
    return float(DEFAULT_EXPIRES_IN_S)


def grant_error(grant: Any, status: int = 200) -> Exception | None:
    """The error a token answer means, or None when it carries an access token. A refused grant's `details`
    hold Zoho's error code and the HTTP status (`{"error": "invalid_client", "status": 200}`), never a secret."""
    if isinstance(grant, dict) and isinstance(grant.get("access_token"), str) and grant["access_token"]:
        return None
    error = str(grant.get("error", "no access_token")) if isinstance(grant, dict) else "not a JSON object"
    if error == "Access Denied":  # Zoho's throttle: "too many requests continuously"
        return CrmRateLimitedError("Zoho refused to refresh the token: too many requests", retry_after_s=60)
    details = {"error": error, "status": status}
    return CrmAuthError(f"Zoho refused the refresh grant: {error}", code="OAUTH_REFRESH_FAILED", details=details)


@dataclass(frozen=True)
class SharedToken:
    """The shared access token, with what Zoho's token answer said of the API domain and the granted scopes
    (None when it did not say), and whether it came from Redis (False: this call refreshed it)."""

    access_token: str
    expires_at: float
    api_domain: str | None = None
    scope: str | None = None
    cached: bool = True


class ZohoTokens:
    """Hands out the shared access token, refreshing it through Zoho's accounts server when needed."""

    def __init__(
        self,
        redis: Redis,
        http: httpx.AsyncClient,
        *,
        accounts_url: str,
        client_id: str,
        client_secret: SecretStr,
        refresh_token: SecretStr,
        request_timeout_s: float = 10.0,
        clock: Callable[[], float] = time.time,
        gate: Gate | None = None,
    ) -> None:
        self._redis = redis
        self._http = http
        self._accounts_url = accounts_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self._request_timeout_s = request_timeout_s
        self._clock = clock
        # Counts token requests (workers/crm/limits.py CallCounter): they are not API calls for Zoho's cap.
        self._gate = gate
        scope = hashlib.sha256(f"{accounts_url}|{client_id}".encode()).hexdigest()[:12]
        self.account = scope
        secrets = f"{client_secret.get_secret_value()}|{refresh_token.get_secret_value()}"
        self._key = keys.zoho_token_for(scope, hashlib.sha256(secrets.encode()).hexdigest()[:16])
        self._lock_key = keys.zoho_token_lock(scope)
        self._budget_key = keys.zoho_refreshes(scope)
        # The token last read from or written to Redis, and when (self._clock()): reused for LOCAL_REUSE_S.
        self._local: tuple[SharedToken, float] | None = None

    def _remember(self, token: SharedToken) -> SharedToken:
        self._local = (SharedToken(token.access_token, token.expires_at, token.api_domain, token.scope), self._clock())
        return token

    def _reusable(self) -> SharedToken | None:
        """The token this process read lately, while it is that recent and far enough from its expiry."""
        if self._local is None:
            return None
        token, read_at = self._local
        now = self._clock()
        if 0 <= now - read_at < LOCAL_REUSE_S and token.expires_at - now > REFRESH_MARGIN_S:
            return token
        return None

    async def _cached(self) -> SharedToken | None:
        raw = await self._redis.get(self._key)
        if raw is None:
            return None
        data = orjson.loads(raw)
        return SharedToken(
            str(data["access_token"]), float(data["expires_at"]), data.get("api_domain"), data.get("scope")
        )

    async def get(self) -> str:
        """A token valid for at least REFRESH_MARGIN_S more seconds."""
        return (await self.shared()).access_token

    async def shared(self) -> SharedToken:
        """As `get`, with what is known of the token and whether it was cached (in Redis or, for LOCAL_REUSE_S,
        in this process)."""
        local = self._reusable()
        if local is not None:
            return local
        cached = await self._cached()
        if cached is not None and cached.expires_at - self._clock() > REFRESH_MARGIN_S:
            return self._remember(cached)
        return self._remember(await self._refresh(stale=cached.access_token if cached else None))

    async def refresh(self, *, stale: str | None) -> str:
        """Replace `stale` with a new token, unless another worker already did while we waited for the lock."""
        if self._local is not None and self._local[0].access_token == stale:
            self._local = None
        return self._remember(await self._refresh(stale=stale)).access_token

    async def _refresh(self, *, stale: str | None) -> SharedToken:
        # The lock outlives the token request (bounded by the HTTP client's timeout) by a margin.
        hold_s = self._request_timeout_s + 10
        async with self._redis.lock(self._lock_key, timeout=hold_s, blocking_timeout=hold_s, sleep=0.05):
            cached = await self._cached()
            if (
                cached is not None
                and cached.access_token != stale
                and cached.expires_at - self._clock() > REFRESH_MARGIN_S
            ):
                return cached
            await self._spend_budget()
            grant, lifetime_s = await self._grant()
            token = SharedToken(
                str(grant["access_token"]),
                self._clock() + lifetime_s,
                _text(grant.get("api_domain")),
                _text(grant.get("scope")),
                cached=False,
            )
            stored = {
                "access_token": token.access_token,
                "expires_at": token.expires_at,
                "api_domain": token.api_domain,
                "scope": token.scope,
            }
            await self._redis.set(self._key, orjson.dumps(stored), px=int(lifetime_s * 1000))
            logger.info("zoho access token refreshed; valid for %ds", int(lifetime_s))
            return token

    async def _spend_budget(self) -> None:
        budget_key = self._budget_key
        # Create the window with its expiry in one command, so a crash can never leave it without one.
        await self._redis.set(budget_key, 0, ex=REFRESH_WINDOW_S, nx=True)
        used = await self._redis.incr(budget_key)
        if used > REFRESH_BUDGET:
            wait_s = await self._redis.ttl(budget_key)
            raise CrmRateLimitedError(
                f"more than {REFRESH_BUDGET} token refreshes in {REFRESH_WINDOW_S}s; holding off",
                code="REFRESH_BUDGET",
                retry_after_s=float(max(wait_s, 1)),
            )

    async def _grant(self) -> tuple[dict[str, Any], float]:
        form = {
            "grant_type": "refresh_token",
            "client_id": self._client_id,
            "client_secret": self._client_secret.get_secret_value(),
            "refresh_token": self._refresh_token.get_secret_value(),
        }
        try:
            response = await send(
                self._http,
                "POST",
                f"{self._accounts_url}/oauth/v2/token",
                what="token",
                call=Call("zoho", "refresh_token"),
                gate=self._gate,
                data=form,
            )
        except CrmTransientError as exc:
            raise CrmTransientError(
                f"token request failed: {type(exc.__cause__).__name__}", code="OAUTH_UNREACHABLE"
            ) from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise CrmTransientError(
                f"token request: HTTP {response.status_code}",
                code="OAUTH_UNAVAILABLE",
                details={"status": response.status_code},
            )
        try:
            grant = body_of(response)
        except CrmTransientError as exc:  # not JSON: say which status came with it
            raise CrmTransientError(exc.message, code=exc.code, details={"status": response.status_code}) from exc
        error = grant_error(grant, response.status_code)
        if error is not None:
            raise error
        return grant, token_lifetime_s(grant)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
