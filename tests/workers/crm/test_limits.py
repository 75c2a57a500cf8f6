"""The shared CRM limiter on real Redis: caps across instances, crash-safe slots, shared pauses, windows, counts."""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import httpx
import pytest
from arq.connections import ArqRedis
from pydantic import SecretStr

from workers import keys
from workers.crm.hubspot import HubSpotClient
from workers.crm.limits import (
    CallCounter,
    HubSpotLimiter,
    ZohoLimiter,
    call_kind,
    crm_calls,
    edition_concurrency,
    reserving,
    zoho_is_heavy,
)
from workers.errors import CrmRateLimitedError
from workers.queue import connect_queue

TODAY = datetime.now(UTC).date()


def test_calls_are_classified_by_method_and_path() -> None:
    assert call_kind("GET", "/crm/v7/Appointments__s/1") == "read"
    assert call_kind("GET", "/crm/v7/Appointments__s?sort_by=Modified_Time&page=2") == "read"
    assert call_kind("POST", "/crm/v7/Appointments_Rescheduled_History__s") == "write"
    assert call_kind("POST", "/crm/v7/actions/watch") == "watch"
    assert call_kind("PATCH", "/crm/v7/actions/watch?channel_ids=1") == "watch"
    assert call_kind("GET", "/crm/v7/Appointments__s/search?criteria=x") == "search"
    assert call_kind("POST", "/crm/v7/coql") == "search"
    assert call_kind("POST", "/crm/objects/2026-03/appointments/search") == "search"
    assert call_kind("POST", "/crm/objects/2026-03/appointments/batch/read") == "read"
    assert call_kind("POST", "/crm/objects/2026-03/notes") == "write"


def test_heavy_zoho_calls_are_sorted_listings_searches_and_bulk_writes() -> None:
    assert zoho_is_heavy("GET", "/crm/v7/Appointments__s?sort_by=Modified_Time&sort_order=asc")
    assert zoho_is_heavy("GET", "/crm/v7/Appointments__s?cvid=5")
    assert zoho_is_heavy("POST", "/crm/v7/coql")
    assert zoho_is_heavy("GET", "/crm/v7/Appointments__s/search?word=x")
    assert zoho_is_heavy("POST", "/crm/v7/Appointments__s", {"data": [{}] * 11})
    assert not zoho_is_heavy("POST", "/crm/v7/Appointments__s", {"data": [{}] * 10})
    assert not zoho_is_heavy("GET", "/crm/v7/Appointments__s/1")
    assert not zoho_is_heavy("GET", "/crm/v7/Appointments__s?page=2")


def test_editions_set_the_default_cap() -> None:
    caps = [edition_concurrency(e) for e in ("free", "standard", "professional", "enterprise", "ultimate")]
    assert caps == [5, 10, 15, 20, 25]


@pytest.fixture
async def connections(redis_url: str, redis: ArqRedis) -> AsyncIterator[list[ArqRedis]]:
    """Four connections of their own, as four worker processes would have."""
    opened = [connect_queue(redis_url) for _ in range(4)]
    try:
        yield opened
    finally:
        for connection in opened:
            await connection.aclose()


class InFlight:
    """A fake CRM call that records how many calls overlap."""

    def __init__(self, status: int = 200, hold_s: float = 0.02, also: InFlight | None = None) -> None:
        self.now = self.most = self.total = 0
        self.status = status
        self.hold_s = hold_s
        self.also = also  # counts these calls too (e.g. every call, of which these are some)

    def request(self) -> Callable[[], Awaitable[httpx.Response]]:
        async def call() -> httpx.Response:
            counters = [self] if self.also is None else [self, self.also]
            for counter in counters:
                counter.now += 1
                counter.total += 1
                counter.most = max(counter.most, counter.now)
            await asyncio.sleep(self.hold_s)
            for counter in counters:
                counter.now -= 1
            return httpx.Response(self.status)

        return call


def zoho(redis: ArqRedis, concurrency: int, max_wait_s: float = 20, lease_s: float = 30) -> ZohoLimiter:
    return ZohoLimiter(redis, "org", concurrency=concurrency, lease_s=lease_s, max_wait_s=max_wait_s)


async def test_zoho_limiters_on_four_connections_never_pass_the_cap(connections: list[ArqRedis]) -> None:
    limiters = [zoho(connection, 3) for connection in connections]
    crm = InFlight()

    await asyncio.gather(
        *(limiters[i % 4].call("GET", f"/crm/v7/Appointments__s/{i}", crm.request()) for i in range(40))
    )

    assert crm.total == 40
    assert crm.most == 3


