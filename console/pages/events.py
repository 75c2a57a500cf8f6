"""The event log: recent events newest first (filters: source, record id, outcome, time), and one event in full.
Read through workers/eventlog.py (list_events, get_event); `GET /events` answers JSON to Accept: application/json."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from redis.asyncio import Redis
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from console.views import Views, json_response, wants_json
from crmflow.dlq import parse_duration
from workers.eventlog import (
    OUTCOMES,
    BadEventId,
    EventEntry,
    EventFilter,
    back_from,
    check_event_id,
    get_event,
    list_events,
)

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
SOURCES = ("zoho", "hubspot")


def parse_time(text: str, now: datetime) -> datetime:
    """A filter's time: a duration back from now (30m, 12h, 7d) or a UTC time (2026-03-02T09:15, with or without
    seconds or an offset, as a datetime-local field sends it). ValueError otherwise."""
    text = text.strip()
    try:
        return back_from(now, parse_duration(text))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither a duration like 12h nor a time like 2026-03-02T09:15") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def event_filter(params: QueryParams, now: datetime) -> EventFilter:
    """The filter the query asks for; 400 naming the parameter that is wrong."""
    outcome = params.get("outcome") or None
    if outcome is not None and outcome not in OUTCOMES:
        raise HTTPException(400, f"outcome: one of {', '.join(OUTCOMES)}")
    times: dict[str, datetime | None] = {}
    for name in ("since", "until"):
        value = params.get(name) or None
        try:
            times[name] = None if value is None else parse_time(value, now)
        except ValueError as exc:
            raise HTTPException(400, f"{name}: {exc}") from None
    return EventFilter(
        source=params.get("source") or None,
        record_id=(params.get("record") or "").strip() or None,
        outcome=outcome,
        since=times["since"],
        until=times["until"],
    )


def _limit(params: QueryParams) -> int:
    text = params.get("limit") or str(PAGE_SIZE)
    if not text.isdigit() or not 1 <= int(text) <= MAX_PAGE_SIZE:
        raise HTTPException(400, f"limit: a whole number from 1 to {MAX_PAGE_SIZE}")
    return int(text)


def _cursor(params: QueryParams) -> str | None:
    before = params.get("before") or None
    try:
        return None if before is None else check_event_id(before)
    except BadEventId as exc:
        raise HTTPException(400, f"before: {exc}") from None


def summary(entry: EventEntry) -> dict[str, Any]:
    """What the list shows of an entry: the changed fields, and each action with what it did."""
    return {
        "entry": entry,
        "fields": ", ".join(change.name for change in entry.changes) or "-",
        "actions": [(a.rule, f"{a.action}: {a.status}") for a in entry.actions],
    }


class EventPages:
    def __init__(self, views: Views, redis: Redis) -> None:
        self.views = views
        self.redis = redis

    def routes(self) -> list[Route]:
        return [
            Route("/events", self.list, methods=["GET"]),
            Route("/events/{event_id}", self.show, methods=["GET"]),
        ]

    async def list(self, request: Request) -> Response:
        params = request.query_params
        where = event_filter(params, datetime.now(UTC))
        page = await list_events(self.redis, where, limit=_limit(params), before=_cursor(params))
        if wants_json(request):
            # {"events": [...], "next_before": ...}: the entries as `crmflow events --json` prints them (one per
            # line there, without the cursor), and the cursor of the next page.
            return json_response(page.as_json())
        filters = {name: params.get(name, "") for name in ("source", "record", "outcome", "since", "until")}
        more = None
        if page.next_before is not None:
            more = "/events?" + urlencode({**{k: v for k, v in params.items() if v}, "before": page.next_before})
        return self.views.render(
            request,
            "events.html",
            rows=[summary(entry) for entry in page.entries],
            filters=filters,
            outcomes=OUTCOMES,
            sources=SOURCES,
            more=more,
        )

    async def show(self, request: Request) -> Response:
        try:
            entry = await get_event(self.redis, request.path_params["event_id"])
        except BadEventId:
            entry = None
        if entry is None:
            raise HTTPException(404, "no such event (it may have aged out of the event log)")
        if wants_json(request):
            return json_response(entry.model_dump(mode="json"))
        raw = entry.model_dump_json(indent=2)
        return self.views.render(request, "event.html", entry=entry, raw=raw)
