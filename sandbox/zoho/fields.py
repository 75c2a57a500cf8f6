"""Zoho's field metadata for Appointments__s: GET /crm/{v}/settings/fields?module=Appointments__s. Pure.

The answer is `{"fields": [...]}`, one object per field with (among many more keys in Zoho's own answer)
`api_name`, `id`, `field_label`, `display_label`, `data_type`, `json_type`, `custom_field`, `read_only`,
`field_read_only`, `system_mandatory`, `visible` and `type` ("used"): Zoho's v8 OpenAPI description of
getFields (zoho/crm-oas, fields/operations/getFields) and its example answer. The sandbox renders that subset.
The built-in fields are those the sandbox's records have (sandbox.zoho.seed.blank_appointment); their data
types are the sandbox's reading of the record shapes (UNCONFIRMED for Appointments__s: Zoho's example is of
Leads). Custom fields (sandbox.custom_fields) follow them with `custom_field: true`.

Errors, as for Zoho's other calls (sandbox.zoho.api): no `module` answers 400 REQUIRED_PARAM_MISSING, a
module without a field list here 400 INVALID_MODULE; the scope is ZohoCRM.settings.fields.READ (or
ZohoCRM.settings.fields.ALL, ZohoCRM.settings.ALL), refused with 401 OAUTH_SCOPE_MISMATCH.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sandbox.zoho.errors import ZohoApiError, required_param_missing
from sandbox.zoho.store import APPOINTMENTS

if TYPE_CHECKING:
    from sandbox.custom_fields import CustomField

# api_name, label, data_type, json_type, read-only (set by Zoho).
_BUILT_IN: tuple[tuple[str, str, str, str, bool], ...] = (
    ("Owner", "Appointment Owner", "ownerlookup", "jsonobject", False),
    ("Appointment_Name", "Appointment Name", "text", "string", False),
    ("Appointment_Start_Time", "Appointment Start Time", "datetime", "string", False),
    ("Appointment_End_Time", "Appointment End Time", "datetime", "string", False),
    ("Duration", "Duration", "integer", "integer", False),
    ("Status", "Status", "picklist", "string", False),
    ("Service_Name", "Service Name", "lookup", "jsonobject", False),
    ("Appointment_For", "Appointment For", "multi_module_lookup", "jsonobject", False),
    ("Location", "Location", "picklist", "string", False),
    ("Address", "Address", "textarea", "string", False),
    ("Additional_Information", "Additional Information", "textarea", "string", False),
    ("Remind_At", "Remind At", "picklist", "string", False),
    ("Rescheduled_From", "Rescheduled From", "datetime", "string", True),
    ("Rescheduled_To", "Rescheduled To", "datetime", "string", True),
    ("Rescheduled_Time", "Rescheduled Time", "datetime", "string", True),
    ("Rescheduled_By", "Rescheduled By", "userlookup", "jsonobject", True),
    ("Reschedule_Reason", "Reschedule Reason", "picklist", "string", False),
    ("Reschedule_Note", "Reschedule Note", "textarea", "string", False),
    ("Reschedule_Count", "Reschedule Count", "integer", "integer", True),
    ("Cancelled_Time", "Cancelled Time", "datetime", "string", True),
    ("Cancelled_By", "Cancelled By", "userlookup", "jsonobject", True),
    ("Cancellation_Reason", "Cancellation Reason", "picklist", "string", False),
    ("Cancellation_Note", "Cancellation Note", "textarea", "string", False),
    ("Job_Sheet_Name__s", "Job Sheet Name", "text", "string", False),
    ("Job_Sheet_Created__s", "Job Sheet Created", "boolean", "boolean", True),
    ("Job_Sheet_Section__s", "Job Sheet Section", "text", "string", False),
    ("Job_Sheet_Description__s", "Job Sheet Description", "textarea", "string", False),
    ("Record_Status__s", "Record Status", "picklist", "string", True),
    ("Tag", "Tag", "text", "jsonarray", False),
    ("Created_Time", "Created Time", "datetime", "string", True),
    ("Created_By", "Created By", "ownerlookup", "jsonobject", True),
    ("Modified_Time", "Modified Time", "datetime", "string", True),
    ("Modified_By", "Modified By", "ownerlookup", "jsonobject", True),
    ("Last_Activity_Time", "Last Activity Time", "datetime", "string", True),
)
BUILT_IN_FIELDS = frozenset(name for name, *_ in _BUILT_IN)
# The json_type of each data_type a custom field may have (sandbox.custom_fields.TYPES["zoho"]).
_JSON_TYPES = {"integer": "integer", "double": "double", "currency": "double", "boolean": "boolean"}
# Field ids: the org's id prefix, then a sequence (built-in fields first, custom ones after).
_ID_BASE = 5545974000000600000


def _field(
    index: int, name: str, label: str, data_type: str, json_type: str, *, read_only: bool, custom: bool
) -> dict[str, Any]:
    return {
        "api_name": name,
        "id": str(_ID_BASE + index),
        "field_label": label,
        "display_label": label,
        "data_type": data_type,
        "json_type": json_type,
        "custom_field": custom,
        "read_only": read_only,
        "field_read_only": read_only,
        "system_mandatory": name in ("Appointment_Name", "Appointment_Start_Time"),
        "visible": True,
        "type": "used",
    }


def field_list(module: str | None, custom: tuple[CustomField, ...]) -> dict[str, Any]:
    """The `{"fields": [...]}` answer for `module` (the query parameter); ZohoApiError for a missing or unknown one."""
    if module is None or not module:
        raise required_param_missing("module")
    if module != APPOINTMENTS:
        raise ZohoApiError(400, "INVALID_MODULE", "the module name given seems to be invalid", {"param_name": "module"})
    fields = [
        _field(index, name, label, data_type, json_type, read_only=read_only, custom=False)
        for index, (name, label, data_type, json_type, read_only) in enumerate(_BUILT_IN)
    ]
    start = len(fields)
    fields += [
        _field(start + index, f.name, f.label, f.type, _JSON_TYPES.get(f.type, "string"), read_only=False, custom=True)
        for index, f in enumerate(custom)
    ]
    return {"fields": fields}
