"""Online HubSpot checks: the access token reads appointments and writes notes. I/O at the edge.

No call here changes anything. A read is a plain GET (one appointment); the note write POSTs a body that is
not an object (`[]`), which HubSpot refuses with a 400 and creates nothing. HubSpot answers a call outside the
app's scopes with 403 MISSING_SCOPES (docs/hubspot.md, "Errors"); whether it checks scopes before the body is
UNCONFIRMED, so a 400 passes the check. The sources here document no token-info endpoint for private-app
tokens, so the scopes are read from these answers. The scopes named come from the 403 body's
`errors[].context` when it has them (HubSpot's `requiredGranularScopes`, UNCONFIRMED), else from what the
call is known to need (docs/hubspot.md, "Apps, tokens and scopes").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from pydantic import SecretStr

from crmflow.doctor.findings import Finding, empty_request, fail, ok, warn

SCOPES_FIX = (
    "give the app the scopes crm.objects.appointments.read, crm.objects.appointments.write, "
    "crm.objects.contacts.read and crm.objects.contacts.write (docs/operations.md#connecting-hubspot) and put its "
    "token in HUBSPOT_ACCESS_TOKEN"
)


@dataclass(frozen=True)
class Probe:
    what: str
    scopes: tuple[str, ...]
    method: str
    path: str
    params: dict[str, str] | None = None
    body: Any = None


PROBES = (
    Probe(
        "read appointments",
        ("crm.objects.appointments.read",),
        "GET",
        "/crm/objects/2026-03/appointments",
        {"limit": "1"},
    ),
    Probe(
        "look up the note-to-appointment association",
        ("crm.objects.contacts.read", "crm.objects.appointments.read"),
        "GET",
        "/crm/associations/2026-03/notes/appointments/labels",
    ),
    Probe("write notes", ("crm.objects.contacts.write",), "POST", "/crm/objects/2026-03/notes", body=[]),
)


def required_scopes(body: Any) -> list[str]:
    """The scopes a MISSING_SCOPES body names in `errors[].context` (any list of strings there)."""
    names: list[str] = []
    errors = body.get("errors") if isinstance(body, dict) else None
    for error in errors if isinstance(errors, list) else []:
        context = error.get("context") if isinstance(error, dict) else None
        for value in context.values() if isinstance(context, dict) else []:
            names.extend(str(v) for v in value if isinstance(value, list) and isinstance(v, str))
    return list(dict.fromkeys(names))


def probe_finding(probe: Probe, status: int, body: Any) -> tuple[Finding, bool]:
    """What an answer means, and whether the next probes can still run."""
    check = f"hubspot {probe.what}"
    category = str(body.get("category", "")) if isinstance(body, dict) else ""
    if status == 401:
        message = f"HubSpot refused the token (401 {category or 'Unauthorized'})"
        fix = "put the app's current access token in HUBSPOT_ACCESS_TOKEN (a rotated token replaces the old one)"
        return fail(check, message, setting="HUBSPOT_ACCESS_TOKEN", fix=fix), False
    if status == 403:
        scopes = required_scopes(body) or list(probe.scopes)
        if category == "MISSING_SCOPES" or not category:
            message = f"the token lacks the scope {' and '.join(scopes)} (403 {category or 'Forbidden'})"
        else:
            message = f"HubSpot forbids it (403 {category})"
        return fail(check, message, setting="HUBSPOT_ACCESS_TOKEN", fix=SCOPES_FIX), True
    if status == 404 or body is None:
        message = (
            f"{probe.method} {probe.path} answered HTTP {status}: HUBSPOT_API_BASE is not HubSpot's API, or "
            "appointments are not activated in the account's data model"
        )
        fix = "set HUBSPOT_API_BASE=https://api.hubapi.com (or unset it) and activate appointments in HubSpot"
        return fail(check, message, setting="HUBSPOT_API_BASE", fix=fix), False
    if status == 429 or status >= 500:
        return warn(check, f"could not be checked: HubSpot answered HTTP {status}", fix="run again later"), True
    if probe.body is not None:
        return ok(check, f"granted ({empty_request(status)})"), True
    return ok(check, "granted"), True


async def check_hubspot(http: httpx.AsyncClient, *, api_base: str, token: SecretStr) -> list[Finding]:
    headers = {"Authorization": f"Bearer {token.get_secret_value()}"}
    found: list[Finding] = []
    for probe in PROBES:
        url = f"{api_base.rstrip('/')}{probe.path}"
        try:
            response = await http.request(probe.method, url, params=probe.params, json=probe.body, headers=headers)
        except httpx.HTTPError as exc:
            message = f"cannot reach HubSpot's API at {httpx.URL(api_base).host} ({type(exc).__name__})"
            found.append(
                fail(f"hubspot {probe.what}", message, setting="HUBSPOT_API_BASE", fix="check HUBSPOT_API_BASE")
            )
            return found
        try:
            body: Any = orjson.loads(response.content) if response.content else {}
        except orjson.JSONDecodeError:
            body = None
        finding, go_on = probe_finding(probe, response.status_code, body)
        found.append(finding)
        if not go_on:
            break
    return found
