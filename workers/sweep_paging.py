"""Sweep paging: list a CRM's appointments modified in a window, page by page (Zoho's listing, HubSpot's search).

Zoho (docs/zoho-crm.md, "Listing appointments"): GET Appointments__s?fields=id,Modified_Time sorted by
Modified_Time, newest first, 200 a page; `page` 1 to 10 reach the first 2,000 records, then each page's
next_page_token the next ones (up to 100,000: beyond, ListingTooLargeError, since no retry can get further).
Zoho cannot filter the listing by time, so paging stops at the first record older than the window's start.
Newest first means a page says nothing about the older records still to come: the window is covered only
once the listing is complete (ModifiedPage.covered_until stays None). A record modified while the listing
pages moves to the top, onto a page already read: the next sweep, whose window starts before this one's end,
finds it. But a record deleted (or a reorder among records sharing a Modified_Time second) moves the records
after it up, one of them onto a page already read: never listed, by this sweep or the next. So a listing of
more than one page is listed again, and again while a pass finds a record (modified by the window's end)
that the passes before it missed, ZOHO_PASSES times at most; only the union, each record once, is yielded.

HubSpot (docs/hubspot.md, "Search"): POST appointments/search with hs_lastmodifieddate in [since, until],
oldest first, 200 a page. HubSpot's `after` is an offset into the result as it is when the next page is
asked for, so an appointment modified meanwhile leaves the window and shifts every later page by one, and
an offset cannot go past 10,000 results. So each page is a new search from the last modified time seen
(GTE, dropping the ids already listed at that very time): the window is split at every page, nothing
shifts, and no search ever nears 10,000 results; `after` is used only while a whole page shares one
modified time (a page cut by the cap has no `next`, so `total` tells whether more results follow).
Every page covers the window up to its last modified time. Searches are paced to
SEARCH_PER_S a second (HubSpot allows five per second per account, shared by every app).

Rate limits and transient failures are waited out a few times (PATIENCE) before the sweep gives up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar

from workers.crm.hubspot import HubSpotClient
from workers.crm.hubspot_models import SearchPage
from workers.crm.zoho import ZohoClient
from workers.errors import CrmRateLimitedError, CrmRejectedError, CrmTransientError
from workers.record import Modified, ModifiedPage

PAGE_SIZE = 200
DISCRETE_LIMIT = 2000  # Zoho: records reachable by `page` alone
TOKEN_REACH = 100_000  # Zoho: records reachable by page_token (PAGINATION_LIMIT_EXCEEDED beyond)
ZOHO_PASSES = 3  # Zoho: listings of one window at most (see zoho_modified)
SEARCH_RESULT_CAP = 10_000  # HubSpot: results one search can page through
SEARCH_PER_S = 4.0  # below HubSpot's five a second, which other integrations of the account share
PATIENCE = (1.0, 2.0, 4.0, 8.0)  # waits between tries of one page (a rate limit's own wait if longer)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


async def patiently(call: Callable[[], Awaitable[T]], sleep: Sleep = asyncio.sleep) -> tuple[T, int]:
    """`call()` and how many tries it took: tried again after a rate limit or a transient failure,
    len(PATIENCE) times at most, then the error goes to the caller."""
    for tries, wait_s in enumerate(PATIENCE, start=1):
        try:
            return await call(), tries
        except CrmRateLimitedError as exc:
            await sleep(max(wait_s, exc.retry_after_s or 0.0))
        except CrmTransientError:
            await sleep(wait_s)
    return await call(), len(PATIENCE) + 1


def newest_first_cut(records: Sequence[Modified], since: datetime) -> tuple[tuple[Modified, ...], bool]:
    """The records of a newest-first page modified at or after `since`, and whether an older one was met
    (then the listing can stop: everything after it is older still). Pure."""
    kept: list[Modified] = []
    for record in records:
        if record.modified_time < since:
            return tuple(kept), True
        kept.append(record)
    return tuple(kept), False


@dataclass(frozen=True)
class SearchWindow:
    """The next search of a HubSpot listing: from `since` (GTE), skipping `after` results of it, and the ids
    already listed whose modified time is exactly `since` (they come again at the start of the next search)."""

    since: datetime
    after: str | None = None
    boundary: frozenset[str] = field(default_factory=frozenset)

    def fresh(self, records: Sequence[Modified]) -> tuple[Modified, ...]:
        """The records of a page not listed before (pure)."""
        return tuple(r for r in records if not (r.modified_time == self.since and r.record_id in self.boundary))


def next_window(window: SearchWindow, page: SearchPage, page_size: int) -> SearchWindow | None:
    """The search after `page` (None: the window is exhausted). Pure.

    Normally a new search from the page's last modified time; only when the whole page has one modified time
    (equal to the current start) does it go on with `after`, within HubSpot's cap of 10,000 results. A page
    without `next` whose search's `total` goes beyond the results paged so far was cut by that cap: the
    window is not exhausted.
    """
    reached = int(window.after or 0) + len(page.records)
    if not page.records or (page.next_after is None and page.total <= reached):
        return None
    last = page.records[-1].modified_time
    if last > window.since:
        return SearchWindow(
            since=last, boundary=frozenset(r.record_id for r in page.records if r.modified_time == last)
        )
    offset = int(page.next_after) if page.next_after is not None else reached
    if page.next_after is None or offset + page_size > SEARCH_RESULT_CAP:
        message = f"more than {SEARCH_RESULT_CAP} appointments share the modified time {last.isoformat()}"
        raise CrmRejectedError(message, code="SEARCH_WINDOW_TOO_DENSE")
    seen = window.boundary | {r.record_id for r in page.records}
    return SearchWindow(since=window.since, after=page.next_after, boundary=frozenset(seen))


class ListingTooLargeError(CrmRejectedError):
    """Zoho's listing cannot reach the window's start: it pages at most TOKEN_REACH records back from the newest,
    and more were modified after `since` (`reached`: the oldest modified time it got to, if any)."""

    code = "WINDOW_TOO_LARGE"

    def __init__(self, since: datetime, reached: datetime | None) -> None:
        back_to = f"back to {_iso(reached)}" if reached is not None else "not that far"
        message = (
            f"Zoho lists at most {TOKEN_REACH:,} records, newest first, and cannot filter by time: more were "
            f"modified after {_iso(since)} than it can page through (it reached {back_to})"
        )
        super().__init__(message, code=self.code)
        self.since = since
        self.reached = reached


class ListingUnsettledError(CrmTransientError):
    """Every pass of a Zoho listing found records the passes before it missed (ZOHO_PASSES in all)."""

    code = "LISTING_UNSETTLED"


@dataclass
class _Pass:
    """How far one pass of a Zoho listing got: pages read, and the oldest modified time met."""

    pages: int = 0
    reached: datetime | None = None


async def _zoho_pass(
    zoho: ZohoClient, since: datetime, page_size: int, sleep: Sleep, progress: _Pass
) -> AsyncIterator[tuple[tuple[Modified, ...], int]]:
    """One newest-first listing down to `since`: each page's records in the window, and the tries it took."""
    page, token, latest = 1, None, None
    used: set[str] = set()
    while True:
        call = partial(zoho.list_modified, page=None if token else page, page_token=token, per_page=page_size)
        try:
            listing, tries = await patiently(call, sleep)
        except CrmRejectedError as exc:
            if exc.code == "PAGINATION_LIMIT_EXCEEDED":
                raise ListingTooLargeError(since, progress.reached) from exc
            raise
        progress.pages += 1
        if listing.records:
            oldest = min(record.modified_time for record in listing.records)
            progress.reached = oldest if progress.reached is None else min(progress.reached, oldest)
        kept, older_met = newest_first_cut(listing.records, since)
        yield kept, tries
        if older_met or not listing.more_records or not listing.records:
            return
        latest = listing.next_page_token or latest
        if token is None and (page + 1) * page_size <= DISCRETE_LIMIT:
            page += 1
            continue
        # Zoho's page says the token comes in "the response of the first GET": a page without one goes on
        # with the latest token seen, once (UNCONFIRMED which pages carry one; see docs/zoho-crm.md).
        token = listing.next_page_token or (latest if latest not in used else None)
        if token is None:
            raise CrmTransientError("Zoho has more records but gave no unused next_page_token", code="BAD_RESPONSE")
        used.add(token)


