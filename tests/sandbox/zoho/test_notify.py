"""Zoho callbacks: the body format, when they are sent, and the delivery log."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx

from sandbox.zoho.notify import MAX_SENDING, Delivery, Notifier
from tests.sandbox.conftest import MakeSandbox
from tests.sandbox.harness import (
    APPOINTMENTS,
    CANCELLED,
    HISTORY,
    NOTIFY_URL,
    RESCHEDULED,
    SCHEDULED,
    Harness,
    history_row,
)

NEW_START = "2026-03-10T15:00:00+00:00"
SERVER_TIME = 1772442930250  # START in epoch milliseconds


async def test_reschedule_callback_body_matches_zoho(sb: Harness) -> None:
    await sb.reschedule(SCHEDULED, NEW_START, Reschedule_Reason="By Customer")

    [request] = sb.callbacks
    assert str(request.url) == NOTIFY_URL
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/json"
    body = sb.callback_bodies()[0]
    assert list(body) == [
        "server_time",
        "affected_values",
        "query_params",
        "module",
        "resource_uri",
        "ids",
        "affected_fields",
        "operation",
        "channel_id",
        "token",
    ]
    changed = [
        "Appointment_Start_Time",
        "Rescheduled_From",
        "Rescheduled_To",
        "Rescheduled_Time",
        "Rescheduled_By",
        "Reschedule_Count",
        "Reschedule_Reason",
        "Appointment_End_Time",
    ]
    assert body["server_time"] == SERVER_TIME
    assert body["query_params"] == {"source": "zoho", "k": "v"}
    assert body["module"] == "Appointments__s"
    assert body["resource_uri"] == "https://www.zohoapis.com/crm/v2/Appointments__s"
    assert body["ids"] == [SCHEDULED]
    assert body["affected_fields"] == [{SCHEDULED: changed}]
    [values] = body["affected_values"]
    assert values["record_id"] == SCHEDULED
    assert list(values["values"]) == changed
    assert values["values"]["Appointment_Start_Time"] == NEW_START
    assert values["values"]["Reschedule_Count"] == 1
    assert (body["operation"], body["channel_id"], body["token"]) == ("update", "1000000068001", "sandbox-notify-token")


async def test_without_affected_values_when_not_asked(make: MakeSandbox) -> None:
    sb = await make(return_affected_field_values=False, notify_token=None)

    await sb.reschedule(SCHEDULED, NEW_START)

    body = sb.callback_bodies()[0]
    assert "affected_values" not in body
    assert body["token"] is None


async def test_one_callback_carries_every_record_of_a_call(sb: Harness) -> None:
    data = [
        {"id": SCHEDULED, "Appointment_Start_Time": NEW_START},
        {"id": RESCHEDULED, "Reschedule_Note": "bad"},
        {"id": CANCELLED, "Appointment_Name": "Duct Cleaning - Chen Wei"},
    ]

    response = await sb.api("PUT", APPOINTMENTS, json={"data": data})

    assert response.status_code == 207
    [body] = sb.callback_bodies()
    assert body["ids"] == [SCHEDULED, CANCELLED]
    assert body["affected_fields"][1] == {CANCELLED: ["Appointment_Name"]}


async def test_failed_writes_send_nothing(sb: Harness) -> None:
    await sb.reschedule(CANCELLED, NEW_START)

    assert sb.callbacks == []
    assert (await sb.client.get("/_sandbox/notifications")).json() == {"count": 0, "deliveries": []}


async def test_control_created_appointment_sends_an_insert(sb: Harness) -> None:
    response = await sb.client.post("/_sandbox/appointments", json={"Appointment_Name": "Gutter Check - Ann"})

    new_id = response.json()["data"][0]["id"]
    [body] = sb.callback_bodies()
    assert body["operation"] == "insert"
    assert body["ids"] == [new_id]
    assert body["affected_fields"] == []
    assert "affected_values" not in body


async def test_history_rows_do_not_notify_the_appointments_channel(sb: Harness) -> None:
    await sb.api("POST", HISTORY, json={"data": [history_row()]})

    assert sb.callbacks == []


async def test_no_notify_url_means_no_callbacks(make: MakeSandbox) -> None:
    sb = await make(notify_url=None)

    await sb.reschedule(SCHEDULED, NEW_START)

    assert sb.callbacks == []


async def test_deliveries_are_logged_with_status_or_error(sb: Harness) -> None:
    sb.callback_status = 503
    await sb.reschedule(SCHEDULED, NEW_START)
    sb.callback_error = httpx.ConnectError("connection refused")
    await sb.reschedule(SCHEDULED, "2026-03-11T15:00:00+00:00")

    log = (await sb.client.get("/_sandbox/notifications")).json()

    assert log["count"] == 2
    first, second = log["deliveries"]
    assert (first["seq"], first["status_code"], first["error"]) == (1, 503, None)
    assert first["body"] == sb.callback_bodies()[0]
    assert (first["channel_id"], first["url"]) == ("1000000068001", NOTIFY_URL)
    assert (second["status_code"], second["error"]) == (None, "ConnectError: connection refused")
    assert len(sb.callbacks) == 2  # attempted once each: no retries

    cleared = await sb.client.delete("/_sandbox/notifications")
    assert cleared.json()["count"] == 0


async def test_thousands_of_callbacks_at_once_are_all_sent_a_bounded_number_at_a_time() -> None:
    """Changes coming faster than the receiver answers wait their turn in the sandbox (at most MAX_SENDING in
    flight), so none is dropped by the HTTP client's pool timeout: once, 2,000 reschedules offered at once by
    bench/ lost every callback to PoolTimeout."""
    in_flight = most = 0

    async def slow_receiver(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.002)
        in_flight -= 1
        return httpx.Response(200)

    # A pool as small as the timeout is short, so that a wait in the pool would show at once.
    limits = httpx.Limits(max_connections=MAX_SENDING)
    timeout = httpx.Timeout(1.0, pool=0.05)
    async with httpx.AsyncClient(transport=httpx.MockTransport(slow_receiver), limits=limits, timeout=timeout) as http:
        notifier = Notifier(lambda: http, lambda: datetime.now(UTC))
        deliveries = [Delivery("1", "http://receiver/webhooks/zoho", {"ids": [str(n)]}) for n in range(2000)]
        await asyncio.gather(*(notifier.deliver([d]) for d in deliveries))

    assert len(notifier.log) == 2000
    assert {entry["status_code"] for entry in notifier.log} == {200}
    assert most <= MAX_SENDING
    # Each entry says when its change queued the callback and when it went out after waiting its turn.
    queued = [datetime.fromisoformat(entry["queued_at"]) for entry in notifier.log]
    sent = [datetime.fromisoformat(entry["sent_at"]) for entry in notifier.log]
    assert all(q <= s for q, s in zip(queued, sent, strict=True))
    assert max(s - q for q, s in zip(queued, sent, strict=True)).total_seconds() > 0  # the later ones waited
