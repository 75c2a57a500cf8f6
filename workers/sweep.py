"""Sweep: queue a change for every record a CRM lists as modified in a window, so no missed notification is lost.

For each module of a source that declares `list_modified` (workers/sources/base.py), the records modified
from `since` to `until` (now, when the sweep starts) are listed page by page (workers/sweep_paging.py) and a
ChangeEvent is queued for each through workers/queue.py, the same queue and process_change job as a
notification: fetch, diff, rules, actions, ledger and dead letters apply unchanged.

Logged once: the event's operation is "update" (the listing cannot tell a creation from an update, and the
job treats both alike: a record it has no snapshot of is first-seen either way; only "delete" differs) and
its notified_at_ms is the record's modified time, so its job id is deterministic per (record, modified
time): sweeping twice does not queue twice while arq keeps the job or its result. A change already handled
from its notification leaves a snapshot at least that new, so the sweep's job finds nothing changed; and if
the sweep's job runs first, the notification's job finds nothing changed. The ledger stands behind both.

The cursor (workers/keys.py sweep_cursor, epoch ms, only ever moved forward) says up to when every record
was queued. It moves only over pages whose events are all queued: after each HubSpot page (oldest first) to
that page's last modified time, and for Zoho (newest first, where a page says nothing about the older
records still to come) only once the whole listing is done. A sweep that stops half-way leaves the cursor
where its queued pages took it, so the next one starts there: no gap, and the records it lists again map
to the same job ids (or become no-op jobs). The next window starts SWEEP_OVERLAP before the cursor, for the
CRM's clock against ours (the cursor's end is our clock; modified times are the CRM's) and for HubSpot's
search index, which takes "a few moments" to show a change. Only a window that starts at or before the
cursor (or a module without one) moves it: a `--since` after the cursor sweeps its window and leaves the
cursor alone, since the changes between the cursor and `since` were not swept.

A window too large for the CRM's listing (Zoho: more than 100,000 records modified since its start) cannot
be swept by trying again: the cursor's window is marked (workers/keys.py sweep_too_large) and sweeps from
the cursor skip with that error, without calling the CRM, until the operator accepts the gap with a sweep
from a later `--since` (which, exactly then, moves the cursor) or the cursor changes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from arq.connections import ArqRedis
from redis.exceptions import RedisError

from workers import keys
from workers.checkpoints import NO_CHECKPOINTS, Checkpoints
from workers.contract import ChangeEvent
from workers.errors import CrmError, QueueUnavailableError, loggable
from workers.queue import enqueue_events
from workers.record import Modified
from workers.sources.base import Source, SourceModule
from workers.sweep_paging import PAGE_SIZE, ListingTooLargeError

# Clock skew between the CRM and us (seconds with NTP) and HubSpot's search index lag (seconds): two
# minutes covers both with a wide margin, and costs one listing of the last two minutes' changes per sweep.
SWEEP_OVERLAP = timedelta(minutes=2)

# Moves the cursor to ARGV[1] (epoch ms) unless it is already there or beyond.
_ADVANCE = """
local current = redis.call('GET', KEYS[1])
if not current or tonumber(current) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
  return 1
