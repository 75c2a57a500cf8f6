"""/crm/v7/actions/watch: enable, expiry rules, events, conditions, list, patch/replace and disable."""

from __future__ import annotations

from typing import Any

import pytest

from tests.sandbox.conftest import MakeSandbox
from tests.sandbox.harness import HISTORY, SCHEDULED, Harness, error, history_row

WATCH = "/crm/v7/actions/watch"
NEW_START = "2026-03-10T15:00:00+00:00"
OWN_URL = "https://crmflow.test/zoho/notify"


def _channel(**overrides: Any) -> dict[str, Any]:
    channel: dict[str, Any] = {
        "channel_id": 1000000068002,
        "events": ["Appointments__s.edit"],
        "notify_url": OWN_URL,
        "token": "t" * 50,
    }
    channel.update(overrides)
    return channel


async def _watch(sb: Harness, method: str, *channels: Any) -> tuple[int, Any]:
    response = await sb.api(method, WATCH, json={"watch": list(channels)})
    return response.status_code, response.json()


@pytest.fixture
async def quiet(make: MakeSandbox) -> Harness:
    """A sandbox with no default channel."""
    return await make(notify_url=None)


async def test_enable_answers_like_zoho(quiet: Harness) -> None:
    status, body = await _watch(quiet, "POST", _channel(channel_expiry="2026-03-05T09:00:00+00:00"))

    assert status == 201
    assert body == {
        "watch": [
            {
                "code": "SUCCESS",
                "details": {
                    "events": [
                        {
                            "channel_expiry": "2026-03-05T09:00:00+00:00",
                            "resource_uri": "https://www.zohoapis.com/crm/v2/Appointments__s",
                            "resource_id": "5545974000000091001",
                            "resource_name": "Appointments__s",
                            "channel_id": "1000000068002",
                        }
                    ]
                },
                "message": "Successfully subscribed for actions-watch of the given module",
                "status": "success",
            }
        ]
    }


@pytest.mark.parametrize(
    "expiry",
    [None, "2026-03-09T09:15:31+00:00", "2026-04-02T00:00:00Z"],
    ids=["absent", "a-week-and-a-second", "a-month"],
)
async def test_missing_or_too_long_expiry_becomes_one_hour(quiet: Harness, expiry: str | None) -> None:
    status, body = await _watch(quiet, "POST", _channel(channel_expiry=expiry))

    assert status == 201
    assert body["watch"][0]["details"]["events"][0]["channel_expiry"] == "2026-03-02T10:15:30+00:00"


async def test_expired_channel_stops_notifying_and_disappears(quiet: Harness) -> None:
    await _watch(quiet, "POST", _channel())
    listed = await quiet.api("GET", WATCH)
    assert listed.status_code == 200

    quiet.clock.advance(hours=1)
    quiet.drop_token()  # the access token expired with the channel
    assert (await quiet.reschedule(SCHEDULED, NEW_START)).status_code == 200

    assert quiet.callbacks == []
    assert (await quiet.api("GET", WATCH)).status_code == 204


async def test_token_longer_than_50_is_invalid_data(quiet: Harness) -> None:
    status, body = await _watch(quiet, "POST", _channel(token="t" * 51))

    assert status == 400
    assert body == {
        "watch": [
            error(
                "INVALID_DATA",
                "invalid data",
                {"maximum_length": 50, "api_name": "token", "json_path": "$.watch[0].token"},
            )
        ]
    }


@pytest.mark.parametrize("missing", ["channel_id", "events", "notify_url"])
async def test_mandatory_keys(quiet: Harness, missing: str) -> None:
    channel = _channel()
    del channel[missing]

    status, body = await _watch(quiet, "POST", channel)

    assert status == 400
    assert body["watch"][0] == error(
        "MANDATORY_NOT_FOUND", "required field not found", {"api_name": missing, "json_path": f"$.watch[0].{missing}"}
    )


@pytest.mark.parametrize("events", [[], ["Leads.edit"], ["Appointments__s.update"], "Appointments__s.all"])
async def test_bad_events_are_invalid_data(quiet: Harness, events: Any) -> None:
    status, body = await _watch(quiet, "POST", _channel(events=events))

    assert status == 400
    assert body["watch"][0]["details"]["api_name"] == "events"


async def test_events_select_operations(quiet: Harness) -> None:
    await _watch(
        quiet,
        "POST",
        _channel(channel_id=1, events=["Appointments__s.create"], notify_url="https://a.test/"),
        _channel(channel_id=2, events=["Appointments__s.edit"], notify_url="https://b.test/"),
        _channel(channel_id=3, events=["Appointments_Rescheduled_History__s.all"], notify_url="https://c.test/"),
    )

    await quiet.reschedule(SCHEDULED, NEW_START)
    await quiet.client.post("/_sandbox/appointments", json={})
    await quiet.api("POST", HISTORY, json={"data": [history_row()]})

    sent = [(body["channel_id"], body["module"], body["operation"]) for body in quiet.callback_bodies()]
    assert sent == [
        ("2", "Appointments__s", "update"),
        ("1", "Appointments__s", "insert"),
        ("3", "Appointments_Rescheduled_History__s", "insert"),
    ]


