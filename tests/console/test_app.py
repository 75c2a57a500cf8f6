"""The console's app on real Redis: every route behind the token, login sessions, CSRF, headers, JSON or HTML."""

from __future__ import annotations

import httpx
import pytest
from arq.connections import ArqRedis
from starlette.routing import Route

from console.app import create_app
from console.auth import SESSION_COOKIE
from console.middleware import CSP
from console.pages.login import safe_next
from tests.console.conftest import BEARER, HTML, JSON, TOKEN, console_config, csrf_of, log_in
from workers.keys import console_session

PROTECTED = [
    (route.path.replace("{letter_id}", "0123456789abcdef").replace("{event_id}", "e1"), method)
    for route in create_app(console_config("redis://127.0.0.1:6379/0")).routes
    if isinstance(route, Route) and route.path != "/login"
    for method in sorted(route.methods or ())
    if method != "HEAD"
]


def test_every_route_but_the_login_form_is_listed_as_protected() -> None:
    assert ("/deadletters", "GET") in PROTECTED
    assert ("/deadletters/replay", "POST") in PROTECTED
    assert ("/logout", "POST") in PROTECTED


@pytest.mark.parametrize(("path", "method"), PROTECTED)
async def test_every_route_needs_the_token_or_a_session(client: httpx.AsyncClient, path: str, method: str) -> None:
    anonymous = await client.request(method, path, headers=JSON)
    wrong = await client.request(method, path, headers=JSON | {"Authorization": "Bearer not-the-token"})

    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert wrong.status_code == 401


async def test_a_browser_without_a_session_is_sent_to_the_login_form(client: httpx.AsyncClient) -> None:
    page = await client.get("/deadletters?source=zoho", headers=HTML)

    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=%2Fdeadletters%3Fsource%3Dzoho"


async def test_the_bearer_token_opens_the_api(client: httpx.AsyncClient) -> None:
    answer = await client.get("/deadletters", headers=BEARER | JSON)

    assert (answer.status_code, answer.json()) == (200, [])


async def test_the_login_form_opens_a_session_in_a_strict_httponly_cookie(client: httpx.AsyncClient) -> None:
    done = await log_in(client, next_path="/deadletters?source=zoho")

    assert done.status_code == 303
    assert done.headers["location"] == "/deadletters?source=zoho"
    cookie = next(h for h in done.headers.get_list("set-cookie") if h.startswith(f"{SESSION_COOKIE}="))
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Max-Age=43200" in cookie
    assert "Path=/" in cookie
    assert TOKEN not in cookie
    assert (await client.get("/deadletters", headers=HTML)).status_code == 200


async def test_a_wrong_token_opens_nothing_and_says_so(client: httpx.AsyncClient) -> None:
    done = await log_in(client, token="not-the-token")

    assert done.status_code == 401
    assert "not the console&#39;s token" in done.text
    assert SESSION_COOKIE not in done.cookies
    assert (await client.get("/deadletters", headers=JSON)).status_code == 401


async def test_the_login_form_refuses_a_post_without_its_csrf_token(client: httpx.AsyncClient) -> None:
    await client.get("/login")  # the nonce cookie alone is not enough: the form's token must match it

    done = await client.post("/login", data={"token": TOKEN, "csrf": "forged"}, headers=HTML)

    assert done.status_code == 403
    assert SESSION_COOKIE not in done.cookies


async def test_logins_are_throttled_after_repeated_failures(client: httpx.AsyncClient) -> None:
    for _ in range(5):
        assert (await log_in(client, token="wrong-token-guess")).status_code == 401

    blocked = await log_in(client)

    assert blocked.status_code == 429
    assert "Too many failed logins" in blocked.text


async def test_wrong_bearer_tokens_are_throttled_with_retry_after(client: httpx.AsyncClient) -> None:
    wrong = {"Authorization": "Bearer wrong-token-guess"} | JSON
    for _ in range(5):
        assert (await client.get("/events", headers=wrong)).status_code == 401

    blocked = await client.get("/events", headers=BEARER | JSON)

    assert blocked.status_code == 429
    assert 1 <= int(blocked.headers["retry-after"]) <= 60
    assert "too many wrong tokens" in blocked.json()["error"]
    assert (await log_in(client)).status_code == 429  # the login form counts the same failures


