"""Tokens, session cookies and the login throttle: pure checks."""

from __future__ import annotations

from console.auth import MAX_CLIENTS, LoginThrottle, bearer, cookie_value, session_of, signing_key, token_matches
from console.csrf import login_token, same_origin, session_token, valid

KEY = signing_key("a-console-token-of-some-length")


def test_bearer_reads_only_the_bearer_scheme() -> None:
    assert bearer("Bearer abc") == "abc"
    assert bearer("bearer   abc ") == "abc"
    assert bearer("Basic abc") is None
    assert bearer(None) is None


def test_token_matches_only_the_token() -> None:
    assert token_matches("secret-token", "secret-token")
    assert not token_matches("secret-token ", "secret-token")
    assert not token_matches("", "secret-token")


def test_the_signing_key_is_not_the_token_and_follows_it() -> None:
    assert KEY != b"a-console-token-of-some-length"
    assert signing_key("another-token-of-some-length") != KEY


def test_a_cookie_carries_its_session_until_it_expires() -> None:
    value = cookie_value(KEY, "sid123", expires_at=1_000)

    assert session_of(KEY, value, now=999) == "sid123"
    assert session_of(KEY, value, now=1_000) is None


def test_a_tampered_or_foreign_cookie_carries_nothing() -> None:
    value = cookie_value(KEY, "sid123", expires_at=1_000)
    sid, expires, signature = value.split(".")

    assert session_of(KEY, f"other.{expires}.{signature}", now=0) is None
    assert session_of(KEY, f"{sid}.9999.{signature}", now=0) is None
    assert session_of(signing_key("another-token-of-some-length"), value, now=0) is None
    for junk in ("", "x", "a.b", "a.b.c", "..", None):
        assert session_of(KEY, junk, now=0) is None


def test_csrf_tokens_are_per_session_and_per_login_nonce() -> None:
    assert session_token(KEY, "a") != session_token(KEY, "b")
    assert login_token(KEY, "a") != session_token(KEY, "a")
    assert valid(session_token(KEY, "a"), session_token(KEY, "a"))
    assert not valid(session_token(KEY, "a"), None)
    assert not valid(session_token(KEY, "a"), "")


def test_same_origin_accepts_no_origin_or_the_consoles_own() -> None:
    assert same_origin(None, "http", "127.0.0.1:8080")
    assert same_origin("http://127.0.0.1:8080", "http", "127.0.0.1:8080")
    assert not same_origin("http://evil.example", "http", "127.0.0.1:8080")
    assert not same_origin("null", "http", "127.0.0.1:8080")


def test_the_throttle_blocks_an_address_after_five_failures_for_the_rest_of_the_window() -> None:
    throttle = LoginThrottle(failures=5, window_s=60)
    for second in range(5):
        assert throttle.blocked_for("1.2.3.4", now=second) == 0
        throttle.failed("1.2.3.4", now=second)

    assert throttle.blocked_for("1.2.3.4", now=10) == 50
    assert throttle.blocked_for("5.6.7.8", now=10) == 0
    assert throttle.blocked_for("1.2.3.4", now=61) == 0  # the first failure has left the window


def test_a_success_clears_the_address() -> None:
    throttle = LoginThrottle(failures=2, window_s=60)
    throttle.failed("a", now=0)
    throttle.succeeded("a")
    throttle.failed("a", now=1)

    assert throttle.blocked_for("a", now=2) == 0


def test_the_throttle_forgets_addresses_whose_failures_are_old() -> None:
    throttle = LoginThrottle(failures=5, window_s=60)
    for number in range(MAX_CLIENTS):
        throttle.failed(f"10.0.{number // 256}.{number % 256}", now=0)

    throttle.failed("new", now=61)

    assert list(throttle._seen) == ["new"]
