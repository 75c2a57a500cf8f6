"""Sweep paging: the pure parts (newest-first cut, HubSpot window splitting, pacing, patience) and both listings
run against the in-process sandbox, including records modified while a listing pages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from arq.connections import ArqRedis
from pydantic import SecretStr

from sandbox.app import create_app as create_sandbox
from sandbox.config import SandboxConfig
from sandbox.runtime import SandboxRuntime
from workers.crm.hubspot import HubSpotClient
from workers.crm.hubspot_models import SearchPage
from workers.crm.zoho import ZohoClient
from workers.crm.zoho_auth import ZohoTokens
from workers.errors import CrmRateLimitedError, CrmRejectedError, CrmTransientError
from workers.record import Modified, ModifiedPage
from workers.sweep_paging import (
    SearchPace,
    SearchWindow,
    hubspot_modified,
    newest_first_cut,
    next_window,
    patiently,
    zoho_modified,
)

T0 = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def mod(record_id: str, seconds: float) -> Modified:
    return Modified(record_id, at(seconds))


# --- pure ------------------------------------------------------------------------------------------------


def test_newest_first_cut_stops_at_the_first_older_record() -> None:
    kept, done = newest_first_cut([mod("a", 30), mod("b", 20), mod("c", 10), mod("d", 20)], at(20))
    assert [m.record_id for m in kept] == ["a", "b"]
    assert done

    kept, done = newest_first_cut([mod("a", 30), mod("b", 20)], at(5))
    assert len(kept) == 2 and not done


def test_each_page_starts_a_new_search_from_its_last_modified_time() -> None:
    window = SearchWindow(since=at(0))
    page = SearchPage((mod("a", 1), mod("b", 2), mod("c", 2)), total=9, next_after="3")

    following = next_window(window, page, 3)

    assert following == SearchWindow(since=at(2), after=None, boundary=frozenset({"b", "c"}))
    assert following is not None
    # The next search starts with b and c again (GTE): they are dropped, d is new.
    assert following.fresh([mod("b", 2), mod("c", 2), mod("d", 2), mod("e", 3)]) == (mod("d", 2), mod("e", 3))


def test_a_page_all_at_one_time_goes_on_with_after_and_the_last_page_ends() -> None:
    window = SearchWindow(since=at(5), boundary=frozenset({"a"}))
    tie = SearchPage((mod("a", 5), mod("b", 5)), total=5, next_after="2")

    following = next_window(window, tie, 2)

    assert following == SearchWindow(since=at(5), after="2", boundary=frozenset({"a", "b"}))
    assert next_window(window, SearchPage((mod("x", 6),), total=1, next_after=None), 2) is None


def test_a_tie_of_more_than_10000_records_is_refused() -> None:
    page = SearchPage((mod("a", 5),), total=20_000, next_after="9900")
    with pytest.raises(CrmRejectedError) as caught:
        next_window(SearchWindow(since=at(5)), page, 200)
    assert caught.value.code == "SEARCH_WINDOW_TOO_DENSE"


async def test_search_pace_keeps_searches_apart() -> None:
    now = [100.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(round(seconds, 3))
        now[0] += seconds

    pace = SearchPace(4, clock=lambda: now[0], sleep=sleep)
    await pace.wait()
    await pace.wait()
    now[0] += 1.0
    await pace.wait()

    assert slept == [0.25]


async def test_patiently_waits_out_rate_limits_and_transient_errors_then_gives_up() -> None:
    slept: list[float] = []
    answers: list[Exception | str] = [CrmRateLimitedError("429", retry_after_s=3.0), CrmTransientError("502"), "ok"]

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def call() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert await patiently(call, sleep) == ("ok", 3)
    assert slept == [3.0, 2.0]

    async def failing() -> str:
        raise CrmTransientError("down")

    with pytest.raises(CrmTransientError):
        await patiently(failing, sleep)


# --- against the sandbox ---------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def sandbox(request: pytest.FixtureRequest) -> AsyncIterator[tuple[httpx.AsyncClient, SandboxRuntime, Clock]]:
    clock = Clock()
    config = SandboxConfig(**getattr(request, "param", {}))
    app = create_sandbox(config, clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox") as http:
        yield http, app.state.runtime, clock


def zoho_client(redis: ArqRedis, http: httpx.AsyncClient) -> ZohoClient:
    tokens = ZohoTokens(
        redis,
        http,
        accounts_url="http://sandbox",
        client_id="sandbox-client-id",
        client_secret=SecretStr("sandbox-client-secret"),
        refresh_token=SecretStr("sandbox-refresh-token"),
    )
    return ZohoClient(http, api_domain="http://sandbox", tokens=tokens)


async def _no_sleep(seconds: float) -> None:
    return None


async def _collect(pages: AsyncIterator[ModifiedPage]) -> list[ModifiedPage]:
    return [page async for page in pages]


def _add_zoho(runtime: SandboxRuntime, count: int, clock: Clock) -> list[str]:
    ids = []
    for n in range(count):
        clock.now += timedelta(seconds=1)
        record, _ = runtime.store.create_appointment({"Appointment_Name": f"A{n}"}, runtime.now())
        ids.append(record["id"])
    return ids


@pytest.mark.parametrize("sandbox", [{}, {"zoho_token_with_page": True}], indirect=True, ids=["alone", "page10"])
async def test_zoho_lists_past_2000_records_by_page_then_token(
    redis: ArqRedis, sandbox: tuple[httpx.AsyncClient, SandboxRuntime, Clock]
) -> None:
    http, runtime, clock = sandbox
    ids = _add_zoho(runtime, 2_150, clock)
    since = clock.now - timedelta(seconds=2_100)  # the newest 2,101 of them

    pages = await _collect(zoho_modified(zoho_client(redis, http), since, clock.now, sleep=_no_sleep))

    listed = [record.record_id for page in pages for record in page.records]
    assert listed == list(reversed(ids))[:2_101]  # newest first, each once, none older than `since`
    assert len(pages) == 11  # pages 1 to 10 by number, then one by token
    assert all(page.covered_until is None for page in pages)


async def test_hubspot_lists_a_window_oldest_first_and_nothing_shifts_when_records_change(
    redis: ArqRedis, sandbox: tuple[httpx.AsyncClient, SandboxRuntime, Clock]
) -> None:
    http, _, clock = sandbox
    since = clock.now
    ids = []
    for n in range(7):
        clock.now += timedelta(milliseconds=100)
        body = {"properties": {"hs_appointment_name": f"A{n}"}}
        ids.append((await http.post("/_sandbox/hubspot/appointments", json=body)).json()["id"])
    until = clock.now
    hubspot = HubSpotClient(http, api_base="http://sandbox", token=SecretStr("sandbox-hubspot-token"))
    pages = hubspot_modified(hubspot, since, until, 2, sleep=_no_sleep, pace=SearchPace(1000))

    first = await anext(pages)
    clock.now += timedelta(seconds=1)  # modified while the listing pages: it leaves the window
    await http.patch(f"/_sandbox/hubspot/appointments/{ids[0]}", json={"properties": {"hs_appointment_name": "x"}})
    rest = await _collect(pages)

    listed = [record.record_id for page in [first, *rest] for record in page.records]
    assert listed == ids  # in order, each once, ids[2] not skipped
    assert first.covered_until is not None and first.covered_until <= until
    assert rest[-1].covered_until is None  # the last page: the caller covers up to `until`
