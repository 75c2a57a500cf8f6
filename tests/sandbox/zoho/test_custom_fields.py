"""PUT /Appointments__s stores the org's custom fields, notifies their change, and keeps Zoho's reschedule trap."""

from __future__ import annotations

from tests.sandbox.harness import APPOINTMENTS, SCHEDULED, Harness, field


async def test_a_custom_field_is_stored_read_back_and_notified(sb: Harness) -> None:
    body = {"data": [{"Moved_By__c": "crmflow", "Visits": 3, "Confirmed": True}]}

    response = await sb.api("PUT", f"{APPOINTMENTS}/{SCHEDULED}", json=body)

    assert response.status_code == 200 and response.json()["data"][0]["code"] == "SUCCESS"
    record = await sb.appointment(SCHEDULED)
    assert (record["Moved_By__c"], record["Visits"], record["Confirmed"]) == ("crmflow", 3, True)
    [callback] = sb.callback_bodies()
    assert callback["operation"] == "update"
    assert set(callback["affected_fields"][0][SCHEDULED]) >= {"Moved_By__c", "Visits", "Confirmed"}
    assert callback["affected_values"][0]["values"]["Moved_By__c"] == "crmflow"


async def test_writing_the_value_a_custom_field_has_changes_nothing_in_it(sb: Harness) -> None:
    await sb.api("PUT", f"{APPOINTMENTS}/{SCHEDULED}", json={"data": [{"Moved_By__c": "crmflow"}]})
    await sb.api("PUT", f"{APPOINTMENTS}/{SCHEDULED}", json={"data": [{"Moved_By__c": "crmflow"}]})

    first, second = sb.callback_bodies()
    assert "Moved_By__c" in first["affected_fields"][0][SCHEDULED]
    assert "Moved_By__c" not in second["affected_fields"][0][SCHEDULED]


async def test_a_custom_field_takes_plain_values_only(sb: Harness) -> None:
    response = await sb.api("PUT", f"{APPOINTMENTS}/{SCHEDULED}", json={"data": [{"Moved_By__c": {"a": 1}}]})

    assert response.status_code == 400
    assert response.json()["data"][0]["details"] == field(0, "Moved_By__c")
    assert "Moved_By__c" not in await sb.appointment(SCHEDULED)


async def test_a_reschedule_note_alone_is_refused_as_zoho_does(sb: Harness) -> None:
    body = {"data": [{"Reschedule_Note": "Moved with 3 h notice", "Moved_By__c": "crmflow"}]}

    response = await sb.api("PUT", f"{APPOINTMENTS}/{SCHEDULED}", json=body)

    assert response.status_code == 400
    [result] = response.json()["data"]
    assert result["code"] == "DEPENDENT_FIELD_MISSING"
    assert (result["details"]["api_name"], result["details"]["dependee"]["api_name"]) == (
        "Appointment_Start_Time",
        "Reschedule_Note",
    )
    assert "Moved_By__c" not in await sb.appointment(SCHEDULED)