async def test_heavy_zoho_calls_have_a_sub_cap_of_ten(connections: list[ArqRedis]) -> None:
    limiters = [zoho(connection, 15) for connection in connections]
    # Each call is held long enough (0.3 s) for the calls that can run together to overlap, however slowly a
    # busy machine hands out the slots: a short hold let the first calls end before the tenth heavy one began.
    every = InFlight()  # counts the calls of both below
    heavy, light = InFlight(hold_s=0.3, also=every), InFlight(hold_s=0.3, also=every)
    sorted_listing = "/crm/v7/Appointments__s?sort_by=Modified_Time"

    await asyncio.gather(
        *(limiters[i % 4].call("GET", sorted_listing, heavy.request()) for i in range(30)),
        *(limiters[i % 4].call("GET", f"/crm/v7/Appointments__s/{i}", light.request()) for i in range(10)),
    )

    assert heavy.most == 10
    assert every.most == 15


async def test_a_slot_left_by_a_killed_worker_expires(redis: ArqRedis) -> None:
    gate = zoho(redis, 1)
    # What a worker killed mid-call leaves behind: a slot taken and never given back, with its lease.
    taken = await gate._acquire(
        keys=[gate.key("slots"), gate.key("heavy"), gate.key("pause")], args=["killed", 300, 1, 1, "0"]
    )
    assert list(taken) == [1, 0]
    crm = InFlight()

    started = time.monotonic()
    await gate.call("GET", "/crm/v7/Appointments__s/1", crm.request())

    assert crm.total == 1
    assert time.monotonic() - started >= 0.2  # it waited for the lease, and got the slot


async def test_waiting_is_bounded_and_asks_for_a_retry(redis: ArqRedis) -> None:
    holder, waiter = zoho(redis, 1), zoho(redis, 1, max_wait_s=0.1)
    slow = InFlight(hold_s=0.5)
    held = asyncio.create_task(holder.call("GET", "/crm/v7/Appointments__s/1", slow.request()))
    while slow.now == 0:  # noqa: ASYNC110 - the fake call sets it when it starts
        await asyncio.sleep(0.005)

    with pytest.raises(CrmRateLimitedError) as raised:
        await waiter.call("GET", "/crm/v7/Appointments__s/2", InFlight().request())

    assert raised.value.code == "LIMITER_FULL"
    assert (raised.value.retry_after_s or 0) >= 1
    await held


async def test_a_lone_zoho_429_pauses_nobody_but_a_run_of_them_pauses_every_worker(
    connections: list[ArqRedis],
) -> None:
    first, second = zoho(connections[0], 5), zoho(connections[1], 5, max_wait_s=0.01)
    refused, fine = InFlight(status=429), InFlight()
    pause = first.key("pause")

    # A stray 429 (one call refused among successes) sends back only its own job.
    assert (await first.call("GET", "/crm/v7/Appointments__s/1", refused.request())).status_code == 429
    assert await connections[2].pttl(pause) == -2
    await second.call("GET", "/crm/v7/Appointments__s/2", fine.request())
    assert (await first.call("GET", "/crm/v7/Appointments__s/1", refused.request())).status_code == 429
    assert await connections[2].pttl(pause) == -2

    # A second 429 before anything succeeds: the limit is reached, every worker pauses.
    await first.call("GET", "/crm/v7/Appointments__s/1", refused.request())
    assert 50 < await connections[2].pttl(pause) <= 100
    with pytest.raises(CrmRateLimitedError) as raised:
        await second.call("GET", "/crm/v7/Appointments__s/2", fine.request())
    assert raised.value.code == "LIMITER_PAUSED"
    assert fine.total == 1  # nothing spent on a certain 429

    await connections[2].delete(pause)  # the pause is over; Zoho refuses again: the pause doubles
    await first.call("GET", "/crm/v7/Appointments__s/1", refused.request())
    assert 150 < await connections[2].pttl(pause) <= 200

    await connections[2].delete(pause)  # a call succeeds: the run of 429s is over
    await first.call("GET", "/crm/v7/Appointments__s/1", fine.request())
    await first.call("GET", "/crm/v7/Appointments__s/1", refused.request())
    assert await connections[2].pttl(pause) == -2