async def zoho_modified(
    zoho: ZohoClient, since: datetime, until: datetime, page_size: int = PAGE_SIZE, *, sleep: Sleep = asyncio.sleep
) -> AsyncIterator[ModifiedPage]:
    """Zoho's appointments modified at or after `since`, newest first (also those after `until`, modified
    while the sweep runs: queuing them does no harm), a page at a time, each record once.

    A listing of more than one page is listed again (see the module's docstring), up to ZOHO_PASSES times in
    all, until a pass finds no record modified by `until` that the earlier ones missed; if the last pass still
    finds some, they are yielded and ListingUnsettledError follows, so the cursor does not move.
    """
    seen: set[Modified] = set()
    for number in range(1, ZOHO_PASSES + 1):
        progress, missed = _Pass(), 0
        async for kept, tries in _zoho_pass(zoho, since, page_size, sleep, progress):
            new = tuple(dict.fromkeys(record for record in kept if record not in seen))
            seen.update(new)
            if number > 1:
                missed += sum(record.modified_time <= until for record in new)
            yield ModifiedPage(new, calls=tries)
        if (number == 1 and progress.pages == 1) or (number > 1 and missed == 0):
            return
    message = (
        f"Zoho's listing kept changing while it paged: pass {ZOHO_PASSES} still found {missed} record(s) the "
        "earlier passes missed (deletions or reorders during paging); they are queued, the cursor stays"
    )
    raise ListingUnsettledError(message)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class SearchPace:
    """Keeps one listing's searches at most `per_s` a second apart."""

    def __init__(
        self, per_s: float = SEARCH_PER_S, clock: Callable[[], float] = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> None:
        self._gap_s = 1.0 / per_s
        self._clock = clock
        self._sleep = sleep
        self._last: float | None = None

    async def wait(self) -> None:
        if self._last is not None:
            wait_s = self._last + self._gap_s - self._clock()
            if wait_s > 0:
                await self._sleep(wait_s)
        self._last = self._clock()


async def _search(
    hubspot: HubSpotClient, pace: SearchPace, window: SearchWindow, until: datetime, page_size: int
) -> SearchPage:
    await pace.wait()
    return await hubspot.search_modified(window.since, until, after=window.after, limit=page_size)


async def hubspot_modified(
    hubspot: HubSpotClient,
    since: datetime,
    until: datetime,
    page_size: int = PAGE_SIZE,
    *,
    sleep: Sleep = asyncio.sleep,
    pace: SearchPace | None = None,
) -> AsyncIterator[ModifiedPage]:
    """HubSpot's appointments with hs_lastmodifieddate in [since, until], oldest first, a page at a time."""
    pace = pace or SearchPace(sleep=sleep)
    window: SearchWindow | None = SearchWindow(since=since)
    while window is not None:
        current = window
        page, tries = await patiently(partial(_search, hubspot, pace, current, until, page_size), sleep)
        window = next_window(current, page, page_size)
        covered = window.since if window is not None else None
        yield ModifiedPage(current.fresh(page.records), covered_until=covered, calls=tries)
