"""The /_sandbox/ control API: reset, appointment creation and the request log."""

from __future__ import annotations

import pytest

from tests.sandbox.harness import APPOINTMENTS, HISTORY, SCHEDULED, TOKEN_FORM, Harness, history_row

NEW_START = "2026-03-10T15:00:00+00:00"


async def test_reset_restores_seed_and_clears_everything(sb: Harness) -> None:
    old_token = await sb.new_token()
    await sb.reschedule(SCHEDULED, NEW_START)
    await sb.api("POST", HISTORY, json={"data": [history_row()]})
    await sb.api("DELETE", "/crm/v7/actions/watch", params={"channel_ids": "1000000068001"})
    await sb.client.post("/_sandbox/faults", json={"path_prefix": "/crm/v7/nothing", "status": 500})

    response = await sb.client.post("/_sandbox/reset")

    assert response.json() == {"status": "reset"}
    sb.drop_token()
    assert (await sb.appointment(SCHEDULED))["Reschedule_Count"] == 0
    assert (await sb.client.get("/_sandbox/history")).json()["count"] == 0
    assert (await sb.client.get("/_sandbox/faults")).json() == {"rules": []}
    assert (await sb.client.get("/_sandbox/notifications")).json()["count"] == 0
    headers = {"Authorization": f"Zoho-oauthtoken {old_token}"}
    assert (await sb.client.get(f"{APPOINTMENTS}/{SCHEDULED}", headers=headers)).status_code == 401
    watch = (await sb.api("GET", "/crm/v7/actions/watch")).json()["watch"]
    assert [entry["channel_id"] for entry in watch] == ["1000000068001"]


async def test_reset_rederives_seed_times_from_the_clock(sb: Harness) -> None:
    sb.clock.advance(days=30)

    await sb.client.post("/_sandbox/reset")

    assert (await sb.appointment(SCHEDULED))["Appointment_Start_Time"] == "2026-04-03T09:30:00+00:00"


async def test_create_appointment_fills_defaults(sb: Harness) -> None:
    response = await sb.client.post(
        "/_sandbox/appointments",
        json={"Appointment_Name": "Gutter Check - Ann", "Appointment_Start_Time": "2026-03-08T13:00:00+01:00"},
    )

    assert response.status_code == 201
    [record] = response.json()["data"]
    assert record["id"] == "5545974000003000001"
    assert record["Appointment_Start_Time"] == "2026-03-08T12:00:00+00:00"
    assert record["Appointment_End_Time"] == "2026-03-08T13:00:00+00:00"
    assert (record["Status"], record["Reschedule_Count"], record["Duration"]) == ("Scheduled", 0, 60)
    assert record["Owner"]["name"] == "Patricia Boyle"
    assert await sb.appointment(record["id"]) == record


async def test_create_appointment_can_set_any_state(sb: Harness) -> None:
    fields = {
        "id": "5545974000004000001",
        "Status": "Overdue",
        "Reschedule_Count": 3,
        "Rescheduled_By": {"id": "5545974000000393027"},
        "Rescheduled_From": "2026-02-20T10:00:00+00:00",
    }

    record = (await sb.client.post("/_sandbox/appointments", json=fields)).json()["data"][0]

    assert (record["id"], record["Status"], record["Reschedule_Count"]) == ("5545974000004000001", "Overdue", 3)
    assert record["Rescheduled_By"]["name"] == "Daniel Okafor"


@pytest.mark.parametrize(
    "fields",
    [
        {"Appointment_Start_Time": "tomorrow"},
        {"Status": "Done"},
        {"Owner": {"id": "1"}},
        {"Duration": 0},
        {"id": SCHEDULED},
        {"id": "12"},
        ["not", "an", "object"],
    ],
)
async def test_create_appointment_refuses_unusable_values(sb: Harness, fields: object) -> None:
    response = await sb.client.post("/_sandbox/appointments", json=fields)

    assert response.status_code == 400
    assert "error" in response.json()


async def test_change_appointment_reschedules_as_the_api_does_and_sends_an_update(sb: Harness) -> None:
    change = {"Appointment_Start_Time": NEW_START, "Reschedule_Reason": "By Customer"}

    response = await sb.client.patch(f"/_sandbox/appointments/{SCHEDULED}", json=change)

    assert response.status_code == 200, response.text
    [result] = response.json()["data"]
    assert (result["code"], result["details"]["id"]) == ("SUCCESS", SCHEDULED)
    record = await sb.appointment(SCHEDULED)
    assert (record["Appointment_Start_Time"], record["Reschedule_Count"]) == (NEW_START, 1)
    [body] = sb.callback_bodies()
    assert (body["operation"], body["ids"]) == ("update", [SCHEDULED])
    assert "Appointment_Start_Time" in body["affected_fields"][0][SCHEDULED]
    # Not an API request: the log holds only the test's token and read.
    assert (await sb.client.get("/_sandbox/requests")).json()["crm_writes"] == 0


@pytest.mark.parametrize(
    ("record_id", "fields", "status"),
    [(SCHEDULED, ["not", "an", "object"], 400), ("5545974000009999999", {"Appointment_Start_Time": NEW_START}, 400)],
)
async def test_change_appointment_refuses_what_the_api_refuses(
    sb: Harness, record_id: str, fields: object, status: int
) -> None:
    response = await sb.client.patch(f"/_sandbox/appointments/{record_id}", json=fields)

    assert response.status_code == status
    assert sb.callbacks == []


async def test_request_log_counts_crm_writes(sb: Harness) -> None:
    await sb.api("GET", f"{APPOINTMENTS}/{SCHEDULED}")
    await sb.reschedule(SCHEDULED, NEW_START)
    await sb.api("POST", HISTORY, json={"data": [history_row()]})

    log = (await sb.client.get("/_sandbox/requests")).json()

    assert (log["total"], log["crm_writes"]) == (4, 2)
    assert log["by_endpoint"] == {
        "POST /oauth/v2/token": 1,
        "GET /crm/v7/Appointments__s/{id}": 1,
        "PUT /crm/v7/Appointments__s": 1,
        "POST /crm/v7/Appointments_Rescheduled_History__s": 1,
    }
    assert log["by_status"] == {"200": 3, "201": 1}
    token_call, _, put, post = log["requests"]
    assert (token_call["query"], token_call["body"]) == ("", None)
    assert put["body"]["data"][0]["Appointment_Start_Time"] == NEW_START
    assert post["body"]["data"][0]["Appointment_Name"]["id"] == history_row()["Appointment_Name"]["id"]
    assert put["at"] == "2026-03-02T09:15:30.250000+00:00"

    await sb.client.delete("/_sandbox/requests")
    assert (await sb.client.get("/_sandbox/requests")).json()["total"] == 0


async def test_oauth_secrets_are_not_logged(sb: Harness) -> None:
    await sb.client.post("/oauth/v2/token", params=TOKEN_FORM)

    [entry] = (await sb.client.get("/_sandbox/requests")).json()["requests"]

    assert "sandbox-client-secret" not in str(entry)
