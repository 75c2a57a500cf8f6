"""ZohoTokens: one shared access token in Redis, refreshed under a lock, within Zoho's refresh limits."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis
from pydantic import SecretStr

from workers.crm.zoho_auth import LOCAL_REUSE_S, REFRESH_BUDGET, ZohoTokens, token_lifetime_s
from workers.errors import CrmAuthError, CrmRateLimitedError, CrmTransientError


class FakeAccounts:
    """Zoho's accounts server: counts refresh grants and answers with what the test sets."""

    def __init__(self) -> None:
        self.grants: list[dict[str, str]] = []
        self.answer: Callable[[int], httpx.Response] = lambda n: httpx.Response(
            200, json={"access_token": f"1000.token{n}", "expires_in": 3600, "api_domain": "x", "token_type": "Bearer"}
        )

    async def handle(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/oauth/v2/token"
        await asyncio.sleep(0.01)  # let concurrent callers pile up on the lock
        self.grants.append(dict(httpx.QueryParams(request.content.decode())))
        return self.answer(len(self.grants))


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def tokens(redis: ArqRedis, accounts: FakeAccounts, clock: Clock) -> ZohoTokens:
    http = httpx.AsyncClient(transport=httpx.MockTransport(accounts.handle))
    return ZohoTokens(
        redis,
        http,
        accounts_url="https://accounts.example",
        client_id="cid",
        client_secret=SecretStr("client-secret-value"),
        refresh_token=SecretStr("refresh-token-value"),
        clock=clock,
    )


async def test_grant_sends_the_refresh_form_once(redis: ArqRedis) -> None:
    accounts, clock = FakeAccounts(), Clock()
    source = tokens(redis, accounts, clock)

    assert await source.get() == "1000.token1"
    assert await source.get() == "1000.token1"
    assert accounts.grants == [
        {
            "grant_type": "refresh_token",
            "client_id": "cid",
            "client_secret": "client-secret-value",
            "refresh_token": "refresh-token-value",
        }
    ]


async def test_many_workers_share_one_token(redis: ArqRedis) -> None:
    accounts, clock = FakeAccounts(), Clock()
    workers = [tokens(redis, accounts, clock) for _ in range(6)]

    got = await asyncio.gather(*(w.get() for w in workers))

    assert set(got) == {"1000.token1"}
    assert len(accounts.grants) == 1


async def test_refresh_near_expiry_only(redis: ArqRedis) -> None:
    accounts, clock = FakeAccounts(), Clock()
    source = tokens(redis, accounts, clock)
    await source.get()

    clock.now += 3600 - 121
    assert await source.get() == "1000.token1"
    clock.now += 2
    assert await source.get() == "1000.token2"


async def test_invalid_token_refreshes_once_across_workers(redis: ArqRedis) -> None:
    accounts, clock = FakeAccounts(), Clock()
    first, second = tokens(redis, accounts, clock), tokens(redis, accounts, clock)
    stale = await first.get()

    renewed = await asyncio.gather(first.refresh(stale=stale), second.refresh(stale=stale))

    assert list(renewed) == ["1000.token2", "1000.token2"]
    assert len(accounts.grants) == 2


async def test_the_token_is_reused_locally_for_a_few_seconds_then_read_again(redis: ArqRedis) -> None:
    accounts, clock = FakeAccounts(), Clock()
    first, second = tokens(redis, accounts, clock), tokens(redis, accounts, clock)
    stale = await first.get()
    assert await second.get() == stale
    await first.refresh(stale=stale)  # first's token was refused: it refreshes and uses the new one at once
    assert await first.get() == "1000.token2"

    # second reads Redis only every LOCAL_REUSE_S: no round trip per call, and not even when the key is gone.
    await redis.delete(*await redis.keys("crmflow:zoho:token:*"))
    assert await second.get() == stale
    clock.now += LOCAL_REUSE_S
    assert await second.get() == "1000.token3"  # read again: gone, so refreshed
    assert len(accounts.grants) == 3


async def test_a_local_token_near_its_expiry_is_not_reused(redis: ArqRedis) -> None:
    accounts, clock = FakeAccounts(), Clock()
    source = tokens(redis, accounts, clock)
    await source.get()
    clock.now += 3600 - 121
    assert await source.get() == "1000.token1"
    clock.now += 2  # within LOCAL_REUSE_S of the last read, but now within the refresh margin
    assert await source.get() == "1000.token2"


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (httpx.Response(200, json={"error": "invalid_code"}), CrmAuthError),
        (httpx.Response(200, json={"token_type": "Bearer"}), CrmAuthError),
        (
            httpx.Response(400, json={"error": "Access Denied", "error_description": "too many", "status": "failure"}),
            CrmRateLimitedError,
        ),
        (httpx.Response(502), CrmTransientError),
    ],
    ids=["revoked", "no-access-token", "throttled", "accounts-down"],
)
async def test_refused_grants(redis: ArqRedis, response: httpx.Response, error: type[Exception]) -> None:
    accounts, clock = FakeAccounts(), Clock()
    accounts.answer = lambda n: response

    with pytest.raises(error):
        await tokens(redis, accounts, clock).get()


