"""process_change for HubSpot on a real arq worker and real Redis, with HubSpot played by the in-process sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis

from sandbox.app import create_app as create_sandbox
from sandbox.config import SandboxConfig
from tests.workers.harness import deferred_s, enqueue_change, job_result, run_worker
from workers import keys
from workers.contract import QUEUE_NAME, ChangeEvent
from workers.deadletters import DeadLetters

NEVER_RESCHEDULED = "51204030001"  # "AC Repair - James"
RESCHEDULED_ONCE = "51204030002"  # "Boiler Service - Maria": by Ben in the UI, then moved by app 1160452
CHLOE = "71230003"
NOTES = "/crm/objects/2026-03/notes"
APPOINTMENT = "/crm/objects/2026-03/appointments/{id}"


class HubSpot:
    """The sandbox, driven as a HubSpot user would, plus its control API."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def reschedule(self, record_id: str, start: datetime, user_id: str = CHLOE) -> None:
        change = {"properties": {"hs_appointment_start": start.isoformat()}, "user_id": user_id}
        response = await self.http.patch(f"/_sandbox/hubspot/appointments/{record_id}", json=change)
        assert response.status_code == 200, response.text

    async def start_of(self, record_id: str) -> str:
        headers = {"Authorization": "Bearer sandbox-hubspot-token"}
        url = f"/crm/objects/2026-03/appointments/{record_id}?properties=hs_appointment_start"
        value: str = (await self.http.get(url, headers=headers)).json()["properties"]["hs_appointment_start"]
        return value

    async def notes(self, record_id: str) -> list[dict[str, Any]]:
        notes = (await self.http.get("/_sandbox/hubspot/notes")).json()["notes"]
        return [n for n in notes if record_id in str(n)]

    async def faults(self, *rules: dict[str, Any]) -> None:
        assert (await self.http.post("/_sandbox/faults", json=list(rules))).status_code == 200

    async def count(self, endpoint: str) -> int:
        counts: dict[str, int] = (await self.http.get("/_sandbox/requests")).json()["by_endpoint"]
        return counts.get(endpoint, 0)


async def end_pauses(redis: ArqRedis) -> None:
    """Time passes: the pause every worker shares after a 429 is over."""
    for key in await redis.keys(keys.crm_limit("hubspot", "*", "pause")):
        await redis.delete(key)


@pytest.fixture
async def hubspot() -> AsyncIterator[HubSpot]:
    app = create_sandbox(SandboxConfig())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox") as http:
        yield HubSpot(http)


async def notify(redis: ArqRedis, record_id: str, **fields: Any) -> ChangeEvent:
    return await enqueue_change(redis, "hubspot", "appointments", record_id, **fields)


def soon(days: int, hour: int = 10) -> datetime:
    return datetime.now(UTC).replace(hour=hour, minute=0, second=0, microsecond=0) + timedelta(days=days)


