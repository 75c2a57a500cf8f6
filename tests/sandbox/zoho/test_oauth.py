"""POST /oauth/v2/token: the refresh grant, its errors, throttle, active-token cap and expiry."""

from __future__ import annotations

import re

import pytest

from tests.sandbox.harness import APPOINTMENTS, SCHEDULED, TOKEN_FORM, Harness

THROTTLED = {
    "error_description": "You have made too many requests continuously. Please try again after some time.",
    "error": "Access Denied",
    "status": "failure",
}


async def _get_with(sb: Harness, token: str) -> int:
    response = await sb.client.get(f"{APPOINTMENTS}/{SCHEDULED}", headers={"Authorization": f"Zoho-oauthtoken {token}"})
    return response.status_code


async def test_grant_with_form_body(sb: Harness) -> None:
    response = await sb.client.post("/oauth/v2/token", data=TOKEN_FORM)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "api_domain", "token_type", "expires_in"}
    assert re.fullmatch(r"1000\.[0-9a-f]{32}\.[0-9a-f]{32}", body["access_token"])
    assert body["api_domain"] == "http://sandbox"
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert await _get_with(sb, body["access_token"]) == 200


async def test_grant_with_query_string(sb: Harness) -> None:
    response = await sb.client.post("/oauth/v2/token", params=TOKEN_FORM)

    assert response.status_code == 200
    assert await _get_with(sb, response.json()["access_token"]) == 200


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"client_secret": "wrong"}, {"error": "invalid_client"}),
        ({"client_id": "someone-else"}, {"error": "invalid_client"}),
        ({"refresh_token": "1000.revoked"}, {"error": "invalid_code"}),
        ({"grant_type": "authorization_code"}, {"error": "unsupported_grant_type"}),
    ],
)
async def test_refused_grants_answer_200_with_an_error_body(
    sb: Harness, override: dict[str, str], expected: dict[str, str]
) -> None:
    response = await sb.client.post("/oauth/v2/token", data={**TOKEN_FORM, **override})

    assert response.status_code == 200
    assert response.json() == expected


async def test_eleventh_grant_within_ten_minutes_is_throttled(sb: Harness) -> None:
    for _ in range(10):
        assert (await sb.client.post("/oauth/v2/token", data=TOKEN_FORM)).status_code == 200
        sb.clock.advance(seconds=30)

    throttled = await sb.client.post("/oauth/v2/token", data=TOKEN_FORM)

    assert throttled.status_code == 400
    assert throttled.json() == THROTTLED
    sb.clock.advance(seconds=301)  # the first grant is now more than 10 minutes old
    assert "access_token" in (await sb.client.post("/oauth/v2/token", data=TOKEN_FORM)).json()


async def test_sixteenth_active_token_invalidates_the_oldest(sb: Harness) -> None:
    tokens: list[str] = []
    for batch in (10, 5):
        for _ in range(batch):
            tokens.append(await sb.new_token())
        sb.clock.advance(minutes=10, seconds=1)
    assert [await _get_with(sb, token) for token in tokens] == [200] * 15

    tokens.append(await sb.new_token())

    assert await _get_with(sb, tokens[0]) == 401
    assert [await _get_with(sb, token) for token in tokens[1:]] == [200] * 15


async def test_access_token_expires_after_expires_in(sb: Harness) -> None:
    token = await sb.new_token()

    sb.clock.advance(seconds=3599)
    assert await _get_with(sb, token) == 200
    sb.clock.advance(seconds=1)
    assert await _get_with(sb, token) == 401


async def test_control_api_expires_every_token(sb: Harness) -> None:
    first, second = await sb.new_token(), await sb.new_token()

    response = await sb.client.post("/_sandbox/tokens/expire")

    assert response.json() == {"expired": 2}
    assert [await _get_with(sb, first), await _get_with(sb, second)] == [401, 401]
    assert await _get_with(sb, await sb.new_token()) == 200