async def test_a_429_during_a_pause_does_not_lengthen_it(redis: ArqRedis) -> None:
    gate = zoho(redis, 5)
    assert await gate.pause(None, base_s=2, cap_s=300, after_strikes=2) == 0  # a lone 429
    assert await gate.pause(None, base_s=2, cap_s=300, after_strikes=2) == 2
    assert await gate.pause(None, base_s=2, cap_s=300, after_strikes=2) <= 2  # a call sent before the pause began


def hubspot(redis: ArqRedis, per_10s: int, max_wait_s: float = 0.2) -> HubSpotLimiter:
    return HubSpotLimiter(redis, "portal", requests_per_10s=per_10s, call_timeout_s=10, max_wait_s=max_wait_s)


async def outcomes(calls: list[Awaitable[httpx.Response]]) -> list[str]:
    results = await asyncio.gather(*calls, return_exceptions=True)
    return sorted(r.code if isinstance(r, CrmRateLimitedError) else str(r.status_code) for r in results)  # type: ignore[union-attr]


async def test_the_hubspot_window_admits_at_most_n_per_10_s(connections: list[ArqRedis]) -> None:
    limiters = [hubspot(connection, 5) for connection in connections]
    crm = InFlight(hold_s=0)

    seen = await outcomes([limiters[i % 4].call("GET", f"/crm/objects/x/{i}", crm.request()) for i in range(8)])

    assert seen == ["200"] * 5 + ["LIMITER_FULL"] * 3
    with pytest.raises(CrmRateLimitedError) as raised:
        await limiters[0].call("GET", "/crm/objects/x/9", crm.request())
    assert raised.value.code == "LIMITER_FULL"
    # Retried once the oldest call leaves the window (10 s), spread over the next window.
    assert 9 <= (raised.value.retry_after_s or 0) <= 19


async def in_window(redis: ArqRedis) -> int:
    return int(await redis.zcard(keys.crm_limit("hubspot", "portal", "window")))


async def test_a_job_s_first_hubspot_call_holds_room_for_its_next(connections: list[ArqRedis]) -> None:
    job, other = hubspot(connections[0], 3), hubspot(connections[1], 3)
    crm = InFlight(hold_s=0)

    async with reserving(2):
        await job.call("GET", "/crm/objects/x/1", crm.request())  # admitted with a place held for the note
        assert await in_window(connections[2]) == 2
        # Other jobs' calls (outside this job's context) get the one place left, not the one held.
        calls = [other.call("GET", f"/crm/objects/x/{i}", crm.request()) for i in range(2, 4)]
        seen = await outcomes([asyncio.create_task(c, context=contextvars.Context()) for c in calls])
        assert seen == ["200", "LIMITER_FULL"]
        await job.call("POST", "/crm/objects/notes", crm.request())  # takes the place it held

    assert await in_window(connections[2]) == 3
    assert crm.total == 3


async def test_a_job_spends_no_call_when_the_window_cannot_take_all_of_them(connections: list[ArqRedis]) -> None:
    job, other = hubspot(connections[0], 3), hubspot(connections[1], 3)
    crm = InFlight(hold_s=0)
    await outcomes([other.call("GET", f"/crm/objects/x/{i}", crm.request()) for i in range(2)])

    with pytest.raises(CrmRateLimitedError) as raised:
        async with reserving(2):
            await job.call("GET", "/crm/objects/x/1", crm.request())

    assert raised.value.code == "LIMITER_FULL"
    assert 9 <= (raised.value.retry_after_s or 0) <= 19  # when the oldest call leaves the window
    assert (crm.total, await in_window(connections[2])) == (2, 2)  # the GET was not sent, nothing was held
    # Outside a job (the sweep, the channel upkeep) a call needs room for itself alone.
    await other.call("GET", "/crm/objects/x/9", crm.request())
    assert crm.total == 3


async def test_places_a_job_did_not_use_go_back_when_it_ends(connections: list[ArqRedis]) -> None:
    job, other = hubspot(connections[0], 3), hubspot(connections[1], 3)
    crm = InFlight(hold_s=0)

    async with reserving(3):
        await job.call("GET", "/crm/objects/x/1", crm.request())  # no change found: the job writes nothing
        assert await in_window(connections[2]) == 3

    assert await in_window(connections[2]) == 1
    seen = await outcomes([other.call("GET", f"/crm/objects/x/{i}", crm.request()) for i in range(2, 5)])
    assert seen == ["200", "200", "LIMITER_FULL"]


