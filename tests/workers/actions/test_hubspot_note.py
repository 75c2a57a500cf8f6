"""log_reschedule_history (HubSpot): notes from property history, exactly once, with a looked-up association."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from arq.connections import ArqRedis
from pydantic import SecretStr

from workers.actions.hubspot_note import log_hubspot_reschedule, note_key, note_properties, reschedules
from workers.crm.hubspot import HubSpotClient
from workers.crm.limits import HubSpotLimiter
from workers.diff import Change, FieldChange
from workers.errors import CrmRateLimitedError, CrmTransientError
from workers.ledger import Ledger
from workers.record import HistoryEntry, Record
from workers.rules.model import LogRescheduleHistoryParams

A, B, C = "2026-12-01T09:00:00.000Z", "2026-12-02T09:00:00.000Z", "2026-12-03T14:30:00.000Z"
T1, T2, T3 = (datetime(2026, 11, 20, h, tzinfo=UTC) for h in (8, 9, 10))
NO_PARAMS = LogRescheduleHistoryParams()


def record(*history: HistoryEntry, start: str = C) -> Record:
    fields = {"hs_appointment_name": "Annual checkup", "hs_appointment_start": start}
    return Record("hubspot", "appointments", "30118", T3, fields, {"hs_appointment_start": history})


FULL = record(
    HistoryEntry(A, T1, "CRM_UI", None, "7"),
    HistoryEntry(B, T2, "INTEGRATION", "54321", None),
    HistoryEntry(C, T3, "CRM_UI", None, "9"),
)
A_TO_C = Change(fields={"hs_appointment_start": FieldChange(A, C)})


def test_every_reschedule_since_the_last_seen_start_from_history() -> None:
    steps = reschedules(FULL, A_TO_C)

    assert [(s.old, s.new, s.at, s.user_id, s.source) for s in steps] == [
        (A, B, T2, None, "INTEGRATION 54321"),
        (B, C, T3, "9", "CRM_UI"),
    ]


def test_without_usable_history_the_change_itself() -> None:
    (step,) = reschedules(record(), A_TO_C)

    assert (step.old, step.new, step.at) == (A, C, T3)


def test_the_note_says_from_to_who_and_why() -> None:
    params = LogRescheduleHistoryParams(reason="By Customer", note="Asked by phone")

    note = note_properties(FULL, reschedules(FULL, A_TO_C)[1], params)

    assert note == {
        "hs_timestamp": str(int(T3.timestamp() * 1000)),
        "hs_note_body": (
            "Annual checkup was rescheduled from 2026-12-02 09:00 UTC to 2026-12-03 14:30 UTC.\n"
            "Changed by HubSpot user 9 (CRM_UI).\n"
            "Reason: By Customer.\n"
            "Note: Asked by phone"
        ),
    }


class FakeHubSpot:
    """Notes, associations and labels in memory; can lose the answer of the next note create."""

    def __init__(self) -> None:
        self.notes: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []
        self.lose_answer = False
        self.daily_remaining = "1000"

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.calls.append(f"{request.method} {path}")
        headers = {
            "X-HubSpot-RateLimit-Daily-Remaining": self.daily_remaining,
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
        }
        if path.endswith("/labels"):
            return httpx.Response(
                200, json={"results": [{"category": "HUBSPOT_DEFINED", "typeId": 1207, "label": None}]}
            )
        if path.endswith("/associations/notes"):
            return httpx.Response(200, json={"results": [{"toObjectId": int(i)} for i in self.notes]}, headers=headers)
        if path.endswith("/notes/batch/read"):
            ids = [item["id"] for item in orjson.loads(request.content)["inputs"]]
            return httpx.Response(200, json={"results": [self.notes[i] for i in ids]}, headers=headers)
        body = orjson.loads(request.content)
        assert body["associations"][0]["types"][0]["associationTypeId"] == 1207
        note = {"id": str(len(self.notes) + 1), "properties": body["properties"]}
        self.notes[note["id"]] = note
        if self.lose_answer:
            self.lose_answer = False
            raise httpx.ReadTimeout("lost", request=request)
        return httpx.Response(201, json=note, headers=headers)


def client(fake: FakeHubSpot, redis: ArqRedis | None = None) -> HubSpotClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(fake.handle))
    gate = limiter(redis) if redis is not None else None
    return HubSpotClient(http, api_base="https://api.example", token=SecretStr("pat-na1-x"), gate=gate)


def limiter(redis: ArqRedis) -> HubSpotLimiter:
    return HubSpotLimiter(redis, "acct", requests_per_10s=100, call_timeout_s=10, max_wait_s=1)


async def test_one_note_per_reschedule_once(redis: ArqRedis) -> None:
    fake = FakeHubSpot()
    hubspot, ledger = client(fake), Ledger(redis)

    first = await log_hubspot_reschedule(hubspot, ledger, FULL, A_TO_C, NO_PARAMS)
    again = await log_hubspot_reschedule(hubspot, ledger, FULL, A_TO_C, NO_PARAMS)

    assert (first.status, first.detail) == ("created", "1,2")
    assert again.status == "already_logged"
    assert len(fake.notes) == 2
    assert fake.calls.count("GET /crm/associations/2026-03/notes/appointments/labels") == 1


async def test_a_lost_answer_is_found_among_the_appointments_notes(redis: ArqRedis) -> None:
    # Without the look-before-write after a pending entry, the retry would create a second note.
    fake = FakeHubSpot()
    fake.lose_answer = True
    one_step = Change(fields={"hs_appointment_start": FieldChange(B, C)})
    hubspot, ledger = client(fake), Ledger(redis)

    with pytest.raises(CrmTransientError):
        await log_hubspot_reschedule(hubspot, ledger, FULL, one_step, NO_PARAMS)
    retried = await log_hubspot_reschedule(hubspot, ledger, FULL, one_step, NO_PARAMS)

    assert (retried.status, retried.detail) == ("found_in_crm", "1")
    assert len(fake.notes) == 1


async def test_a_spent_daily_quota_pauses_every_worker(redis: ArqRedis) -> None:
    fake = FakeHubSpot()
    fake.daily_remaining = "0"
    one_step = Change(fields={"hs_appointment_start": FieldChange(B, C)})
    first_worker, second_worker = client(fake, redis), client(fake, redis)
    await log_hubspot_reschedule(first_worker, Ledger(redis), FULL, one_step, NO_PARAMS)
    calls = len(fake.calls)

    with pytest.raises(CrmRateLimitedError) as raised:
        await second_worker.get_appointment("30118")

    assert raised.value.code == "LIMITER_PAUSED"
    assert 3590 < (raised.value.retry_after_s or 0) <= 3600
    assert len(fake.calls) == calls  # no request was spent on a certain 429


async def test_batch_read_asks_at_most_50_with_history(redis: ArqRedis) -> None:
    sizes: list[int] = []

    def handle(request: httpx.Request) -> httpx.Response:
        inputs = orjson.loads(request.content)["inputs"]
        sizes.append(len(inputs))
        results = [
            {"id": item["id"], "properties": {"hs_appointment_start": A}, "updatedAt": "2026-11-20T08:00:00Z"}
            for item in inputs
            if item["id"] != "7"
        ]
        errors = [{"status": "error", "category": "OBJECT_NOT_FOUND", "context": {"ids": ["7"]}}]
        return httpx.Response(207 if len(results) < len(inputs) else 200, json={"results": results, "errors": errors})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    hubspot = HubSpotClient(http, api_base="https://api.example", token=SecretStr("t"))

    records, missing = await hubspot.get_appointments([str(i) for i in range(120)])

    assert sizes == [50, 50, 20]
    assert len(records) == 119
    assert "7" in missing


def test_history_walk_starts_at_the_last_seen_state_not_the_last_match() -> None:
    # Seen at A (snapshot at T1); since then A -> B -> A -> C. Anchoring on the last A would log one move.
    t4 = datetime(2026, 11, 20, 11, tzinfo=UTC)
    history = record(
        HistoryEntry(A, T1, "CRM_UI", None, "7"),
        HistoryEntry(B, T2, "CRM_UI", None, "7"),
        HistoryEntry(A, T3, "CRM_UI", None, "7"),
        HistoryEntry(C, t4, "CRM_UI", None, "7"),
    )
    change = Change(fields={"hs_appointment_start": FieldChange(A, C)}, since=T1)

    assert [(s.old, s.new) for s in reschedules(history, change)] == [(A, B), (B, A), (A, C)]


def test_a_start_set_for_the_first_time_is_not_a_reschedule() -> None:
    change = Change(fields={"hs_appointment_start": FieldChange(None, C)})

    assert reschedules(record(), change) == []


def test_an_inferred_step_has_the_same_key_whatever_the_records_modified_time() -> None:
    # Without history the step is dated by the record's last change; a retry after another edit must still
    # find the pending note under the same ledger key.
    later = Record("hubspot", "appointments", "30118", T3 + timedelta(hours=1), FULL.fields, {})
    (before,), (after,) = reschedules(record(), A_TO_C), reschedules(later, A_TO_C)

    assert before.inferred and after.inferred
    assert note_key(record(), before) == note_key(later, after)


async def test_a_first_seen_appointment_looks_for_its_note_before_writing(redis: ArqRedis) -> None:
    # E.g. restored from the recycle bin after the ledger forgot the note written before its deletion.
    fake = FakeHubSpot()
    one_step = Change(fields={"hs_appointment_start": FieldChange(B, C)})
    await log_hubspot_reschedule(client(fake), Ledger(redis), FULL, one_step, NO_PARAMS)
    await redis.flushdb()  # the ledger's 30 days have passed

    first_seen = Change(fields=one_step.fields, first_seen=True)
    again = await log_hubspot_reschedule(client(fake), Ledger(redis), FULL, first_seen, NO_PARAMS)

    assert again.status == "found_in_crm"
    assert len(fake.notes) == 1


async def test_a_shared_pause_only_ever_grows(redis: ArqRedis) -> None:
    gate = limiter(redis)

    await gate.pause(3600, base_s=3600, cap_s=3600)
    in_force = await gate.pause(10, base_s=10, cap_s=10)

    assert 3590 < in_force <= 3600
    assert 3590_000 < await redis.pttl(gate.key("pause")) <= 3600_000