def readable(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


async def baseline(redis: ArqRedis, redis_url: str, hubspot: HubSpot, record_id: str = NEVER_RESCHEDULED) -> None:
    await notify(redis, record_id, operation="insert")
    await run_worker(redis_url, hubspot.http)


async def test_a_reschedule_becomes_one_note(redis: ArqRedis, redis_url: str, hubspot: HubSpot) -> None:
    await baseline(redis, redis_url, hubspot)
    before = datetime.fromisoformat(await hubspot.start_of(NEVER_RESCHEDULED))

    await hubspot.reschedule(NEVER_RESCHEDULED, soon(5))
    event = await notify(redis, NEVER_RESCHEDULED, changed_fields=("hs_appointment_start",))
    await run_worker(redis_url, hubspot.http)

    assert [a["status"] for a in (await job_result(redis, event))["actions"]] == ["created"]
    (note,) = await hubspot.notes(NEVER_RESCHEDULED)
    body = note["properties"]["hs_note_body"]
    assert body == (
        f"AC Repair - James was rescheduled from {readable(before)} to {readable(soon(5))}.\n"
        f"Changed by HubSpot user {CHLOE} (CRM_UI)."
    )
    assert {"toObjectId": NEVER_RESCHEDULED}.items() <= {"toObjectId": NEVER_RESCHEDULED}.items()
    assert NEVER_RESCHEDULED in str(note["associations"])


async def test_first_seen_appointment_is_logged_from_its_history(
    redis: ArqRedis, redis_url: str, hubspot: HubSpot
) -> None:
    event = await notify(redis, RESCHEDULED_ONCE)
    await run_worker(redis_url, hubspot.http)

    assert (await job_result(redis, event))["first_seen"] is True
    (note,) = await hubspot.notes(RESCHEDULED_ONCE)
    assert "Changed by INTEGRATION 1160452." in note["properties"]["hs_note_body"]


async def test_two_reschedules_between_fetches_give_two_notes(
    redis: ArqRedis, redis_url: str, hubspot: HubSpot
) -> None:
    await baseline(redis, redis_url, hubspot)
    await hubspot.reschedule(NEVER_RESCHEDULED, soon(5))
    await hubspot.reschedule(NEVER_RESCHEDULED, soon(6), user_id="71230002")

    await notify(redis, NEVER_RESCHEDULED)
    await notify(redis, NEVER_RESCHEDULED)
    await run_worker(redis_url, hubspot.http)

    bodies = sorted(n["properties"]["hs_note_body"] for n in await hubspot.notes(NEVER_RESCHEDULED))
    assert len(bodies) == 2
    assert f"to {readable(soon(5))}.\nChanged by HubSpot user {CHLOE}" in bodies[0] + bodies[1]
    assert (
        f"from {readable(soon(5))} to {readable(soon(6))}.\nChanged by HubSpot user 71230002" in bodies[0] + bodies[1]
    )
    assert await DeadLetters(redis).all() == []


@pytest.mark.parametrize(
    "fault",
    [{"status": 502}, {"status": 500, "after": True}],  # after: the note was created, the answer was lost
    ids=["502", "answer-lost"],
)
async def test_transient_errors_still_give_one_note(
    redis: ArqRedis, redis_url: str, hubspot: HubSpot, fault: dict[str, Any]
) -> None:
    await baseline(redis, redis_url, hubspot)
    await hubspot.reschedule(NEVER_RESCHEDULED, soon(5))
    await hubspot.faults({"method": "POST", "path_prefix": NOTES, "times": 2} | fault)

    await notify(redis, NEVER_RESCHEDULED)
    await run_worker(redis_url, hubspot.http)

    assert len(await hubspot.notes(NEVER_RESCHEDULED)) == 1
    # 502 twice, then created; or created once, its answer lost, and found by the retry instead of re-created.
    assert await hubspot.count(f"POST {NOTES}") == (1 if fault.get("after") else 3)


@pytest.mark.parametrize(("policy", "wait_s"), [("TEN_SECONDLY_ROLLING", 10), ("DAILY", 3600)])
async def test_a_429_waits_as_long_as_hubspot_says_then_one_note(
    redis: ArqRedis, redis_url: str, hubspot: HubSpot, policy: str, wait_s: float
) -> None:
    await baseline(redis, redis_url, hubspot)
    await hubspot.reschedule(NEVER_RESCHEDULED, soon(5))
    await hubspot.faults(
        {"method": "POST", "path_prefix": NOTES, "status": 429, "rate_limit_policy": policy, "times": 1}
    )
    event = await notify(redis, NEVER_RESCHEDULED)

    async def deferred() -> bool:
        return await deferred_s(redis, event) > 1

    await run_worker(redis_url, hubspot.http, until=deferred)
    waited = await deferred_s(redis, event)
    # Time passes: the job falls due and HubSpot's window (the pause every worker shares) is over.
    await redis.zadd(QUEUE_NAME, {event.job_id(): 1})  # due now (arq reads a score of 0 as "done")
    await end_pauses(redis)
    await run_worker(redis_url, hubspot.http)

    # At least what HubSpot asked for, plus at most 10 % jitter so waiting workers do not all return at once.
    assert wait_s - 1 < waited <= wait_s * 1.1
    assert len(await hubspot.notes(NEVER_RESCHEDULED)) == 1


async def test_a_job_reads_the_record_only_when_the_window_can_take_its_note(
    redis: ArqRedis, redis_url: str, hubspot: HubSpot
) -> None:
    # HubSpot's 10 s window has room for one call only: the GET alone would be spent, the note deferred by the
    # window, and the retry would GET the record again. The job is deferred before its GET instead.
    await baseline(redis, redis_url, hubspot)
    (window,) = await redis.keys(keys.crm_limit("hubspot", "*", "window"))
    now_ms = int((await redis.time())[0]) * 1000
    used = await redis.zcard(window)
    await redis.zadd(window, {f"other:{i}": now_ms for i in range(99 - used)})  # HUBSPOT_REQUESTS_PER_10S: 100
    await hubspot.reschedule(NEVER_RESCHEDULED, soon(5))
    event = await notify(redis, NEVER_RESCHEDULED)
    reads = await hubspot.count(f"GET {APPOINTMENT}")

    async def deferred() -> bool:
        return await deferred_s(redis, event) > 1

    await run_worker(redis_url, hubspot.http, until=deferred)
    assert await hubspot.count(f"GET {APPOINTMENT}") == reads
    assert 9 <= await deferred_s(redis, event) <= 20  # when the window has room again, spread over the next one
    # The window moves on: the job runs, one GET and one note.
    await redis.zremrangebyscore(window, "-inf", "+inf")
    await redis.zadd(QUEUE_NAME, {event.job_id(): 1})
    await run_worker(redis_url, hubspot.http)
    assert await hubspot.count(f"GET {APPOINTMENT}") == reads + 1
    assert len(await hubspot.notes(NEVER_RESCHEDULED)) == 1
    # The GET, the note type's lookup (once per worker) and the note: nothing left held.
    assert await redis.zcard(window) == 3


async def test_waiting_out_rate_limits_does_not_use_up_tries(redis: ArqRedis, redis_url: str, hubspot: HubSpot) -> None:
    # Six 429s in a row with WORKER_MAX_TRIES=4: counted as tries, the reschedule would be a dead letter.
    await baseline(redis, redis_url, hubspot)
    await hubspot.reschedule(NEVER_RESCHEDULED, soon(5))
    await hubspot.faults({"method": "POST", "path_prefix": NOTES, "status": 429, "times": 6})
    event = await notify(redis, NEVER_RESCHEDULED)

    async def deferred() -> bool:
        return await deferred_s(redis, event) > 1

    for _ in range(6):
        await run_worker(redis_url, hubspot.http, until=deferred)
        await redis.zadd(QUEUE_NAME, {event.job_id(): 1})
        await end_pauses(redis)
    await run_worker(redis_url, hubspot.http)

    assert await DeadLetters(redis).all() == []
    assert len(await hubspot.notes(NEVER_RESCHEDULED)) == 1


async def test_a_bad_token_is_a_dead_letter(redis: ArqRedis, redis_url: str, hubspot: HubSpot) -> None:
    event = await notify(redis, NEVER_RESCHEDULED)
    await run_worker(redis_url, hubspot.http, HUBSPOT_ACCESS_TOKEN="pat-na1-revoked")

    assert (await job_result(redis, event))["status"] == "dead_lettered"
    (letter,) = await DeadLetters(redis).all()
    assert (letter.source, letter.error_code) == ("hubspot", "INVALID_AUTHENTICATION")


async def test_properties_named_by_rules_are_fetched(
    redis: ArqRedis, redis_url: str, hubspot: HubSpot, tmp_path: Any
) -> None:
    # hs_appointment_location is not among the properties crmflow reads by default; a rule condition on it
    # must still see its value, or `equals` would silently never hold.
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "version: 1\nrules:\n  - name: only-elm-street\n    source: hubspot\n    module: appointments\n"
        "    when: {changed: [hs_appointment_start]}\n"
        "    conditions: [{field: hs_appointment_location, equals: 12 Elm Street}]\n"
        "    actions: [{type: log_reschedule_history}]\n"
    )
    await notify(redis, NEVER_RESCHEDULED, operation="insert")
    await run_worker(redis_url, hubspot.http, RULES_PATH=str(rules))
    await hubspot.reschedule(NEVER_RESCHEDULED, soon(5))

    event = await notify(redis, NEVER_RESCHEDULED)
    await run_worker(redis_url, hubspot.http, RULES_PATH=str(rules))

    assert [a["rule"] for a in (await job_result(redis, event))["actions"]] == ["only-elm-street"]
    assert len(await hubspot.notes(NEVER_RESCHEDULED)) == 1
