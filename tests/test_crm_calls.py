"""`crmflow crm-calls`: the day's counts per source and kind, as a table or JSON lines, from real Redis."""

from __future__ import annotations

import asyncio
from datetime import date

import orjson
from arq.connections import ArqRedis

from crmflow.crm_calls import report
from workers import keys

DAY = date(2026, 11, 30)


async def test_counts_per_day_and_source_as_a_table_and_as_json(redis: ArqRedis, redis_url: str) -> None:
    await redis.hset(keys.crm_calls("zoho", "2026-11-30"), mapping={"read": 7, "write": 2, "http_429": 1})  # type: ignore[misc]
    await redis.hset(keys.crm_calls("hubspot", "2026-11-29"), mapping={"search": 3, "coalesced": 4})  # type: ignore[misc]

    # The command runs its own event loop, as `crmflow crm-calls` does.
    shown = (await asyncio.to_thread(report, redis_url, days=2, as_json=False, today=DAY)).splitlines()
    lines = (await asyncio.to_thread(report, redis_url, days=2, as_json=True, today=DAY)).splitlines()
    rows = [orjson.loads(line) for line in lines]

    assert shown[0].split() == ["day", "source", "read", "write", "token", "search", "watch", "429", "coalesced"]
    assert shown[1].split() == ["2026-11-30", "zoho", "7", "2", "0", "0", "0", "1", "0"]
    assert shown[4].split() == ["2026-11-29", "hubspot", "0", "0", "0", "3", "0", "0", "4"]
    assert [(r["day"], r["source"]) for r in rows] == [
        ("2026-11-30", "zoho"),
        ("2026-11-30", "hubspot"),
        ("2026-11-29", "zoho"),
        ("2026-11-29", "hubspot"),
    ]
    assert rows[0]["read"] == 7 and rows[0]["http_429"] == 1
