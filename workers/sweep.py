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
search index, which takes "a few moments" to show a change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from arq.connections import ArqRedis
from redis.exceptions import RedisError

from workers import keys
from workers.checkpoints import NO_CHECKPOINTS, Checkpoints
from workers.contract import ChangeEvent
from workers.errors import CrmError, QueueUnavailableError
from workers.queue import enqueue_events
from workers.record import Modified
from workers.sources.base import Source, SourceModule
from workers.sweep_paging import PAGE_SIZE

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

    def summary(self) -> str:
        """One line: what was found and queued, at what cost, over which window, and how it ended."""
        ended = "complete" if self.complete else f"INCOMPLETE: {self.error}"
        return (
            f"sweep {self.source}/{self.module}: found {self.found}, queued {self.queued}, "
            f"already queued {self.already_queued}, pages {self.pages}, CRM calls {self.calls}, "
            f"window {self.window.describe()}: {ended}"
        )


async def read_cursor(redis: ArqRedis, source: str, module: str) -> int | None:
    raw = await redis.get(keys.sweep_cursor(source, module))
    return int(raw) if raw is not None else None


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
) -> SweepResult:
    """List the module's records modified in `window`, queue a change for each, move the cursor as pages are
    queued; the result says whether everything found was queued (`complete`) and, if not, why."""
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
            if moved is not None:
                await advance_cursor(redis, source, module.name, moved)
                result.cursor = moved
            if on_page is not None:
                on_page(result)
            await checkpoints.reach("sweep_after_page")
        await advance_cursor(redis, source, module.name, window.until)
        result.cursor = window.until
        result.complete = True
    except CrmError as exc:
        result.error = f"{source}: {exc}"
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
    """Sweep every listed module of `source` from its own cursor (or `since`) to `now`."""
    results = []
    for module in swept_modules(source):
        cursor = None if since is not None else await read_cursor(redis, source.name, module.name)
        window = sweep_window(now=now, cursor_ms=cursor, lookback_s=lookback_s, since=since)
        results.append(
            await sweep_module(
                redis,
                source.name,
                module,
                client,
                window,
                page_size=page_size,
                on_page=on_page,
                checkpoints=checkpoints,
            )
        )
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
