"""Which fields' values the event log keeps: times and statuses, never people or free text."""

from __future__ import annotations

from workers.event_fields import values_kept
from workers.sources.hubspot import APPOINTMENT_PROPERTIES
from workers.sources.zoho import APPOINTMENT_FIELDS


def test_times_and_statuses_are_kept_people_and_text_are_not() -> None:
    kept = {name for name in APPOINTMENT_FIELDS if values_kept("zoho", "Appointments__s", name)}
    assert {"Appointment_Start_Time", "Rescheduled_From", "Rescheduled_To", "Status", "Reschedule_Count"} <= kept
    assert kept.isdisjoint({"Appointment_Name", "Owner", "Rescheduled_By", "Reschedule_Note", "Address"})
    hubspot = {name for name in APPOINTMENT_PROPERTIES if values_kept("hubspot", "appointments", name)}
    assert "hs_appointment_start" in hubspot
    assert hubspot.isdisjoint({"hs_appointment_name", "hs_appointment_location", "hubspot_owner_id"})


def test_unknown_fields_and_modules_are_withheld() -> None:
    assert not values_kept("zoho", "Appointments__s", "Custom_Phone__c")
    assert not values_kept("zoho", "Contacts", "Appointment_Start_Time")
