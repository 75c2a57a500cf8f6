"""Sweep paging: the pure parts (newest-first cut, HubSpot window splitting, pacing, patience) and both listings
run against the in-process sandbox, including records modified while a listing pages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from arq.connections import ArqRedis
from pydantic import SecretStr

from sandbox.app import create_app as create_sandbox
from sandbox.config import SandboxConfig
from sandbox.runtime import SandboxRuntime
from tests.workers.harness import sandbox_zoho
from workers.crm.hubspot import HubSpotClient
from workers.crm.hubspot_models import SearchPage
from workers.crm.zoho import ZohoClient
from workers.crm.zoho_models import ModifiedListing
from workers.errors import CrmRateLimitedError, CrmRejectedError, CrmTransientError
from workers.record import Modified, ModifiedPage
from workers.sweep_paging import (
    ZOHO_PASSES,
    ListingTooLargeError,
    ListingUnsettledError,
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


def test_the_page_the_10000_cap_cuts_is_not_the_end_of_the_window() -> None:
    # The page at offset 9,800 ends exactly at the cap: HubSpot gives it no `next`, but `total` says more follow.
    tie = tuple(mod(str(n), 5) for n in range(200))
    capped = SearchPage(tie, total=10_055, next_after=None)
    with pytest.raises(CrmRejectedError) as caught:
        next_window(SearchWindow(since=at(5), after="9800"), capped, 200)
    assert caught.value.code == "SEARCH_WINDOW_TOO_DENSE"

    # Cut by the cap with later records on it: a new search from the last time, the listing goes on.
    mixed = SearchPage((*tie[:100], mod("late", 6)), total=10_055, next_after=None)
    following = next_window(SearchWindow(since=at(5), after="9800"), mixed, 200)
    assert following == SearchWindow(since=at(6), boundary=frozenset({"late"}))

    # Exactly 10,000 results in all: the last page is the end.
    assert next_window(SearchWindow(since=at(5), after="9800"), SearchPage(tie, 10_000, None), 200) is None


async def test_a_hubspot_listing_never_ends_complete_at_the_cap() -> None:
    # 10,050 appointments at one instant (an import), then 5 later ones; the search caps offsets at 10,000.
    records = [mod(f"{n:05}", 5) for n in range(10_050)] + [mod(f"late{n}", 6 + n) for n in range(5)]

    class Capped:
        async def search_modified(
            self, since: datetime, until: datetime, *, after: str | None = None, limit: int = 200
        ) -> SearchPage:
            found = [r for r in records if since <= r.modified_time <= until]
            start = int(after or 0)
            end = min(start + limit, len(found), 10_000)
            more = end < min(len(found), 10_000)
            return SearchPage(tuple(found[start:end]), len(found), str(end) if more else None)

    pages = hubspot_modified(Capped(), at(0), at(60), sleep=_no_sleep, pace=SearchPace(1e9))  # type: ignore[arg-type]
    with pytest.raises(CrmRejectedError) as caught:
        await _collect(pages)
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

    pages = await _collect(zoho_modified(sandbox_zoho(redis, http), since, clock.now, sleep=_no_sleep))

    listed = [record.record_id for page in pages for record in page.records]
    assert listed == list(reversed(ids))[:2_101]  # newest first, each once, none older than `since`
    assert len(pages) == 22  # pages 1 to 10 by number, then one by token; then all again, finding nothing new
    assert all(page.covered_until is None for page in pages) and not any(page.records for page in pages[11:])


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


async def test_zoho_lists_again_and_finds_a_record_a_deletion_moved_onto_a_page_already_read(
    redis: ArqRedis, sandbox: tuple[httpx.AsyncClient, SandboxRuntime, Clock]
) -> None:
    http, runtime, clock = sandbox
    ids = _add_zoho(runtime, 7, clock)  # newest first: ids[6] .. ids[0], pages of 2
    since = clock.now - timedelta(seconds=6)  # ids[0]'s time: the seeded appointments are older
    pages = zoho_modified(sandbox_zoho(redis, http), since, clock.now, 2, sleep=_no_sleep)

    first = await anext(pages)  # ids[6], ids[5]
    assert runtime.store.delete_appointment(ids[6])  # ids[4] moves up onto page 1, already read
    rest = await _collect(pages)

    listed = [record.record_id for page in [first, *rest] for record in page.records]
    assert sorted(listed) == sorted(ids)  # ids[4] too, each once
    # Three passes of four pages (the fourth meets an older record): the second finds ids[4], the third nothing.
    assert len(rest) + 1 == 3 * 4
    assert [record.record_id for page in rest[3:7] for record in page.records] == [ids[4]]
    assert not any(page.records for page in rest[7:])


class ChangingZoho:
    """A Zoho whose every listing shows a record (modified long ago) that the listings before it did not."""

    def __init__(self) -> None:
        self.listings = 0

    async def list_modified(
        self, *, page: int | None = None, page_token: str | None = None, per_page: int = 200
    ) -> ModifiedListing:
        if page == 1:
            self.listings += 1
        records = [mod(f"{page}", 100 - (page or 0)), mod(f"shown-{self.listings}-{page}", 50 - (page or 0))]
        return ModifiedListing(tuple(records), more_records=page == 1, next_page_token=None)


async def test_a_zoho_listing_that_keeps_changing_yields_what_it_found_then_fails() -> None:
    zoho = ChangingZoho()
    pages = []
    with pytest.raises(ListingUnsettledError):
        async for page in zoho_modified(zoho, at(0), at(200), 2, sleep=_no_sleep):  # type: ignore[arg-type]
            pages.append(page)

    assert zoho.listings == ZOHO_PASSES
    listed = [record.record_id for page in pages for record in page.records]
    assert listed == ["1", "shown-1-1", "2", "shown-1-2", "shown-2-1", "shown-2-2", "shown-3-1", "shown-3-2"]


def mock_zoho(redis: ArqRedis, answer: Callable[[httpx.Request], httpx.Response]) -> ZohoClient:
    """A ZohoClient whose accounts and API server is `answer` (tokens granted by the mock itself)."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/v2/token":
            return httpx.Response(200, json={"access_token": "mock-token", "expires_in": 3600})
        return answer(request)

    return sandbox_zoho(redis, httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://sandbox"))


def listing_page(number: int, per_page: int, *, more: bool, token: str | None) -> httpx.Response:
    """Page `number` of a listing whose records are a minute apart, newest first from T0 + one day."""
    newest = T0 + timedelta(days=1)
    first = (number - 1) * per_page
    data = [
        {"id": str(5_000_000_000_000_000_000 + n), "Modified_Time": (newest - timedelta(minutes=n)).isoformat()}
        for n in range(first, first + per_page)
    ]
    return httpx.Response(200, json={"data": data, "info": {"more_records": more, "next_page_token": token}})


async def test_zoho_goes_on_with_the_token_of_the_first_page_when_page_10_has_none(redis: ArqRedis) -> None:
    asked: list[dict[str, str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        asked.append(params)
        if "page_token" in params:  # the token stands for the records after page 10
            more = params["page_token"] == "first-page-token" and sum("page_token" in p for p in asked) == 1
            return listing_page(11, 200, more=more, token=None)
        page = int(params["page"])
        return listing_page(page, 200, more=True, token="first-page-token" if page == 1 else None)

    since = T0 + timedelta(days=1) - timedelta(minutes=2_100)
    pages = await _collect(zoho_modified(mock_zoho(redis, answer), since, T0 + timedelta(days=1), sleep=_no_sleep))

    listed = [record.record_id for page in pages for record in page.records]
    assert len(listed) == len(set(listed)) == 2_101  # pages 1 to 10, then by the first page's token
    assert asked[10]["page_token"] == "first-page-token" and "page" not in asked[10]


async def test_zoho_refuses_a_token_it_has_used_when_no_new_one_comes(redis: ArqRedis) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        page = 11 if "page_token" in params else int(params["page"])
        return listing_page(page, 200, more=True, token="first-page-token" if page == 1 else None)

    with pytest.raises(CrmTransientError) as caught:
        await _collect(zoho_modified(mock_zoho(redis, answer), T0 - timedelta(days=9), T0, sleep=_no_sleep))
    assert caught.value.code == "BAD_RESPONSE"


async def test_zoho_past_100000_records_says_how_far_back_it_reached(redis: ArqRedis) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        if "page_token" in params:
            error = {"code": "PAGINATION_LIMIT_EXCEEDED", "message": "You can only get up to the first 100000"}
            return httpx.Response(400, json={"data": [error], **error, "status": "error"})
        return listing_page(int(params["page"]), 200, more=True, token="next")

    with pytest.raises(ListingTooLargeError) as caught:
        await _collect(zoho_modified(mock_zoho(redis, answer), T0 - timedelta(days=9), T0, sleep=_no_sleep))

    assert caught.value.reached == T0 + timedelta(days=1) - timedelta(minutes=1_999)  # the last of page 10
    assert caught.value.code == "WINDOW_TOO_LARGE" and "100,000" in caught.value.message
