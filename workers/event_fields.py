"""Which fields' old and new values the event log may keep: the ones that are not personal data. Pure.

Decided from the record models (workers/sources/zoho.py APPOINTMENT_FIELDS, workers/sources/hubspot.py
APPOINTMENT_PROPERTIES): times, durations, statuses, counters and the CRM's own ids say when and how an
appointment moved, not who it is about. Everything else is withheld (its name is kept, its values are not):
names and free text (Appointment_Name, Reschedule_Reason/_Note, Additional_Information, Location, Address,
Service_Name, Tag), people (Owner, Appointment_For, Contact_Name__s, Created_By, Modified_By, Rescheduled_By,
Cancelled_By, hubspot_owner_id) and any field not named here, such as a custom field a rule watches. An
allow list, so that a field added to a model later is withheld until someone decides otherwise.
"""

from __future__ import annotations

_ZOHO_APPOINTMENTS = frozenset(
    {
        "Appointment_Start_Time",
        "Appointment_End_Time",
        "Duration",
        "Status",
        "Remind_At",
        "Rescheduled_From",
        "Rescheduled_To",
        "Rescheduled_Time",
        "Reschedule_Count",
        "Cancelled_Time",
        "Job_Sheet_Created__s",
        "Created_Time",
        "Modified_Time",
        "Last_Activity_Time",
        "Record_Status__s",
        "id",
    }
)

_HUBSPOT_APPOINTMENTS = frozenset(
    {
        "hs_appointment_start",
        "hs_appointment_end",
        "hs_appointment_status",
        "hs_duration",
        "hs_pipeline",
        "hs_pipeline_stage",
        "hs_object_id",
        "hs_createdate",
        "hs_lastmodifieddate",
    }
)

# HubSpot names its appointments object by id or by name (workers/sources/hubspot.py APPOINTMENT_ALIASES).
_NOT_PERSONAL: dict[tuple[str, str], frozenset[str]] = {
    ("zoho", "Appointments__s"): _ZOHO_APPOINTMENTS,
    ("hubspot", "0-421"): _HUBSPOT_APPOINTMENTS,
    ("hubspot", "appointment"): _HUBSPOT_APPOINTMENTS,
    ("hubspot", "appointments"): _HUBSPOT_APPOINTMENTS,
}


def values_kept(source: str, module: str, field: str) -> bool:
    """True when the event log may keep `field`'s old and new values (it is not personal data)."""
    return field in _NOT_PERSONAL.get((source, module), frozenset())