async def test_a_reservation_is_never_more_than_the_window(redis: ArqRedis) -> None:
    job = hubspot(redis, 2)
    crm = InFlight(hold_s=0)

    async with reserving(5):
        await job.call("GET", "/crm/objects/x/1", crm.request())  # holds the one place left
        await job.call("POST", "/crm/objects/notes", crm.request())
        with pytest.raises(CrmRateLimitedError):
            await job.call("POST", "/crm/objects/notes", crm.request())  # beyond the window: waits like any call

    assert (crm.total, await in_window(redis)) == (2, 2)


async def test_a_search_neither_reserves_nor_takes_a_reserved_place(redis: ArqRedis) -> None:
    job = hubspot(redis, 4)
    crm = InFlight(hold_s=0)

    async with reserving(2):
        await job.call("POST", "/crm/objects/2026-03/appointments/search", crm.request())
        assert await in_window(redis) == 1
        await job.call("GET", "/crm/objects/x/1", crm.request())
        assert await in_window(redis) == 3
        await job.call("POST", "/crm/objects/2026-03/appointments/search", crm.request())  # the last free place
        await job.call("POST", "/crm/objects/notes", crm.request())  # the place held for it

    assert crm.total == 4


async def test_hubspot_search_is_held_to_5_per_second(connections: list[ArqRedis]) -> None:
    limiters = [hubspot(connection, 100, max_wait_s=0.05) for connection in connections]
    crm = InFlight(hold_s=0)
    search = "/crm/objects/2026-03/appointments/search"

    seen = await outcomes([limiters[i % 4].call("POST", search, crm.request()) for i in range(7)])
    reads = await outcomes([limiters[i % 4].call("GET", f"/crm/objects/x/{i}", crm.request()) for i in range(4)])

    assert seen == ["200"] * 5 + ["LIMITER_FULL"] * 2
    assert reads == ["200"] * 4  # other calls are not held by the search limit


async def test_hubspot_s_own_smaller_limit_shrinks_the_window(redis: ArqRedis) -> None:
    gate = hubspot(redis, 100)

    async def small() -> httpx.Response:
        return httpx.Response(200, headers={"X-HubSpot-RateLimit-Max": "3", "X-HubSpot-RateLimit-Remaining": "2"})

    await gate.call("GET", "/crm/objects/x/0", small)  # its answer says the window holds 3, not 100
    seen = await outcomes([gate.call("GET", f"/crm/objects/x/{i}", small) for i in range(1, 5)])

    assert seen == ["200"] * 2 + ["LIMITER_FULL"] * 2


async def test_a_hubspot_429_pauses_every_worker_by_its_policy(connections: list[ArqRedis]) -> None:
    body = {"status": "error", "policyName": "TEN_SECONDLY_ROLLING", "message": "ten_secondly_rolling"}

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, json=body, headers={"X-HubSpot-RateLimit-Interval-Milliseconds": "10000"})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    first = HubSpotClient(http, api_base="https://api.example", token=SecretStr("t"), gate=hubspot(connections[0], 50))
    second = hubspot(connections[1], 50)

    with pytest.raises(CrmRateLimitedError):
        await first.get_appointment("1")
    with pytest.raises(CrmRateLimitedError) as raised:
        await second.call("GET", "/crm/objects/x/1", InFlight().request())

    assert raised.value.code == "LIMITER_PAUSED"
    assert 9 < (raised.value.retry_after_s or 0) <= 10
    counts = await crm_calls(connections[2], "hubspot", TODAY)
    assert (counts["read"], counts["http_429"]) == (1, 1)


async def test_calls_are_counted_per_source_and_kind(redis: ArqRedis) -> None:
    zoho_gate, hubspot_gate = zoho(redis, 5), hubspot(redis, 100)
    token = CallCounter(redis, "zoho", kind="token")
    ok = InFlight(hold_s=0)

    await zoho_gate.call("GET", "/crm/v7/Appointments__s/1", ok.request())
    await zoho_gate.call("GET", "/crm/v7/Appointments__s/1/Appointments_Rescheduled_History__s", ok.request())
    await zoho_gate.call("POST", "/crm/v7/Appointments_Rescheduled_History__s", ok.request())
    await zoho_gate.call("POST", "/crm/v7/actions/watch", ok.request())
    await token.call("POST", "/oauth/v2/token", ok.request())
    await hubspot_gate.call("POST", "/crm/objects/2026-03/appointments/search", ok.request())

    assert await crm_calls(redis, "zoho", TODAY) == {
        "read": 2,
        "write": 1,
        "token": 1,
        "search": 0,
        "watch": 1,
        "http_429": 0,
        "coalesced": 0,
    }
    assert (await crm_calls(redis, "hubspot", TODAY))["search"] == 1
