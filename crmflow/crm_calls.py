"""`crmflow crm-calls`: what crmflow spent on each CRM's API, per UTC day and kind, read from Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import orjson

from workers.crm.limits import COUNT_FIELDS, crm_calls
from workers.queue import connect_queue

SOURCES = ("zoho", "hubspot")
# Column titles: the count fields, with http_429 shown as 429.
TITLES = {"day": "day", "source": "source", **{name: name.removeprefix("http_") for name in COUNT_FIELDS}}


async def gather(redis_url: str, days: Sequence[date]) -> list[dict[str, int | str]]:
    """One row per day and source: the counts of workers/crm/limits.py, newest day first."""
    redis = connect_queue(redis_url)
    try:
        return [
            {"day": day.isoformat(), "source": source, **await crm_calls(redis, source, day)}
            for day in days
            for source in SOURCES
        ]
    finally:
        await redis.aclose()


def table(rows: Sequence[dict[str, int | str]]) -> str:
    """The rows as aligned columns. Pure."""
    cells = [[str(row.get(name, 0)) for name in TITLES] for row in rows]
    widths = [max([len(title), *(len(cell[i]) for cell in cells)]) for i, title in enumerate(TITLES.values())]
    lines = [[*TITLES.values()], *cells]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines)


def report(redis_url: str, *, days: int, as_json: bool, today: date | None = None) -> str:
    """Today's counts and those of the `days - 1` days before: a table, or one JSON object per line."""
    last = today or datetime.now(UTC).date()
    rows = asyncio.run(gather(redis_url, [last - timedelta(days=n) for n in range(days)]))
    if as_json:
        return "\n".join(orjson.dumps(row).decode() for row in rows)
    return table(rows)
