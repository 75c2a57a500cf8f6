"""`crmflow events [--record ID] [--json]` and `crmflow events show ID`: the event log, newest first, from Redis."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import click
from redis.asyncio import Redis
from redis.exceptions import RedisError

from crmflow.logs import escape
from workers.errors import QueueUnavailableError
from workers.eventlog import (
    OUTCOMES,
    BadEventId,
    EventEntry,
    EventFilter,
    EventPage,
    back_from,
    get_event,
    list_events,
)
from workers.queue import connect_queue

T = TypeVar("T")

COLUMNS = ("id", "finished (UTC)", "source", "module", "record", "operation", "origin", "outcome", "actions", "changed")
_ACTIONS_WIDTH = 60
_CHANGED_WIDTH = 40


class EventsError(Exception):
    """What `crmflow events` reports on one line before exiting: `code` 1 for a missing entry, 2 for Redis."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


# --- Text (pure) -----------------------------------------------------------------------------------------


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _truncate(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _actions(entry: EventEntry) -> str:
    """Each action as `rule/action status [crm ids]`; the job's error when no action ran."""
    parts = []
    for action in entry.actions:
        what = f"{action.rule}/{action.action} {action.status}"
        ids = f" {','.join(action.crm_ids)}" if action.crm_ids else ""
        error = f" {action.error}" if action.error else ""
        parts.append(what + ids + error)
    if not parts:
        parts.append(entry.error or ("no action" if entry.status == "processed" else entry.status))
    return "; ".join(parts)


def _row(entry: EventEntry) -> tuple[str, ...]:
    """The entry's cells, control characters escaped (crmflow/logs.py): nothing stored repaints the terminal."""
    origin = f"replay of {entry.replay_of}" if entry.replay_of else entry.origin
    return (
        entry.id,
        _when(entry.written_at),
        escape(entry.source),
        escape(entry.module),
        escape(entry.record_id),
        escape(entry.operation),
        escape(origin),
        entry.outcome,
        _truncate(escape(_actions(entry)), _ACTIONS_WIDTH),
        _truncate(escape(",".join(change.name for change in entry.changes) or "-"), _CHANGED_WIDTH),
    )


def format_table(page: EventPage) -> str:
    """One line per entry, newest first, under a header; a count and, if there are older ones, how to see them."""
    rows = [COLUMNS, *(_row(entry) for entry in page.entries)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    count = len(page.entries)
    footer = f"{count} entr{'y' if count == 1 else 'ies'}"
    if page.next_before is not None:
        footer += f"; older ones: add --before {page.next_before}"
    return "\n".join([*lines, footer])


def format_lines(page: EventPage) -> str:
    """One JSON object per entry and line, newest first."""
    return "\n".join(entry.model_dump_json() for entry in page.entries)


def _value(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def format_entry(entry: EventEntry) -> str:
    """Every part of one entry, one per line: what came in, what the job decided and did, the timings (control
    characters escaped)."""
    timings = entry.timings
    took = (timings.finished_at - timings.started_at).total_seconds()
    fields = [
        ("id", entry.id),
        ("job", f"{entry.job} {entry.job_id}"),
        ("source", entry.source),
        ("module", entry.module),
        ("record", entry.record_id),
        ("operation", entry.operation),
        ("origin", entry.origin),
        ("notified", f"{_when(entry.notified_at)} UTC"),
        ("announced", ", ".join(entry.announced_fields) or "-"),
        ("channel", entry.channel_id or "-"),
        ("replay of", f"dead letter {entry.replay_of}" if entry.replay_of else "-"),
        ("outcome", f"{entry.outcome} (job status {entry.status})"),
        ("tries", str(entry.tries)),
        ("first seen", "-" if entry.first_seen is None else ("yes" if entry.first_seen else "no")),
        ("error", entry.error or "-"),
        ("dead letters", ", ".join(entry.dead_letters) or "-"),
        ("rules", ", ".join(entry.rules) or "-"),
    ]
    for change in entry.changes:
        moved = "(values withheld: personal)" if change.withheld else f"{_value(change.old)} -> {_value(change.new)}"
        fields.append(("changed", f"{change.name}: {moved}"))
    for action in entry.actions:
        ids = f", CRM ids {', '.join(action.crm_ids)}" if action.crm_ids else ""
        error = f", error {action.error}" if action.error else ""
        fields.append(("action", f"{action.rule}/{action.action}: {action.status}{ids}{error}"))
    fields += [
        ("received", f"{_when(timings.received_at)} UTC"),
        ("started", f"{_when(timings.started_at)} UTC"),
        ("finished", f"{_when(timings.finished_at)} UTC ({took:.3f} s)"),
        ("crm calls", f"{timings.crm_calls} in {timings.crm_s:.3f} s"),
    ]
    # Values come from webhooks and CRMs: control characters escaped, as in `crmflow status` (crmflow/logs.py).
    return "\n".join(f"{name:<14}{escape(value)}" for name, value in fields)


# --- Running against Redis -------------------------------------------------------------------------------


async def _session(redis_url: str, work: Callable[[Redis], Awaitable[T]]) -> T:
    redis = connect_queue(redis_url)
    try:
        return await work(redis)
    finally:
        await redis.aclose()


def run(redis_url: str, where: str, work: Callable[[Redis], Awaitable[T]]) -> T:
    """Run `work` on Redis at `redis_url` (`where` names it without its password); EventsError if Redis fails."""
    try:
        return asyncio.run(_session(redis_url, work))
    except (RedisError, OSError, QueueUnavailableError) as exc:
        raise EventsError(f"Redis at {where} failed: {type(exc).__name__}: {exc}", code=2) from exc


def event_filter(
    now: datetime,
    source: str | None = None,
    record_id: str | None = None,
    outcome: str | None = None,
    newer_than: timedelta | None = None,
) -> EventFilter:
    """The read API's filter for the command-line options, ages counted back from `now`."""
    since = None if newer_than is None else back_from(now, newer_than)
    return EventFilter(source=source, record_id=record_id, outcome=outcome, since=since)


def list_text(
    redis_url: str, where: str, filters: EventFilter, *, limit: int, before: str | None, as_json: bool
) -> str:
    """The page the options select: a table, or JSON lines (nothing for no entries)."""
    try:
        page = run(redis_url, where, lambda redis: list_events(redis, filters, limit, before))
    except BadEventId as exc:
        raise EventsError(str(exc), code=2) from exc
    if as_json:
        return format_lines(page)
    if not page.entries:
        return "no entries"
    return format_table(page)


def show_text(redis_url: str, where: str, event_id: str, *, as_json: bool) -> str:
    """One entry in full (pretty JSON with `as_json`); EventsError when there is none."""
    try:
        entry = run(redis_url, where, lambda redis: get_event(redis, event_id))
    except BadEventId as exc:
        raise EventsError(str(exc), code=2) from exc
    if entry is None:
        raise EventsError(f"no event {event_id} (trimmed, or never written; see `crmflow events`)", code=1)
    return json.dumps(entry.model_dump(mode="json"), indent=2, ensure_ascii=False) if as_json else format_entry(entry)


OUTCOME_CHOICE = click.Choice(OUTCOMES)
