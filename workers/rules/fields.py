"""Field catalogue: the CRM sources, their modules and the field API names rules may name. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

# Zoho CRM Appointments__s, from GET /crm/v7/Appointments__s/{id} (Zoho reference §3.1). Meta keys such as
# $editable are not fields and are left out.
ZOHO_APPOINTMENTS: frozenset[str] = frozenset(
    {
        "Owner",
        "Appointment_Name",
        "Appointment_Start_Time",
        "Appointment_End_Time",
        "Duration",
        "Status",
        "Service_Name",
        "Appointment_For",
        "Location",
        "Address",
        "Remind_At",
        "Additional_Information",
        "Rescheduled_From",
        "Rescheduled_To",
        "Rescheduled_Time",
        "Rescheduled_By",
        "Reschedule_Reason",
        "Reschedule_Note",
        "Reschedule_Count",
        "Cancelled_Time",
        "Cancelled_By",
        "Cancellation_Reason",
        "Cancellation_Note",
        "Job_Sheet_Name__s",
        "Job_Sheet_Created__s",
        "Job_Sheet_Section__s",
        "Job_Sheet_Description__s",
        "Created_Time",
        "Created_By",
        "Modified_Time",
        "Modified_By",
        "Tag",
        "Last_Activity_Time",
        "Record_Status__s",
        "Contact_Name__s",
        "id",
    }
)

# HubSpot appointments (object type 0-421), property names (HubSpot reference §3.2). hs_appointment_name,
# _start, _end and _status appear in HubSpot's own examples; the others are HubSpot's standard object
# properties or were seen only in third-party code (UNCONFIRMED). A portal's custom properties must be
# added here before rules can name them.
HUBSPOT_APPOINTMENTS: frozenset[str] = frozenset(
    {
        "hs_appointment_name",
        "hs_appointment_start",
        "hs_appointment_end",
        "hs_appointment_status",
        "hs_appointment_location",
        "hs_duration",
        "hubspot_owner_id",
        "hs_pipeline",
        "hs_pipeline_stage",
        "hs_object_id",
        "hs_createdate",
        "hs_lastmodifieddate",
    }
)

# source -> module (CRM module / object name as the notifications spell it) -> field API names.
CATALOGUE: Mapping[str, Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        "zoho": MappingProxyType({"Appointments__s": ZOHO_APPOINTMENTS}),
        "hubspot": MappingProxyType({"appointments": HUBSPOT_APPOINTMENTS}),
    }
)