end
return 0
"""


class SweepError(Exception):
    """A sweep that could not queue everything it found (its summary says how far it got, and why)."""


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def from_epoch_ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC)


@dataclass(frozen=True)
class Window:
    """The modified times a sweep lists: from `since` to `until`, both included."""

    since: datetime
    until: datetime

    def describe(self) -> str:
        return f"{_iso(self.since)} .. {_iso(self.until)}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def sweep_window(*, now: datetime, cursor_ms: int | None, lookback_s: float, since: datetime | None = None) -> Window:
    """Where a sweep starts: `since` if given, else SWEEP_OVERLAP before the cursor, else `lookback_s` ago. Pure."""
    if since is not None:
        start = since
    elif cursor_ms is not None:
        start = from_epoch_ms(cursor_ms) - SWEEP_OVERLAP
    else:
        start = now - timedelta(seconds=lookback_s)
    return Window(since=min(start, now), until=now)


def moves_cursor(window: Window, cursor_ms: int | None) -> bool:
    """Whether a sweep of `window` may move the cursor: only if it leaves no gap after it (it starts at or
    before the cursor, or there is none). Pure."""
    return cursor_ms is None or epoch_ms(window.since) <= cursor_ms


def sweep_events(source: str, module: str, records: Sequence[Modified], since: datetime) -> list[ChangeEvent]:
    """One process_change event per listed record of a window from `since` (see the module's docstring). Pure."""
    return [
        ChangeEvent(
            source=source,
            module=module,
            record_id=record.record_id,
            operation="update",
            notified_at_ms=epoch_ms(record.modified_time),
            origin="sweep",
            since_ms=epoch_ms(since),
        )
        for record in records
    ]


def cursor_after(window: Window, covered_until: datetime | None) -> datetime | None:
    """Where a page takes the cursor (None: nowhere yet), never past the window's end. Pure."""
    return None if covered_until is None else min(covered_until, window.until)


@dataclass
class SweepResult:
    """How far one module's sweep got (counts so far while it runs)."""

    source: str
    module: str
    window: Window
    found: int = 0
    queued: int = 0
    already_queued: int = 0
    pages: int = 0
    calls: int = 0
    complete: bool = False
    error: str | None = None
    cursor: datetime | None = None
    # What the sweep did with the cursor when that is not the usual (kept behind a later --since, a gap
    # accepted); too_large: the window is beyond the CRM's listing; skipped: not listed, as its cursor's
    # window is marked too large (in both, the error says what to do).
    note: str | None = None
    too_large: ListingTooLargeError | None = None
    skipped: bool = False

    def summary(self) -> str:
        """One line: what was found and queued, at what cost, over which window, and how it ended."""
        ended = "complete" if self.complete else f"INCOMPLETE: {self.error}"
        note = f" ({self.note})" if self.note else " (skipped)" if self.skipped else ""
        return (
            f"sweep {self.source}/{self.module}: found {self.found}, queued {self.queued}, "
            f"already queued {self.already_queued}, pages {self.pages}, CRM calls {self.calls}, "
            f"window {self.window.describe()}{note}: {ended}"
        )


@dataclass(frozen=True)
class TooLarge:
    """A cursor's window found too large for the CRM's listing: the cursor then (None: none), and the error."""

    cursor_ms: int | None
    error: str

    def dump(self) -> str:
        return json.dumps({"cursor_ms": self.cursor_ms, "error": self.error})

    @classmethod
    def load(cls, raw: bytes | str) -> TooLarge | None:
        """The marker, or None for one that is not ours to read (then it is ignored and replaced)."""
        try:
            data = json.loads(raw)
            cursor_ms, error = data["cursor_ms"], data["error"]
        except (ValueError, TypeError, KeyError):
            return None
        if not isinstance(error, str) or not (cursor_ms is None or isinstance(cursor_ms, int)):
            return None
        return cls(cursor_ms, error)


def too_large_advice(source: str, exc: ListingTooLargeError, now: datetime, *, cursor_window: bool) -> str:
    """What a window too large to list means and the operator's way out (docs/operations.md, "Sweeps"):
    for the cursor's own window (`cursor_window`), accepting the gap; else sweeping a shorter one. Pure."""
    reached = exc.reached or exc.since
    later = min(now, (reached + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0))
    command = f"crmflow sweep --source {source} --since {_iso(later)}"
    then = f"any time after {_iso(reached)}: the later, the fewer records to list"
    what = (
        f"{source}: the window is too large to list: {exc.message}; changes from {_iso(exc.since)} to "
        f"{_iso(reached)} are out of the listing's reach and trying again lists the same pages. "
    )
    if not cursor_window:
        return what + f"Sweep a shorter window: {command} ({then})"
    return what + (
        "Sweeps from the cursor now skip with this error, without calling the CRM. To accept the gap and go "
        f"on: {command} ({then}; that sweep moves the cursor)"
    )


async def read_cursor(redis: ArqRedis, source: str, module: str) -> int | None:
    raw = await redis.get(keys.sweep_cursor(source, module))
    return int(raw) if raw is not None else None


async def read_too_large(redis: ArqRedis, source: str, module: str) -> TooLarge | None:
    raw = await redis.get(keys.sweep_too_large(source, module))
    return TooLarge.load(raw) if raw is not None else None


async def advance_cursor(redis: ArqRedis, source: str, module: str, to: datetime) -> None:
    """Move the module's cursor forward to `to` (never back: sweeps may overlap or be given an older --since)."""
    script = redis.register_script(_ADVANCE)
    await script(keys=[keys.sweep_cursor(source, module)], args=[epoch_ms(to)])


async def sweep_module(
    redis: ArqRedis,
    source: str,
    module: SourceModule[Any],
    client: Any,
    window: Window,
    *,
    page_size: int = PAGE_SIZE,
    on_page: Callable[[SweepResult], None] | None = None,
    checkpoints: Checkpoints = NO_CHECKPOINTS,
    move_cursor: bool = True,
) -> SweepResult:
    """List the module's records modified in `window`, queue a change for each, move the cursor as pages are
    queued (unless not `move_cursor`); the result says whether everything found was queued (`complete`)
    and, if not, why."""
    result = SweepResult(source, module.name, window)
    if module.list_modified is None:
        result.error = "the module declares no listing"
        return result
    try:
        async for page in module.list_modified(client, window.since, window.until, page_size):
            outcome = await enqueue_events(redis, sweep_events(source, module.name, page.records, window.since))
            result.found += len(page.records)
            result.queued += outcome.queued
            result.already_queued += outcome.duplicates
            result.pages += 1
            result.calls += page.calls
            moved = cursor_after(window, page.covered_until)
            if moved is not None and move_cursor:
                await advance_cursor(redis, source, module.name, moved)
                result.cursor = moved
            if on_page is not None:
                on_page(result)
            await checkpoints.reach("sweep_after_page")
        if move_cursor:
            await advance_cursor(redis, source, module.name, window.until)
            await redis.delete(keys.sweep_too_large(source, module.name))
            result.cursor = window.until
        result.complete = True
    except ListingTooLargeError as exc:
        result.error = f"{source}: {exc}"
        result.too_large = exc
    except CrmError as exc:
        # Logged, kept in the duty's state and printed: a CRM's own words (which may quote records) are left out.
        result.error = f"{source}: {loggable(exc)}"
    except QueueUnavailableError as exc:
        result.error = f"the queue is unavailable: {exc}"
    except (RedisError, OSError) as exc:
        result.error = f"Redis failed: {type(exc).__name__}: {exc}"
    return result


def swept_modules(source: Source[Any]) -> list[SourceModule[Any]]:
    """The source's modules that declare a listing (a module without one is not swept)."""
    return [module for module in source.modules if module.list_modified is not None]


async def sweep_source(
    redis: ArqRedis,
    source: Source[Any],
    client: Any,
    *,
    now: datetime,
    lookback_s: float,
    since: datetime | None = None,
    page_size: int = PAGE_SIZE,
    on_page: Callable[[SweepResult], None] | None = None,
    checkpoints: Checkpoints = NO_CHECKPOINTS,
) -> list[SweepResult]:
    """Sweep every listed module of `source` from its own cursor (or `since`) to `now`.

    A `since` after the cursor leaves the cursor where it is, except when the cursor's window was found too
    large to list: then the operator's `since` accepts the gap and, once its sweep is complete, moves it.
    Without `since`, a module whose cursor's window is marked too large is skipped with that error.
    """
    results = []
    for module in swept_modules(source):
        cursor = await read_cursor(redis, source.name, module.name)
        window = sweep_window(now=now, cursor_ms=cursor if since is None else None, lookback_s=lookback_s, since=since)
        marked = await read_too_large(redis, source.name, module.name)
        if marked is not None and marked.cursor_ms != cursor:  # the cursor moved (or went) since: stale
            await redis.delete(keys.sweep_too_large(source.name, module.name))
            marked = None
        if marked is not None and since is None:
            results.append(SweepResult(source.name, module.name, window, error=marked.error, skipped=True))
            continue
        move, note = moves_cursor(window, cursor), None
        if not move and cursor is not None:
            move = marked is not None
            held = _iso(from_epoch_ms(cursor))
            note = (
                f"gap from the cursor {held} accepted: its window is too large to list"
                if move
                else f"cursor left at {held}: the window starts after it"
            )
        result = await sweep_module(
            redis,
            source.name,
            module,
            client,
            window,
            page_size=page_size,
            on_page=on_page,
            checkpoints=checkpoints,
            move_cursor=move,
        )
        result.note = note
        if result.too_large is not None:
            cursor_window = since is None or marked is not None
            result.error = too_large_advice(source.name, result.too_large, now, cursor_window=cursor_window)
            if since is None:
                marker = TooLarge(cursor, result.error)
                await redis.set(keys.sweep_too_large(source.name, module.name), marker.dump())
        results.append(result)
    return results


async def sweep_duty(
    redis: ArqRedis, source: Source[Any], client: Any, *, clock: Callable[[], datetime], lookback_s: float
) -> str:
    """The worker's periodic sweep of one source: its summary, or SweepError when something was not queued."""
    results = await sweep_source(redis, source, client, now=clock(), lookback_s=lookback_s)
    summary = "; ".join(result.summary() for result in results)
    if not all(result.complete for result in results):
        raise SweepError(summary)
    return summary