async def test_refresh_budget_stays_below_zohos_throttle(redis: ArqRedis) -> None:
    accounts, clock = FakeAccounts(), Clock()
    source = tokens(redis, accounts, clock)
    stale = None
    for _ in range(REFRESH_BUDGET):
        stale = await source.refresh(stale=stale)

    with pytest.raises(CrmRateLimitedError) as raised:
        await source.refresh(stale=stale)

    budget_ttl = await redis.ttl(next(iter(await redis.keys("crmflow:zoho:token:*:refreshes"))))
    assert 0 < budget_ttl <= 600  # the window always expires, whatever happened between commands
    assert len(accounts.grants) == REFRESH_BUDGET
    assert raised.value.retry_after_s is not None and raised.value.retry_after_s > 0


@pytest.mark.parametrize(
    ("grant", "seconds"),
    [
        ({"expires_in": 3600}, 3600.0),
        ({"expires_in": 3600000, "expires_in_sec": 3600}, 3600.0),
        ({}, 3600.0),
        ({"expires_in": "soon"}, 3600.0),
    ],
)
def test_token_lifetime(grant: dict[str, Any], seconds: float) -> None:
    assert token_lifetime_s(grant) == seconds


async def test_secrets_never_logged(redis: ArqRedis, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    accounts, clock = FakeAccounts(), Clock()

    await tokens(redis, accounts, clock).get()

    assert caplog.records
    for secret in ("client-secret-value", "refresh-token-value", "1000.token1"):
        assert secret not in caplog.text


async def test_the_token_is_shared_only_with_the_credentials_it_was_issued_to(redis: ArqRedis) -> None:
    """Another client secret (or refresh token) never gets the cached token: its own grant is put to Zoho."""
    accounts, clock = FakeAccounts(), Clock()
    first = await tokens(redis, accounts, clock).shared()
    again = await tokens(redis, accounts, clock).shared()
    accounts.answer = lambda n: httpx.Response(200, json={"error": "invalid_client"})
    wrong = ZohoTokens(
        redis,
        httpx.AsyncClient(transport=httpx.MockTransport(accounts.handle)),
        accounts_url="https://accounts.example",
        client_id="cid",
        client_secret=SecretStr("another-secret-value"),
        refresh_token=SecretStr("refresh-token-value"),
        clock=clock,
    )

    with pytest.raises(CrmAuthError) as refused:
        await wrong.get()

    assert (first.cached, first.api_domain, again.cached, again.access_token) == (False, "x", True, "1000.token1")
    assert refused.value.details == {"error": "invalid_client", "status": 200}
    assert len(accounts.grants) == 2
    assert int(await redis.get(next(iter(await redis.keys("crmflow:zoho:token:*:refreshes"))))) == 2
    stored = [key for key in await redis.keys("crmflow:zoho:token:*") if not key.endswith(b":refreshes")]
    assert len(stored) == 1 and b"secret" not in stored[0]