async def test_notification_condition_filters_edits(quiet: Harness) -> None:
    condition = [
        {
            "type": "field_selection",
            "module": {"api_name": "Appointments__s"},
            "field_selection": {
                "group_operator": "or",
                "group": [
                    {"field": {"api_name": "Appointment_Start_Time"}},
                    {"field": {"api_name": "Rescheduled_To"}},
                ],
            },
        }
    ]
    status, _ = await _watch(quiet, "POST", _channel(notification_condition=condition))
    assert status == 201

    await quiet.api("PUT", "/crm/v7/Appointments__s", json={"data": [{"id": SCHEDULED, "Address": "1 Main St"}]})
    await quiet.reschedule(SCHEDULED, NEW_START)

    assert [body["affected_fields"][0][SCHEDULED][0] for body in quiet.callback_bodies()] == ["Appointment_Start_Time"]


async def test_bad_notification_condition_is_rejected(quiet: Harness) -> None:
    condition = [{"type": "field_selection", "module": {"api_name": "Appointments__s"}}]

    status, body = await _watch(quiet, "POST", _channel(notification_condition=condition))

    assert status == 400
    assert body["watch"][0]["code"] == "DEPENDENT_FIELD_MISSING"


async def test_list_describes_each_channel(sb: Harness) -> None:
    response = await sb.api("GET", WATCH)

    assert response.status_code == 200
    [entry] = response.json()["watch"]
    assert entry["channel_id"] == "1000000068001"
    assert entry["events"] == ["Appointments__s.all"]
    assert entry["channel_expiry"] == "2026-03-09T09:15:30+00:00"
    assert (entry["token"], entry["return_affected_field_values"]) == ("sandbox-notify-token", True)
    assert response.json()["info"] == {"per_page": 200, "count": 1, "page": 1, "more_records": False}


async def test_enable_with_an_existing_channel_id_replaces_it(sb: Harness) -> None:
    await _watch(sb, "POST", _channel(channel_id="1000000068001", notify_url=OWN_URL))

    await sb.reschedule(SCHEDULED, NEW_START)

    assert [str(request.url) for request in sb.callbacks] == [OWN_URL]


async def test_patch_needs_events_and_drops_an_omitted_token(sb: Harness) -> None:
    status, body = await _watch(sb, "PATCH", {"channel_id": "1000000068001"})
    assert (status, body["watch"][0]["code"]) == (400, "MANDATORY_NOT_FOUND")

    status, _ = await _watch(sb, "PATCH", {"channel_id": "1000000068001", "events": ["Appointments__s.edit"]})

    assert status == 200
    [entry] = (await sb.api("GET", WATCH)).json()["watch"]
    assert (entry["token"], entry["events"], entry["notify_url"]) == (
        None,
        ["Appointments__s.edit"],
        "http://receiver.test/webhooks/zoho?source=zoho&k=v",
    )


async def test_put_replaces_only_existing_channels(sb: Harness) -> None:
    unknown_status, unknown = await _watch(sb, "PUT", _channel(channel_id=42))
    status, _ = await _watch(sb, "PUT", _channel(channel_id="1000000068001"))

    assert (unknown_status, unknown["watch"][0]["code"]) == (400, "INVALID_DATA")
    assert status == 200
    assert (await sb.api("GET", WATCH)).json()["watch"][0]["notify_url"] == OWN_URL


async def test_disable_removes_the_channel(sb: Harness) -> None:
    response = await sb.api("DELETE", WATCH, params={"channel_ids": "1000000068001"})

    assert response.status_code == 200
    assert response.json() == {
        "watch": [
            {
                "code": "SUCCESS",
                "details": {
                    "resource_uri": "https://www.zohoapis.com/crm/v2/Appointments__s",
                    "resource_id": "5545974000000091001",
                    "channel_id": "1000000068001",
                },
                "message": "Successfully un-subscribed from actions-watch",
                "status": "success",
            }
        ]
    }
    await sb.reschedule(SCHEDULED, NEW_START)
    assert sb.callbacks == []


async def test_disable_unknown_or_without_ids(sb: Harness) -> None:
    unknown = await sb.api("DELETE", WATCH, params={"channel_ids": "77"})
    missing = await sb.api("DELETE", WATCH)

    assert (unknown.status_code, unknown.json()["watch"][0]["code"]) == (400, "INVALID_DATA")
    assert missing.status_code == 400
    assert missing.json() == error(
        "REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", {"param_name": "channel_ids"}
    )
