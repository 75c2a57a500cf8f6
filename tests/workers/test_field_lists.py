"""Field lists: cached in real Redis for a day, read from the CRM on a miss or with refresh, bounded retries."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import httpx
import pytest
from arq.connections import ArqRedis
from pydantic import SecretStr

from sandbox.app import create_app as create_sandbox
from sandbox.config import SandboxConfig
from workers import keys
from workers.config import WorkerConfig
from workers.crm.hubspot import HubSpotClient
from workers.errors import CrmAuthError, CrmNotSentError, CrmRateLimitedError, CrmTransientError
from workers.field_lists import (
    FieldLists,
    cached,
    configured_field_lists,
    decode,
    encode,
    read_field_lists,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
ZOHO = ("zoho", "Appointments__s")
HUBSPOT = ("hubspot", "appointments")


class FakeZoho:
    """Stands for a ZohoClient: its field_names answers from a script of results (names or errors)."""

    def __init__(self, *answers: frozenset[str] | Exception) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def field_names(self, module: str) -> frozenset[str]:
        self.calls += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def no_sleep(waits: list[float]) -> Callable[[float], Awaitable[None]]:
    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    return sleep


def test_the_cached_form_round_trips_and_anything_else_reads_as_a_miss() -> None:
    assert decode(encode(frozenset({"b", "a"}), NOW)) == (frozenset({"a", "b"}), NOW)
    for raw in (None, b"{", b'{"fields": "a", "read_at": "2026-11-30T12:00:00+00:00"}', b'{"fields": []}'):
        assert decode(raw) is None
    assert decode(b'{"fields": [], "read_at": "2026-11-30T12:00:00"}') is None  # no offset


async def test_a_miss_reads_the_crm_and_caches_the_list_for_a_day(redis: ArqRedis) -> None:
    zoho = FakeZoho(frozenset({"Appointment_Name", "Visit_Priority"}))

    read = await read_field_lists(redis, {"zoho": zoho}, [ZOHO], now=NOW)

    [field_list] = read.lists
    assert (field_list.fields, field_list.cached, field_list.read_at) == (
        frozenset({"Appointment_Name", "Visit_Priority"}),
        False,
        NOW,
    )
    assert read.extra_fields() == {ZOHO: frozenset({"Appointment_Name", "Visit_Priority"})}
    key = keys.field_list(*ZOHO)
    assert key == "crmflow:fields:zoho:Appointments__s"
    assert 86_000 < await redis.ttl(key) <= 86_400
    again = await read_field_lists(redis, {"zoho": zoho}, [ZOHO], now=NOW)
    assert again.lists[0].cached and again.lists[0].fields == field_list.fields
    assert zoho.calls == 1  # a second reader (another worker starting) found the cached copy


async def test_refresh_reads_the_crm_again_and_replaces_the_cached_copy(redis: ArqRedis) -> None:
    await redis.set(keys.field_list(*ZOHO), encode(frozenset({"Old"}), NOW), ex=60)
    zoho = FakeZoho(frozenset({"New"}))

    read = await read_field_lists(redis, {"zoho": zoho}, [ZOHO], now=NOW, refresh=True)

    assert read.lists[0].fields == {"New"} and not read.lists[0].cached
    hit = await cached(redis, *ZOHO)
    assert hit is not None and hit.fields == {"New"}
    assert await redis.ttl(keys.field_list(*ZOHO)) > 60


async def test_a_full_limiter_or_a_429_is_tried_again_within_the_bound(redis: ArqRedis) -> None:
    waits: list[float] = []
    full = CrmNotSentError("full", code="LIMITER_FULL", retry_after_s=0.5)
    zoho = FakeZoho(full, CrmRateLimitedError("429", code="TOO_MANY_REQUESTS"), frozenset({"A"}))

    read = await read_field_lists(redis, {"zoho": zoho}, [ZOHO], now=NOW, sleep=no_sleep(waits))

    assert read.lists[0].fields == {"A"}
    assert waits == [0.5, 1.0]


async def test_a_crm_down_or_in_error_is_not_waited_for(redis: ArqRedis) -> None:
    waits: list[float] = []
    zoho = FakeZoho(CrmTransientError("down", code="CONNECTION"))

    read = await read_field_lists(redis, {"zoho": zoho}, [ZOHO], now=NOW, sleep=no_sleep(waits))

    assert [str(u) for u in read.unavailable] == [
        "zoho/Appointments__s: zoho could not be reached or failed (CONNECTION)"
    ]
    assert waits == []


async def test_past_the_bound_the_list_is_unavailable_and_says_why(redis: ArqRedis) -> None:
    full = CrmNotSentError("full", code="LIMITER_PAUSED", retry_after_s=30)
    read = await read_field_lists(redis, {"zoho": FakeZoho(full)}, [ZOHO], now=NOW, wait_s=5, sleep=no_sleep([]))

    assert read.lists == ()
    [missing] = read.unavailable
    assert missing.why == "unreachable"
    assert str(missing) == (
        "zoho/Appointments__s: the shared zoho limiter had no room for the call within 5 s (LIMITER_PAUSED)"
    )
    assert await redis.exists(keys.field_list(*ZOHO)) == 0


async def test_a_refusal_is_final_at_once_and_names_the_scope(redis: ArqRedis) -> None:
    zoho = FakeZoho(CrmAuthError("m", code="OAUTH_SCOPE_MISMATCH", quoted=True))

    read = await read_field_lists(redis, {"zoho": zoho}, [ZOHO], now=NOW, sleep=no_sleep([]))

    [missing] = read.unavailable
    assert (missing.why, zoho.calls) == ("refused", 1)
    assert missing.reason == (
        "zoho refused crmflow's credentials or their scope (OAUTH_SCOPE_MISMATCH); reading it needs the scope "
        "ZohoCRM.settings.fields.READ"
    )


async def test_a_source_not_configured_and_an_unknown_target(redis: ArqRedis) -> None:
    read = await read_field_lists(redis, {}, [HUBSPOT, ("salesforce", "Leads"), ("zoho", "Leads")], now=NOW)

    assert read == FieldLists((), read.unavailable)
    [missing] = read.unavailable
    assert (missing.source, missing.why) == ("hubspot", "not_configured")
    assert "HUBSPOT_ACCESS_TOKEN" in missing.reason


async def test_a_crm_that_never_answers_is_given_up_at_the_bound(redis: ArqRedis) -> None:
    class Silent:
        async def field_names(self, module: str) -> frozenset[str]:
            await asyncio.sleep(60)
            return frozenset()

    read = await read_field_lists(redis, {"zoho": Silent()}, [ZOHO], now=NOW, wait_s=0.2)

    assert [u.why for u in read.unavailable] == ["unreachable"]
    assert read.unavailable[0].reason == "zoho did not answer within 0.2 s"


async def test_redis_down_makes_the_list_unavailable(redis_url: str) -> None:
    config = WorkerConfig(
        REDIS_URL="redis://127.0.0.1:1/0", HUBSPOT_ACCESS_TOKEN="t", HUBSPOT_API_BASE="http://127.0.0.1:1"
    )

    read = await configured_field_lists(config, now=NOW, wait_s=1)

    [missing] = read.unavailable
    assert (missing.source, missing.why) == ("hubspot", "redis")


async def test_the_real_client_against_the_sandbox(redis: ArqRedis) -> None:
    app = create_sandbox(SandboxConfig(custom_fields=("hubspot:appointments:visit_priority",)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox") as http:
        hubspot = HubSpotClient(http, api_base="http://sandbox", token=SecretStr("sandbox-hubspot-token"))
        read = await read_field_lists(redis, {"hubspot": hubspot}, [HUBSPOT], now=NOW)

    assert "visit_priority" in read.extra_fields()[HUBSPOT]


@pytest.mark.parametrize("refresh", [False, True])
async def test_configured_lists_cover_every_configured_source(redis: ArqRedis, redis_url: str, refresh: bool) -> None:
    await redis.set(keys.field_list(*HUBSPOT), encode(frozenset({"custom_one"}), NOW))
    config = WorkerConfig(REDIS_URL=redis_url, HUBSPOT_ACCESS_TOKEN="t", HUBSPOT_API_BASE="http://127.0.0.1:1")

    read = await configured_field_lists(config, now=NOW, refresh=refresh, wait_s=0.5)

    if refresh:
        assert [u.why for u in read.unavailable] == ["unreachable"]
    else:
        assert read.extra_fields() == {HUBSPOT: frozenset({"custom_one"})}
