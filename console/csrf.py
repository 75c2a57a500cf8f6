"""CSRF protection for the console's forms: a token per session (and one per login form), checked on every POST.

The session token is a signature of the session id, so it needs no storage and dies with the session. The
login form, before any session, uses a double-submit nonce: a random value in a short-lived SameSite=Strict
cookie, whose signature the form must send back.
"""

from __future__ import annotations

import hmac
import secrets

from console.auth import sign

FIELD = "csrf"
LOGIN_COOKIE = "crmflow_console_login"
LOGIN_COOKIE_S = 3600


def session_token(key: bytes, session_id: str) -> str:
    """The CSRF token every form of this session carries."""
    return sign(key, f"csrf:{session_id}")


def new_login_nonce() -> str:
    return secrets.token_urlsafe(24)


def login_token(key: bytes, nonce: str) -> str:
    """The CSRF token of a login form, bound to the nonce in its browser's login cookie."""
    return sign(key, f"login:{nonce}")


def valid(expected: str, given: str | None) -> bool:
    """Whether a form's token is the expected one (constant-time); a missing token never is."""
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


def same_origin(origin: str | None, scheme: str, host: str | None) -> bool:
    """Whether a request's Origin header (when the browser sent one) names the console itself."""
    return origin is None or (host is not None and origin in (f"{scheme}://{host}", f"https://{host}"))
