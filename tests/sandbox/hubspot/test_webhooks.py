"""HubSpot webhooks: event shape, signatures, batching, retries with attemptNumber, redelivery, reset and shutdown."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import orjson

from sandbox.hubspot.signing import signature_v1
from tests.sandbox.conftest import MakeSandbox
from tests.sandbox.harness import (
    BEN,
    HS_APPOINTMENTS,
    HS_NOTES,
    HS_RESCHEDULED,
    HS_SCHEDULED,
    HUBSPOT_FAST,
    HUBSPOT_SECRET,
    HUBSPOT_WEBHOOK_URL,
    Harness,
    assert_signed,
    v1_signature,
    v3_signature,
)

START_MS = 1772442930250  # the fake clock's start in epoch milliseconds
NEW_START = "2026-03-10T15:00:00Z"
ONE = f"{HS_APPOINTMENTS}/{HS_SCHEDULED}"
TIMESTAMP = "X-HubSpot-Request-Timestamp"
V3 = "X-HubSpot-Signature-v3"
VECTOR_SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
VECTOR_BODY = (
    b'[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,'
    b'"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM",'
    b'"changeFlag":"NEW","appId":54321}]'
)
VECTOR_SIGNATURE = "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"


async def _reschedule(sb: Harness, object_id: str = HS_SCHEDULED, start: str = NEW_START) -> None:
    response = await sb.hs(
        "PATCH", f"{HS_APPOINTMENTS}/{object_id}", json={"properties": {"hs_appointment_start": start}}
    )
    assert response.status_code == 200, response.text


async def _ui_change(sb: Harness, object_id: str, user_id: Any = BEN, **properties: str) -> httpx.Response:
    return await sb.client.patch(
        f"/_sandbox/hubspot/appointments/{object_id}", json={"properties": properties, "user_id": user_id}
    )


async def _log(sb: Harness) -> list[dict[str, Any]]:
    deliveries: list[dict[str, Any]] = (await sb.client.get("/_sandbox/hubspot/webhooks")).json()["deliveries"]
    return deliveries


async def _subscription_ids(sb: Harness) -> dict[str, int]:
    results = (await sb.client.get("/_sandbox/hubspot/subscriptions")).json()["results"]
    return {result["propertyName"] or result["subscriptionType"]: result["id"] for result in results}


def test_the_v1_test_vector_from_hubspots_docs() -> None:
    assert v1_signature(VECTOR_SECRET, VECTOR_BODY) == VECTOR_SIGNATURE
    assert signature_v1(VECTOR_SECRET, VECTOR_BODY) == VECTOR_SIGNATURE


async def test_a_reschedule_sends_one_signed_batch_with_an_event_per_property(hs: Harness) -> None:
    subscriptions = await _subscription_ids(hs)

    await _reschedule(hs)
    await hs.settle()

    [request] = hs.webhooks
    assert (request.method, str(request.url)) == ("POST", HUBSPOT_WEBHOOK_URL)
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers[TIMESTAMP] == str(START_MS)
    assert_signed(request)
    expected_v3 = v3_signature(HUBSPOT_SECRET, "POST", HUBSPOT_WEBHOOK_URL, request.content, str(START_MS))
    assert request.headers[V3] == expected_v3
    start, end = orjson.loads(request.content)
    assert list(start) == [
        "eventId",
        "subscriptionId",
        "portalId",
        "appId",
        "occurredAt",
        "subscriptionType",
        "attemptNumber",
        "objectId",
        "objectTypeId",
        "propertyName",
        "propertyValue",
        "changeSource",
        "sourceId",
        "isSensitive",
    ]
    assert {key: value for key, value in start.items() if key != "eventId"} == {
        "subscriptionId": subscriptions["hs_appointment_start"],
        "portalId": 62515,
        "appId": 54321,
        "occurredAt": START_MS,
        "subscriptionType": "object.propertyChange",
        "attemptNumber": 0,
        "objectId": int(HS_SCHEDULED),
        "objectTypeId": "0-421",
        "propertyName": "hs_appointment_start",
        "propertyValue": "1773154800000",
        "changeSource": "INTEGRATION",
        "sourceId": "54321",
        "isSensitive": False,
    }
    assert (end["propertyName"], end["propertyValue"]) == ("hs_appointment_end", "1773158400000")
    assert end["subscriptionId"] == subscriptions["hs_appointment_end"]
    assert isinstance(start["eventId"], int) and start["eventId"] != end["eventId"]


async def test_the_answer_never_waits_for_the_delivery(make: MakeSandbox) -> None:
    sb = await make(**{**HUBSPOT_FAST, "hubspot_batch_window_ms": 0})
    sb.webhook_delay_s = 0.3

    started = time.perf_counter()
    await _reschedule(sb)
    elapsed = time.perf_counter() - started
    logged_before = len(await _log(sb))
    await sb.settle()

    assert elapsed < 0.2
    assert logged_before == 0
    [entry] = await _log(sb)
    assert entry["status_code"] == 200
    assert entry["duration_ms"] >= 300


async def test_a_ui_change_is_a_crm_ui_event_with_the_user(hs: Harness) -> None:
    response = await _ui_change(hs, HS_RESCHEDULED, str(BEN), hs_appointment_status="NO_SHOW")
    await hs.settle()

    assert response.status_code == 200
    assert response.json()["properties"]["hs_appointment_status"] == "NO_SHOW"
    [event] = hs.webhook_events()
    assert (event["changeSource"], event["sourceId"]) == ("CRM_UI", f"userId:{BEN}")
    assert (event["propertyName"], event["propertyValue"]) == ("hs_appointment_status", "NO_SHOW")
    record = await hs.hs_appointment(HS_RESCHEDULED, propertiesWithHistory="hs_appointment_status")
    assert record["propertiesWithHistory"]["hs_appointment_status"][0] == {
        "value": "NO_SHOW",
        "timestamp": "2026-03-02T09:15:30.250Z",
        "sourceType": "CRM_UI",
        "sourceId": f"userId:{BEN}",
        "updatedByUserId": BEN,
    }


async def test_control_changes_are_checked_like_api_changes(hs: Harness) -> None:
    bad_value = await _ui_change(hs, HS_SCHEDULED, hs_appointment_status="LATE")
    bad_user = await _ui_change(hs, HS_SCHEDULED, "ben", hs_appointment_status="NO_SHOW")
    missing = await _ui_change(hs, "99999999999", hs_appointment_status="NO_SHOW")
    await hs.settle()

    assert bad_value.status_code == 400
    assert bad_value.json()["detail"]["errors"][0]["code"] == "INVALID_OPTION"
    assert bad_user.status_code == 400
    assert missing.status_code == 404
    assert hs.webhooks == []


async def test_changes_within_the_window_go_in_one_batch(make: MakeSandbox) -> None:
    sb = await make(**{**HUBSPOT_FAST, "hubspot_batch_window_ms": 150})

    await _reschedule(sb)
    sb.clock.advance(seconds=2)
    await _ui_change(sb, HS_RESCHEDULED, hs_appointment_status="CANCELED")
    created = await sb.hs("POST", HS_APPOINTMENTS, json={"properties": {"hs_appointment_name": "Gutter check"}})
    await sb.settle()

    [body] = sb.webhook_bodies()
    assert [(event["objectId"], event["subscriptionType"], event.get("propertyName")) for event in body] == [
        (int(HS_SCHEDULED), "object.propertyChange", "hs_appointment_start"),
        (int(HS_SCHEDULED), "object.propertyChange", "hs_appointment_end"),
        (int(HS_RESCHEDULED), "object.propertyChange", "hs_appointment_status"),
        (int(created.json()["id"]), "object.creation", None),
    ]
    assert [event["occurredAt"] for event in body] == [START_MS, START_MS, START_MS + 2000, START_MS + 2000]
    assert len({event["eventId"] for event in body}) == 4


async def test_more_than_100_events_go_in_several_batches_and_event_ids_repeat(make: MakeSandbox) -> None:
    sb = await make(**{**HUBSPOT_FAST, "hubspot_batch_window_ms": 400})
    for index in range(30):  # a creation plus start, end and status changes: 4 events each
        response = await sb.client.post(
            "/_sandbox/hubspot/appointments", json={"properties": {"hs_appointment_name": f"Visit {index}"}}
        )
        assert response.status_code == 201
    await sb.settle()

    bodies = sb.webhook_bodies()
    assert sorted(len(body) for body in bodies) == [20, 100]
    events = sb.webhook_events()
    assert len(events) == 120
    assert {event["changeSource"] for event in events} == {"CRM_UI"}
    assert len({event["eventId"] for event in events}) == 50  # not unique, as HubSpot warns
    for request in sb.webhooks:
        assert_signed(request)


async def test_failed_deliveries_are_retried_with_attempt_numbers_and_fresh_signatures(hs: Harness) -> None:
    hs.webhook_answers = [500, 503, 200]
    hs.on_webhook = lambda request: hs.clock.advance(seconds=1)

    await _ui_change(hs, HS_SCHEDULED, hs_appointment_status="COMPLETED")
    await hs.settle()

    bodies = hs.webhook_bodies()
    assert [body[0]["attemptNumber"] for body in bodies] == [0, 1, 2]
    assert all({**body[0], "attemptNumber": 0} == bodies[0][0] for body in bodies)
    assert [request.headers[TIMESTAMP] for request in hs.webhooks] == [
        str(START_MS),
        str(START_MS + 1000),
        str(START_MS + 2000),
    ]
    for request in hs.webhooks:
        assert_signed(request)
    assert len({request.headers[V3] for request in hs.webhooks}) == 3
    log = await _log(hs)
    assert [(entry["seq"], entry["batch"], entry["attempt"], entry["status_code"]) for entry in log] == [
        (1, 1, 0, 500),
        (2, 1, 1, 503),
        (3, 1, 2, 200),
    ]
    assert log[1]["body"] == bodies[1]
    assert log[1]["headers"][V3] == hs.webhooks[1].headers[V3]
    assert log[1]["url"] == HUBSPOT_WEBHOOK_URL


async def test_retries_stop_after_the_configured_delays(make: MakeSandbox) -> None:
    ten = await make(**HUBSPOT_FAST)
    two = await make(**{**HUBSPOT_FAST, "hubspot_retry_delays_s": (0.001, 0.001)})
    for sb in (ten, two):
        sb.webhook_answers = [500] * 20
        await _ui_change(sb, HS_SCHEDULED, hs_appointment_status="COMPLETED")
        await sb.settle()

    assert [body[0]["attemptNumber"] for body in ten.webhook_bodies()] == list(range(11))
    assert len(two.webhooks) == 3


async def test_connection_errors_and_4xx_answers_are_retried(hs: Harness) -> None:
    hs.webhook_answers = [httpx.ConnectError("connection refused"), 400, 204]

    await _ui_change(hs, HS_SCHEDULED, hs_appointment_status="COMPLETED")
    await hs.settle()

    log = await _log(hs)
    assert [(entry["status_code"], entry["error"]) for entry in log] == [
        (None, "ConnectError: connection refused"),
        (400, None),
        (204, None),
    ]


async def test_a_slow_receiver_counts_as_a_failure(make: MakeSandbox) -> None:
    sb = await make(**{**HUBSPOT_FAST, "hubspot_webhook_timeout_s": 0.05})
    delays = [0.5]

    def slow_once(request: httpx.Request) -> None:
        sb.webhook_delay_s = delays.pop() if delays else 0.0

    sb.on_webhook = slow_once
    await _ui_change(sb, HS_SCHEDULED, hs_appointment_status="COMPLETED")
    await sb.settle()

    log = await _log(sb)
    assert [entry["attempt"] for entry in log] == [0, 1]
    assert log[0]["error"].startswith("TimeoutError")
    assert log[1]["status_code"] == 200


async def test_redeliver_sends_the_same_bytes_freshly_signed(hs: Harness) -> None:
    await _reschedule(hs)
    await hs.settle()
    hs.clock.advance(minutes=1)

    response = await hs.client.post("/_sandbox/hubspot/webhooks/1/redeliver")
    unknown = await hs.client.post("/_sandbox/hubspot/webhooks/99/redeliver")

    assert response.status_code == 200
    entry = response.json()
    assert (entry["seq"], entry["redelivery_of"], entry["attempt"], entry["status_code"]) == (2, 1, 0, 200)
    first, second = hs.webhooks
    assert second.content == first.content
    assert second.headers[TIMESTAMP] == str(START_MS + 60_000)
    assert_signed(second)
    assert second.headers[V3] != first.headers[V3]
    assert unknown.status_code == 404


async def test_deletion_and_creation_events(hs: Harness) -> None:
    created = await hs.hs(
        "POST",
        HS_APPOINTMENTS,
        json={"properties": {"hs_appointment_name": "Gutter check", "hs_appointment_start": NEW_START}},
    )
    deleted = await hs.hs("DELETE", f"{HS_APPOINTMENTS}/{created.json()['id']}")
    await hs.settle()

    assert (created.status_code, deleted.status_code) == (201, 204)
    events = hs.webhook_events()
    assert [(event["subscriptionType"], event.get("propertyName")) for event in events] == [
        ("object.creation", None),
        ("object.propertyChange", "hs_appointment_start"),
        ("object.deletion", None),
    ]
    assert {event["objectId"] for event in events} == {int(created.json()["id"])}
    assert "propertyValue" not in events[0] and "isSensitive" not in events[2]
    assert {event["changeSource"] for event in events} == {"INTEGRATION"}


async def test_creation_property_events_and_the_datetime_format_are_configurable(make: MakeSandbox) -> None:
    sb = await make(**HUBSPOT_FAST, hubspot_creation_property_events=False, hubspot_webhook_datetime_format="iso")

    await sb.client.post("/_sandbox/hubspot/appointments", json={"properties": {"hs_appointment_name": "A"}})
    await _reschedule(sb)
    await sb.settle()

    events = sb.webhook_events()
    assert [event.get("propertyName") for event in events] == [None, "hs_appointment_start", "hs_appointment_end"]
    assert events[1]["propertyValue"] == "2026-03-10T15:00:00.000Z"


async def test_notes_and_unsubscribed_properties_send_nothing(hs: Harness) -> None:
    await hs.hs("POST", HS_NOTES, json={"properties": {"hs_timestamp": "1", "hs_note_body": "x"}})
    await hs.hs("PATCH", ONE, json={"properties": {"hs_appointment_location": "Back door"}})
    await hs.settle()

    assert hs.webhooks == []


async def test_nothing_is_sent_without_a_webhook_url(sb: Harness) -> None:
    await _reschedule(sb)
    await sb.settle()

    assert sb.webhooks == [] and sb.callbacks == []
    assert await _log(sb) == []


async def test_reset_cancels_pending_and_retrying_deliveries(make: MakeSandbox) -> None:
    sb = await make(**{**HUBSPOT_FAST, "hubspot_retry_delays_s": (0.05,) * 10})
    sb.webhook_answers = [500] * 20
    first_attempt = asyncio.Event()
    sb.on_webhook = lambda request: first_attempt.set()
    await _reschedule(sb)
    await asyncio.wait_for(first_attempt.wait(), 1)
    await sb.client.post("/_sandbox/reset")
    await sb.settle()

    assert len(sb.webhooks) == 1
    assert await _log(sb) == []
    sb.webhook_answers = []
    await _reschedule(sb)
    await sb.settle()
    assert (await _log(sb))[0]["batch"] == 1


async def test_shutdown_stops_deliveries(make: MakeSandbox) -> None:
    sb = await make(**{**HUBSPOT_FAST, "hubspot_batch_window_ms": 50})
    await _reschedule(sb)

    await sb.app.state.runtime.aclose()
    await asyncio.sleep(0.08)

    assert sb.webhooks == []


async def test_the_webhook_log_can_be_cleared(hs: Harness) -> None:
    await _reschedule(hs)
    await hs.settle()

    cleared = await hs.client.delete("/_sandbox/hubspot/webhooks")

    assert cleared.json() == {"count": 0, "deliveries": []}
    assert (await hs.client.post("/_sandbox/hubspot/webhooks/1/redeliver")).status_code == 404
