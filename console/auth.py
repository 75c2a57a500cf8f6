"""Who may use the console: the token (as a bearer header or typed into the login form) and login sessions.

A login opens a session: a random id kept in Redis for CONSOLE_SESSION_S (so that logging out ends it for
good), sent to the browser in a cookie signed with a key derived from CONSOLE_TOKEN (so that a changed token
ends every session). Every comparison of a secret is constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections import deque
from dataclasses import dataclass, field

from redis.asyncio import Redis

from workers import keys

SESSION_COOKIE = "crmflow_console"
# Failed logins from one client address allowed in a window, before the login form answers 429 for the rest of it.
LOGIN_FAILURES = 5
LOGIN_WINDOW_S = 60.0
# Addresses remembered before those with no recent failure are forgotten.
MAX_CLIENTS = 1000


def signing_key(token: str) -> bytes:
    """The key that signs cookies and CSRF tokens: derived from the token, never the token itself."""
    return hmac.new(token.encode(), b"crmflow console signing key v1", hashlib.sha256).digest()


def token_matches(given: str, token: str) -> bool:
    """Whether `given` is the console token, in constant time."""
    return hmac.compare_digest(given.encode(), token.encode())


def bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; None for no header or another scheme."""
    if header is None:
        return None
    scheme, _, value = header.strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def sign(key: bytes, text: str) -> str:
    digest = hmac.new(key, text.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def cookie_value(key: bytes, session_id: str, expires_at: int) -> str:
    """The session cookie: the session id and its expiry (epoch seconds), signed."""
    body = f"{session_id}.{expires_at}"
    return f"{body}.{sign(key, body)}"


def session_of(key: bytes, value: str | None, now: float) -> str | None:
    """The session id a cookie carries, if its signature holds and it has not expired; None otherwise."""
    if not value:
        return None
    session_id, _, rest = value.partition(".")
    expires, _, signature = rest.partition(".")
    if not (session_id and expires.isdigit() and signature):
        return None
    if not hmac.compare_digest(signature, sign(key, f"{session_id}.{expires}")):
        return None
    return session_id if int(expires) > now else None


class Sessions:
    """Open sessions, one Redis key each, expiring with their cookie."""

    def __init__(self, redis: Redis, lifetime_s: int) -> None:
        self._redis = redis
        self.lifetime_s = lifetime_s

    async def open(self) -> str:
        session_id = secrets.token_urlsafe(24)
        await self._redis.set(keys.console_session(session_id), b"1", ex=self.lifetime_s)
        return session_id

    async def is_open(self, session_id: str) -> bool:
        return bool(await self._redis.exists(keys.console_session(session_id)))

    async def close(self, session_id: str) -> None:
        await self._redis.delete(keys.console_session(session_id))


@dataclass
class LoginThrottle:
    """Failed logins per client address: after LOGIN_FAILURES in LOGIN_WINDOW_S, that address waits. Pure (takes
    `now`); kept in the console's process, which is one process."""

    failures: int = LOGIN_FAILURES
    window_s: float = LOGIN_WINDOW_S
    _seen: dict[str, deque[float]] = field(default_factory=dict)

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._seen.setdefault(client, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._seen[client]
            return deque()
        return times

    def blocked_for(self, client: str, now: float) -> float:
        """Seconds `client` must wait before trying again (0: may try now)."""
        times = self._recent(client, now)
        return times[0] + self.window_s - now if len(times) >= self.failures else 0.0

    def failed(self, client: str, now: float) -> None:
        if len(self._seen) >= MAX_CLIENTS:  # forget addresses whose failures have all left the window
            for stale in [name for name, times in self._seen.items() if times[-1] <= now - self.window_s]:
                del self._seen[stale]
        self._recent(client, now)
        self._seen.setdefault(client, deque()).append(now)

    def succeeded(self, client: str) -> None:
        self._seen.pop(client, None)
