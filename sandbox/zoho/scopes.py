"""Zoho OAuth scopes: which scope a CRM API call needs, whether the granted ones cover it, and the refusal. Pure.

Zoho names a scope `ZohoCRM.<area>.<operation>`: `ZohoCRM.modules.appointments.READ`,
`ZohoCRM.modules.appointments_rescheduled_history.CREATE`, `ZohoCRM.notifications.ALL` (docs/zoho-crm.md,
"OAuth"); the field metadata needs `ZohoCRM.settings.fields.READ` (Zoho's Fields Meta Data page, which also
accepts `ZohoCRM.settings.fields.ALL` and `ZohoCRM.settings.ALL`). A call whose scope the refresh token was
not granted answers 401 OAUTH_SCOPE_MISMATCH ("You created the grant token using the wrong oauth scope",
Zoho's error tables). The sandbox checks the scope right after
the token, before reading the body, so a malformed request without the scope gets the 401 too; whether Zoho
checks in that order is UNCONFIRMED. The body's `message` is the sandbox's wording (the references give only
the code and the status).

Coverage: `<area>.ALL` covers every operation of the area; `<area>.WRITE` covers CREATE, UPDATE and DELETE
(Zoho lists WRITE for notifications); `ZohoCRM.modules.ALL` covers every module and `ZohoCRM.settings.ALL`
every settings area. Names compare without case.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sandbox.zoho.errors import ZohoApiError
from sandbox.zoho.store import APPOINTMENTS, HISTORY, NOTES

MODULE_AREAS = {
    APPOINTMENTS: "ZohoCRM.modules.appointments",
    HISTORY: "ZohoCRM.modules.appointments_rescheduled_history",
    NOTES: "ZohoCRM.modules.notes",
}
NOTIFICATIONS = "ZohoCRM.notifications"
FIELDS = "ZohoCRM.settings.fields"
OPERATIONS = {"GET": "READ", "POST": "CREATE", "PUT": "UPDATE", "PATCH": "UPDATE", "DELETE": "DELETE"}
# Every scope the sandbox knows, the default grant (all of them).
ALL_SCOPES = frozenset(
    {f"{area}.{op}" for area in (*MODULE_AREAS.values(), NOTIFICATIONS, FIELDS) for op in ("ALL", *OPERATIONS.values())}
    | {f"{NOTIFICATIONS}.WRITE", "ZohoCRM.modules.ALL", "ZohoCRM.settings.ALL"}
)


def parse_scopes(text: str) -> frozenset[str]:
    """Scopes separated by commas or spaces (Zoho's `scope` parameter uses commas)."""
    return frozenset(part for part in text.replace(",", " ").split() if part)


def needed_scope(route: str, path_params: Mapping[str, str], method: str) -> str | None:
    """The scope a call needs, e.g. `ZohoCRM.modules.appointments.READ`; None when the path names no known
    module (the route then answers INVALID_MODULE or INVALID_URL_PATTERN itself).

    `route` is the handler: "watch" (actions/watch), "fields" (settings/fields), "related" (a related list:
    the related module's scope), anything else a module or record path."""
    operation = OPERATIONS.get(method)
    if operation is None:
        return None
    if route == "watch":
        return f"{NOTIFICATIONS}.{operation}"
    if route == "fields":
        return f"{FIELDS}.{operation}"
    module = path_params.get("related") if route == "related" else path_params.get("module")
    area = MODULE_AREAS.get(module or "")
    return f"{area}.{operation}" if area is not None else None


def covering(scope: str) -> frozenset[str]:
    """The granted scopes any one of which allows `scope` (lower case)."""
    area, _, operation = scope.rpartition(".")
    names = {scope, f"{area}.ALL"}
    if operation != "READ":
        names.add(f"{area}.WRITE")
    if area.startswith("ZohoCRM.modules."):
        names.add("ZohoCRM.modules.ALL")
    if area.startswith("ZohoCRM.settings."):
        names.add("ZohoCRM.settings.ALL")
    return frozenset(name.lower() for name in names)


def allowed(scope: str, granted: Iterable[str]) -> bool:
    return not covering(scope).isdisjoint(name.lower() for name in granted)


def scope_mismatch() -> ZohoApiError:
    return ZohoApiError(401, "OAUTH_SCOPE_MISMATCH", "invalid oauth scope to access this URL")
