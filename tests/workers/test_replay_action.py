"""Replayable refusals: an action the CRM refused once is a dead letter that `dlq replay` runs again, exactly once.

Real Redis, the in-process sandbox (faults through its control API) and a real arq worker (tests/workers/
harness.py), for both CRMs: the history row or note refused once, its letter, the replay into exactly one
row or note, and a second replay of the same letter that writes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from arq.connections import ArqRedis
from arq.jobs import Job

from crmflow.dlq import format_letter
from crmflow.embedded_redis import free_port
from sandbox.app import create_app as create_sandbox
from sandbox.config import SandboxConfig
from tests.workers import test_jobs_hubspot as hs
from tests.workers.harness import run_worker
from tests.workers.test_jobs import HISTORY_PATH, NEVER_RESCHEDULED, Zoho, notify, soon, work, zoho_error
from workers import keys
from workers.contract import QUEUE_NAME, REPLAY_ACTION, ChangeEvent, loads
from workers.deadletters import MALFORMED_JOB, DeadLetter, DeadLetters
from workers.errors import QueueUnavailableError
from workers.queue import connect_queue
from workers.replay import Outcome, replay_letter, unreplayable

STAMP_MS = 1_764_000_000_000
# What Zoho's log_reschedule_history may read of an appointment (workers/actions/zoho_history.py).
ZOHO_ACTION_FIELDS = {
    "Appointment_Name",
    "Modified_By",
    "Reschedule_Count",
    "Reschedule_Note",
    "Reschedule_Reason",
    "Rescheduled_By",
    "Rescheduled_From",
    "Rescheduled_Time",
    "Rescheduled_To",
}
SECRETS = ("sandbox-client-secret", "sandbox-refresh-token", "sandbox-hubspot-token", "oauthtoken", "Bearer")


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    app = create_sandbox(SandboxConfig())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox") as client:
        yield client


@pytest.fixture
def zoho(http: httpx.AsyncClient) -> Zoho:
    return Zoho(http)


@pytest.fixture
def hubspot(http: httpx.AsyncClient) -> hs.HubSpot:
    return hs.HubSpot(http)


def zoho_time(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


async def replay(redis: ArqRedis, letter: DeadLetter, stamp_ms: int = STAMP_MS) -> Outcome:
    return await replay_letter(redis, DeadLetters(redis), letter, stamp_ms=stamp_ms)


async def result_of(redis: ArqRedis, job_id: str | None) -> Any:
    assert job_id is not None
    info = await Job(job_id, redis, _deserializer=loads).result_info()
    assert info is not None
    return info.result


async def ledger_states(redis: ArqRedis) -> list[str]:
    """The state of every ledger entry (pending or done)."""
    found = [key async for key in redis.scan_iter(keys.ledger("*"))]
    return sorted(orjson.loads(raw)["state"] for raw in await redis.mget(found)) if found else []


async def only_letter(redis: ArqRedis, source: str) -> DeadLetter:
    (letter,) = [letter for letter in await DeadLetters(redis).all() if letter.source == source]
    return letter


async def zoho_refused_once(redis: ArqRedis, redis_url: str, zoho: Zoho, **fault: Any) -> DeadLetter:
    """A reschedule whose history row Zoho refuses with INVALID_DATA (once, unless `fault` says otherwise)."""
    await notify(redis, NEVER_RESCHEDULED, "insert")
    await work(redis_url, zoho)
    await zoho.reschedule(NEVER_RESCHEDULED, soon(6), Reschedule_Reason="By Customer", Reschedule_Note="Away")
    await zoho.faults(zoho_error(400, "INVALID_DATA", "invalid data", "Rescheduled_By") | {"times": 1} | fault)
    await notify(redis, NEVER_RESCHEDULED)
    await work(redis_url, zoho)
    return await only_letter(redis, "zoho")


async def hubspot_refused_once(redis: ArqRedis, redis_url: str, hubspot: hs.HubSpot) -> DeadLetter:
    """A reschedule whose note HubSpot refuses once with a 400 (VALIDATION_ERROR)."""
    await hs.baseline(redis, redis_url, hubspot)
    await hubspot.reschedule(hs.NEVER_RESCHEDULED, hs.soon(5))
    await hubspot.faults({"method": "POST", "path_prefix": hs.NOTES, "status": 400, "times": 1})
    await hs.notify(redis, hs.NEVER_RESCHEDULED)
    await run_worker(redis_url, hubspot.http)
    return await only_letter(redis, "hubspot")


# --- The test: refused once, replayed into exactly one row or note ----------------------------


async def test_a_zoho_history_row_refused_once_is_replayed_into_exactly_one_row(
    redis: ArqRedis, redis_url: str, zoho: Zoho
) -> None:
    failed = await zoho_refused_once(redis, redis_url, zoho)
    assert (failed.error_code, failed.rule, failed.action) == (
        "INVALID_DATA",
        "zoho-log-reschedules",
        "log_reschedule_history",
    )
    assert await zoho.history(NEVER_RESCHEDULED) == []

    replayed = await replay(redis, failed)
    await work(redis_url, zoho)

    assert replayed.reason is None
    (row,) = await zoho.history(NEVER_RESCHEDULED)
    assert (row["Rescheduled_To"], row["Reschedule_Reason"], row["Reschedule_Note"]) == (
        zoho_time(soon(6)),
        "By Customer",
        "Away",
    )
    assert (await result_of(redis, replayed.job_id))["actions"][0]["status"] == "created"
    assert await DeadLetters(redis).all() == []

    # The same letter once more (a copy, or a replay that stopped between queueing and removing it): the
    # ledger key is the failed run's, now done, so nothing is written.
    await DeadLetters(redis).add(failed)
    again = await replay(redis, failed, STAMP_MS + 1)
    await work(redis_url, zoho)

    assert (await result_of(redis, again.job_id))["actions"][0]["status"] == "already_logged"
    assert len(await zoho.history(NEVER_RESCHEDULED)) == 1
    assert await zoho.count(f"POST {HISTORY_PATH}") == 2  # the refused one and the replayed one
    assert await DeadLetters(redis).all() == []


async def test_a_hubspot_note_refused_once_is_replayed_into_exactly_one_note(
    redis: ArqRedis, redis_url: str, hubspot: hs.HubSpot
) -> None:
    failed = await hubspot_refused_once(redis, redis_url, hubspot)
    assert (failed.error_code, failed.rule, failed.action) == (
        "VALIDATION_ERROR",
        "hubspot-log-reschedules",
        "log_reschedule_history",
    )
    assert await hubspot.notes(hs.NEVER_RESCHEDULED) == []

    replayed = await replay(redis, failed)
    await run_worker(redis_url, hubspot.http)

    assert replayed.reason is None
    (note,) = await hubspot.notes(hs.NEVER_RESCHEDULED)
    assert note["properties"]["hs_note_body"].startswith("AC Repair - James was rescheduled from ")
    assert f"to {hs.readable(hs.soon(5))}.\nChanged by HubSpot user {hs.CHLOE}" in note["properties"]["hs_note_body"]

    await DeadLetters(redis).add(failed)
    again = await replay(redis, failed, STAMP_MS + 1)
    await run_worker(redis_url, hubspot.http)

    assert (await result_of(redis, again.job_id))["actions"][0]["status"] == "already_logged"
    assert len(await hubspot.notes(hs.NEVER_RESCHEDULED)) == 1
    assert await hubspot.count(f"POST {hs.NOTES}") == 2
    assert await DeadLetters(redis).all() == []


# --- What the letter holds ---------------------------------------------------------------------------


async def test_the_letter_keeps_the_action_and_only_the_fields_it_read(
    redis: ArqRedis, redis_url: str, zoho: Zoho
) -> None:
    record = await zoho.appointment(NEVER_RESCHEDULED)
    failed = await zoho_refused_once(redis, redis_url, zoho)

    kept = failed.action_replay
    assert kept is not None
    assert (kept.rule, kept.index, kept.type) == ("zoho-log-reschedules", 0, "log_reschedule_history")
    assert kept.params == {"reason": None, "note": None}
    assert kept.change.fields["Appointment_Start_Time"].new == zoho_time(soon(6))
    assert (kept.record.source, kept.record.id) == ("zoho", NEVER_RESCHEDULED)
    # Personal data the action never looked at (owner, address, contact, ...) stays out of the letter.
    assert set(kept.record.fields.values) <= ZOHO_ACTION_FIELDS
    assert {"Owner", "Address", "Location", "Created_By", "Contact_Name__s"}.isdisjoint(kept.record.fields.values)
    assert kept.record.fields.values["Appointment_Name"] == record["Appointment_Name"]
    # What it was writing, for logging by hand.
    (row,) = failed.context["unwritten"]
    assert (row["Rescheduled_To"], row["Reschedule_Note"]) == (zoho_time(soon(6)), "Away")
    assert row["Rescheduled_By"]["id"] == "5545974000000393001"


async def test_no_secret_enters_a_letter(redis: ArqRedis, redis_url: str, zoho: Zoho, hubspot: hs.HubSpot) -> None:
    await zoho_refused_once(redis, redis_url, zoho)
    await hubspot_refused_once(redis, redis_url, hubspot)
    tokens = [orjson.loads(raw)["access_token"] async for raw in _values(redis, keys.zoho_token("*"))]

    letters = await DeadLetters(redis).all()

    assert len(letters) == 2 and tokens
    for letter in letters:
        stored = letter.model_dump_json() + format_letter(letter, datetime.now(UTC))
        assert not [secret for secret in (*SECRETS, *tokens) if secret in stored]


async def _values(redis: ArqRedis, pattern: str) -> AsyncIterator[bytes]:
    async for key in redis.scan_iter(pattern):
        if not key.endswith((b":lock", b":refreshes")):
            raw = await redis.get(key)
            if raw is not None:
                yield raw


async def test_dlq_show_says_what_to_log_by_hand(
    redis: ArqRedis, redis_url: str, zoho: Zoho, hubspot: hs.HubSpot
) -> None:
    zoho_letter = await zoho_refused_once(redis, redis_url, zoho)
    hubspot_letter = await hubspot_refused_once(redis, redis_url, hubspot)
    now = datetime.now(UTC)

    zoho_text = format_letter(zoho_letter, now).splitlines()
    hubspot_text = format_letter(hubspot_letter, now).splitlines()

    row = zoho_letter.context["unwritten"][0]
    by_hand = zoho_text.index(
        "by hand       what the action was writing when it failed; to log it by hand, enter this, "
        "then purge the letter."
    )
    assert zoho_text[by_hand + 1 : by_hand + 3] == [
        "              Prefer `crmflow dlq replay` once the cause is fixed: the action may have had more to write "
        "after this",
        "              (e.g. further notes), and a replay writes all of it, and reports reschedules hidden before "
        "this one.",
    ]
    assert zoho_text[by_hand + 3 : by_hand + 10] == [
        f'                Appointment_Name   {{"name": "AC Repair - James", "id": "{NEVER_RESCHEDULED}"}}',
        f"                Rescheduled_From   {row['Rescheduled_From']}",
        f"                Rescheduled_To     {zoho_time(soon(6))}",
        f"                Rescheduled_Time   {row['Rescheduled_Time']}",
        '                Rescheduled_By     {"name": "Patricia Boyle", "id": "5545974000000393001"}',
        "                Reschedule_Reason  By Customer",
        "                Reschedule_Note    Away",
    ]
    assert (
        "replay        yes: runs log_reschedule_history of rule zoho-log-reschedules again, as it was then, "
        "on the change it failed on"
    ) in zoho_text
    note = hubspot_letter.context["unwritten"][0]
    at = datetime.fromtimestamp(int(note["hs_timestamp"]) / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
    by_hand = next(i for i, line in enumerate(hubspot_text) if line.startswith("by hand "))
    assert hubspot_text[by_hand + 3 : by_hand + 6] == [
        f"                hs_timestamp  {note['hs_timestamp']} ({at} UTC)",
        f"                hs_note_body  {note['hs_note_body'].splitlines()[0]}",
        f"                              Changed by HubSpot user {hs.CHLOE} (CRM_UI).",
    ]
    assert f"to {hs.readable(hs.soon(5))}." in hubspot_text[by_hand + 4]


# --- The ledger ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("crm", ["zoho", "hubspot"])
async def test_a_refused_write_leaves_no_pending_ledger_entry(
    redis: ArqRedis, redis_url: str, zoho: Zoho, hubspot: hs.HubSpot, crm: str
) -> None:
    # The pending entry held the row or note (personal data), and the CRM's no proves nothing was written.
    failed = await (
        zoho_refused_once(redis, redis_url, zoho) if crm == "zoho" else hubspot_refused_once(redis, redis_url, hubspot)
    )

    assert await ledger_states(redis) == []
    assert failed.ledger_keys == ()


async def test_a_replay_that_runs_out_of_retries_is_an_action_letter_again_and_purging_it_clears_the_ledger(
    redis: ArqRedis, redis_url: str, zoho: Zoho
) -> None:
    failed = await zoho_refused_once(redis, redis_url, zoho)
    # Zoho answers 500: the row may or may not have been written, so its pending entry must stay.
    await zoho.faults({"method": "POST", "path_prefix": HISTORY_PATH, "status": 500})

    replayed = await replay(redis, failed)
    await work(redis_url, zoho)

    (again,) = await DeadLetters(redis).all()
    assert (await result_of(redis, replayed.job_id))["status"] == "dead_lettered"
    assert (again.error_code, again.tries, again.action_replay) == ("HTTP_500", 4, failed.action_replay)
    assert again.id != failed.id and ChangeEvent.model_validate(again.event).replay == STAMP_MS
    assert unreplayable(again) is None
    (pending,) = again.ledger_keys
    assert await ledger_states(redis) == ["pending"]
    # The pending entry lives no longer than its letter.
    assert 0 < await redis.ttl(pending) <= keys.DEADLETTER_RETENTION.total_seconds() + 86_400

    purged = await DeadLetters(redis).purge(datetime.now(UTC) + timedelta(seconds=1))

    assert purged == 1
    assert await ledger_states(redis) == []


async def test_a_replay_refused_again_is_a_new_letter_that_replays_later(
    redis: ArqRedis, redis_url: str, zoho: Zoho
) -> None:
    failed = await zoho_refused_once(redis, redis_url, zoho, times=2)

    await replay(redis, failed)
    await work(redis_url, zoho)
    (again,) = await DeadLetters(redis).all()
    await replay(redis, again, STAMP_MS)  # the same clock: still a job of its own
    await work(redis_url, zoho)

    assert (again.error_code, again.action_replay) == ("INVALID_DATA", failed.action_replay)
    assert len(await zoho.history(NEVER_RESCHEDULED)) == 1
    assert await DeadLetters(redis).all() == []


async def test_transient_failures_of_a_replay_are_retried(redis: ArqRedis, redis_url: str, zoho: Zoho) -> None:
    failed = await zoho_refused_once(redis, redis_url, zoho)
    await zoho.faults({"method": "POST", "path_prefix": HISTORY_PATH, "status": 503, "times": 2})

    replayed = await replay(redis, failed)
    await work(redis_url, zoho)

    assert (await result_of(redis, replayed.job_id))["actions"][0]["status"] == "created"
    assert len(await zoho.history(NEVER_RESCHEDULED)) == 1
    assert await ledger_states(redis) == ["done"]


async def test_a_replay_runs_the_action_as_it_was_whatever_the_rules_say_now(
    redis: ArqRedis, redis_url: str, zoho: Zoho, tmp_path: Path
) -> None:
    failed = await zoho_refused_once(redis, redis_url, zoho)
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "version: 1\nrules:\n  - name: other\n    source: zoho\n    module: Appointments__s\n"
        "    when: {changed: [Status]}\n    actions: [{type: log_reschedule_history, with: {reason: By Team}}]\n"
    )

    await replay(redis, failed)
    await work(redis_url, zoho, RULES_PATH=str(rules))

    (row,) = await zoho.history(NEVER_RESCHEDULED)
    assert row["Reschedule_Reason"] == "By Customer"  # not the new rule's, nor left out for a missing rule


async def test_a_replay_job_with_unreadable_arguments_is_kept_and_not_replayed(
    redis: ArqRedis, redis_url: str, zoho: Zoho
) -> None:
    event = ChangeEvent(
        source="zoho", module="Appointments__s", record_id=NEVER_RESCHEDULED, operation="update", notified_at_ms=1
    )
    payload = {"rule": "zoho-log-reschedules", "type": "log_reschedule_history"}
    await redis.enqueue_job(REPLAY_ACTION, event.model_dump(mode="json"), payload, _queue_name=QUEUE_NAME)

    await work(redis_url, zoho)

    (letter,) = await DeadLetters(redis).all()
    assert (letter.error_code, letter.rule, letter.action) == (MALFORMED_JOB, *payload.values())
    assert letter.context == {"action_replay": payload}
    assert (unreplayable(letter) or "").startswith("MALFORMED_JOB: ")


async def test_a_letter_stays_when_redis_does_not_take_its_replay(redis: ArqRedis, redis_url: str, zoho: Zoho) -> None:
    # Found in review: arq's enqueue_job answered None (as for a duplicate) when the connection dropped at
    # EXEC, and the letter was deleted with no job queued. The replay now goes through the queue's script.
    letter = await zoho_refused_once(redis, redis_url, zoho)
    dead = connect_queue(f"redis://127.0.0.1:{free_port()}/0")

    with pytest.raises(QueueUnavailableError):
        await replay_letter(dead, DeadLetters(redis), letter, stamp_ms=STAMP_MS)
    await dead.aclose()

    assert await DeadLetters(redis).get(letter.id) == letter
