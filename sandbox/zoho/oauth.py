"""Zoho Accounts' refresh-token grant and access-token bookkeeping (limits, expiry). Pure: time is passed in.

Rules (Zoho CRM "Token Validity"): an access token lives 3600 s; at most 10 access tokens per refresh
token in any 10 minutes (the 11th request gets "Access Denied"); at most 15 active access tokens per refresh
token (issuing the 16th invalidates the oldest active one). Errors come back as a JSON body with an
`error` key and, except for the throttle, HTTP 200: Zoho's SDK checks for `access_token`, not the status.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

TOKEN_LIFETIME = timedelta(seconds=3600)
THROTTLE_WINDOW = timedelta(minutes=10)
MAX_GRANTS_PER_WINDOW = 10
MAX_ACTIVE_TOKENS = 15

THROTTLED_BODY: dict[str, Any] = {
    "error_description": "You have made too many requests continuously. Please try again after some time.",
    "error": "Access Denied",
    "status": "failure",
}
# Zoho documents no status for the throttle answer; 400 marks it as a failure for clients that look.
THROTTLED_STATUS = 400


def new_access_token() -> str:
    """`1000.<32 hex>.<32 hex>`, the shape of Zoho access tokens."""
    return f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}"


class OAuthError(Exception):
    """A refused grant: the HTTP status and the JSON body to answer with."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = body


@dataclass
class IssuedToken:
    token: str
    issued_at: datetime
    expires_at: datetime
    revoked: bool = False

    def active(self, now: datetime) -> bool:
        return not self.revoked and now < self.expires_at


class TokenRegistry:
    """Issues and checks access tokens for the single configured OAuth client and refresh token."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        *,
        new_token: Callable[[], str] = new_access_token,
    ) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self._new_token = new_token
        self._tokens: dict[str, IssuedToken] = {}
        self._grants: list[datetime] = []

    def reset(self) -> None:
        self._tokens.clear()
        self._grants.clear()

    def grant(self, params: Mapping[str, str], now: datetime) -> IssuedToken:
        """Validate a refresh grant and issue a token, or raise OAuthError with Zoho's answer.

        Checks run in this order: grant_type (`unsupported_grant_type`), client id and secret
        (`invalid_client`), refresh token (`invalid_code`), then the 10-per-10-minutes throttle. Only
        issued tokens count towards the throttle.
        """
        if params.get("grant_type") != "refresh_token":
            raise OAuthError(200, {"error": "unsupported_grant_type"})
        if params.get("client_id") != self._client_id or params.get("client_secret") != self._client_secret:
            raise OAuthError(200, {"error": "invalid_client"})
        if params.get("refresh_token") != self._refresh_token:
            raise OAuthError(200, {"error": "invalid_code"})
        self._grants = [at for at in self._grants if now - at < THROTTLE_WINDOW]
        if len(self._grants) >= MAX_GRANTS_PER_WINDOW:
            raise OAuthError(THROTTLED_STATUS, dict(THROTTLED_BODY))
        self._grants.append(now)
        self._revoke_beyond_cap(now)
        issued = IssuedToken(self._new_token(), now, now + TOKEN_LIFETIME)
        self._tokens[issued.token] = issued
        return issued

    def _revoke_beyond_cap(self, now: datetime) -> None:
        active = sorted((t for t in self._tokens.values() if t.active(now)), key=lambda t: t.issued_at)
        for old in active[: max(0, len(active) - MAX_ACTIVE_TOKENS + 1)]:
            old.revoked = True

    def is_valid(self, token: str, now: datetime) -> bool:
        issued = self._tokens.get(token)
        return issued is not None and issued.active(now)

    def expire_all(self, now: datetime) -> int:
        """Make every active token expire at `now` (control API); returns how many were active."""
        active = [issued for issued in self._tokens.values() if issued.active(now)]
        for issued in active:
            issued.expires_at = now
        return len(active)

    def active_count(self, now: datetime) -> int:
        return sum(1 for issued in self._tokens.values() if issued.active(now))