async def test_logging_out_ends_the_session_for_good(client: httpx.AsyncClient, redis: ArqRedis) -> None:
    await log_in(client)
    cookie = client.cookies[SESSION_COOKIE]
    csrf = await csrf_of(client)

    done = await client.post("/logout", data={"csrf": csrf}, headers=HTML)

    assert (done.status_code, done.headers["location"]) == (303, "/login")
    assert await redis.keys(console_session("*")) == []
    # The old cookie, replayed by whoever kept it, opens nothing any more.
    client.cookies.set(SESSION_COOKIE, cookie)
    assert (await client.get("/deadletters", headers=JSON)).status_code == 401


async def test_a_session_ends_when_its_redis_key_expires(client: httpx.AsyncClient, redis: ArqRedis) -> None:
    await log_in(client)
    (key,) = await redis.keys(console_session("*"))
    assert 43_100 < await redis.ttl(key) <= 43_200

    await redis.delete(key)

    assert (await client.get("/deadletters", headers=JSON)).status_code == 401


@pytest.mark.parametrize("path", ["/deadletters/replay", "/deadletters/purge", "/logout"])
async def test_a_session_post_without_its_csrf_token_is_refused(client: httpx.AsyncClient, path: str) -> None:
    await log_in(client)

    missing = await client.post(path, data={"id": "x"}, headers=HTML)
    forged = await client.post(path, data={"id": "x", "csrf": "forged"}, headers=HTML)

    assert (missing.status_code, forged.status_code) == (403, 403)
    assert "CSRF" in missing.text


async def test_a_session_post_from_another_origin_is_refused(client: httpx.AsyncClient) -> None:
    await log_in(client)
    csrf = await csrf_of(client)

    done = await client.post(
        "/deadletters/purge", data={"id": "x", "csrf": csrf}, headers=HTML | {"Origin": "http://evil.example"}
    )

    assert done.status_code == 403


async def test_a_bearer_post_needs_no_csrf_token(client: httpx.AsyncClient) -> None:
    done = await client.post("/deadletters/purge", data={"id": "nothing"}, headers=BEARER | JSON)

    assert (done.status_code, done.json()) == (200, {"purged": [], "missing": ["nothing"]})


async def test_every_answer_carries_the_security_headers(client: httpx.AsyncClient) -> None:
    for answer in (
        await client.get("/login"),
        await client.get("/deadletters", headers=JSON),
        await client.get("/deadletters", headers=BEARER | HTML),
        await client.get("/static/console.js"),
    ):
        assert answer.headers["content-security-policy"] == CSP
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["cache-control"] == "no-store"
    assert "'unsafe-inline'" not in CSP


async def test_pages_have_no_inline_script(client: httpx.AsyncClient) -> None:
    page = await client.get("/deadletters", headers=BEARER | HTML)

    assert '<script src="/static/console.js" defer></script>' in page.text
    assert page.text.count("<script") == 1
    assert " on" + "click=" not in page.text


async def test_the_home_page_is_the_event_list(client: httpx.AsyncClient) -> None:
    answer = await client.get("/", headers=BEARER)

    assert (answer.status_code, answer.headers["location"]) == (303, "/events")


def test_after_login_the_console_goes_only_to_its_own_paths() -> None:
    assert safe_next("/deadletters?source=zoho") == "/deadletters?source=zoho"
    for target in (None, "", "https://evil.example/", "//evil.example/", "/\\evil.example", "events"):
        assert safe_next(target) == "/events"


async def test_a_form_must_be_urlencoded_and_small(client: httpx.AsyncClient) -> None:
    wrong_type = await client.post("/deadletters/purge", json={"id": "x"}, headers=BEARER | JSON)
    too_big = await client.post("/deadletters/purge", data={"id": "x" * 300_000}, headers=BEARER | JSON)

    assert (wrong_type.status_code, too_big.status_code) == (415, 413)


async def test_a_redis_outage_is_a_503_saying_so() -> None:
    # Nothing listens on port 1: every Redis call fails at once.
    app = create_app(console_config("redis://127.0.0.1:1/0"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console.test") as http:
        api = await http.get("/deadletters", headers=BEARER | JSON)
        page = await http.get("/events", headers=BEARER | HTML)
        login = await http.post("/login", data={"token": TOKEN}, headers=HTML)

    assert (api.status_code, api.json()["error"]) == (
        503,
        "Redis is unavailable: ConnectionError; try again in a moment",
    )
    assert page.status_code == 503
    assert "Redis is unavailable" in page.text
    assert page.headers["x-frame-options"] == "DENY"
    assert login.status_code == 403  # no login cookie: refused before Redis is asked
