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

# source -> module (CRM module / object name as the notifications spell it) -> field API names.
# A new CRM is one more entry here, e.g. "hubspot": {"appointments": frozenset({"hs_appointment_start", ...})}.
CATALOGUE: Mapping[str, Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        "zoho": MappingProxyType({"Appointments__s": ZOHO_APPOINTMENTS}),
    }
)
