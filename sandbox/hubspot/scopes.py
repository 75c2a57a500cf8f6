"""HubSpot scopes: which scopes an API call needs, and the 403 MISSING_SCOPES answer when they are not granted. Pure.

Appointments (0-421) need `crm.objects.appointments.read` / `.write`; HubSpot's Notes guide ("Scope
requirements") asks `crm.objects.contacts.read` / `.write` for notes (docs/hubspot.md, "Apps, tokens and
scopes"). A read (GET, batch/read, search) needs the read scope of every object type in the path; any other
call needs the write scope of the first type and the read scope of the others (an association from a note to
an appointment: notes write, appointments read). Which scopes HubSpot asks for association calls is the
sandbox's reading. The 403 body follows HubSpot's error schema (`category` MISSING_SCOPES, `errors[]` with a
`context`); the `requiredGranularScopes` context key is seen in HubSpot's answers but UNCONFIRMED by the
sources here, so clients should key on the status and category.

Reading an object type's properties (GET /crm/properties/2026-03/{type}) takes any one of many scopes in
HubSpot's properties spec; the sandbox accepts the type's schema read scope (crm.schemas.appointments.read) or
its object read or write scope, and names all three when none is granted.
"""

from __future__ import annotations

from collections.abc import Iterable

from sandbox.hubspot.catalogue import APPOINTMENTS, resolve_object_type
from sandbox.hubspot.errors import HubSpotApiError

MISSING_SCOPES_MESSAGE = (
    "This app hasn't been granted all required scopes to make this call. "
    "Read more about required scopes here: https://developers.hubspot.com/scopes."
)
AREAS = {APPOINTMENTS.name: "crm.objects.appointments", "notes": "crm.objects.contacts"}
ALL_SCOPES = frozenset(f"{area}.{access}" for area in AREAS.values() for access in ("read", "write")) | frozenset(
    f"crm.schemas.{name}.read" for name in AREAS
)
READ_SUFFIXES = ("/batch/read", "/search")
PROPERTIES_PREFIX = "/crm/properties/"


def parse_scopes(text: str) -> frozenset[str]:
    """Scopes separated by spaces or commas (HubSpot's install URL uses spaces)."""
    return frozenset(part for part in text.replace(",", " ").split() if part)


def needed_scopes(method: str, path: str) -> tuple[str, ...]:
    """The scopes a call to `path` needs, in path order."""
    types = [t for t in (resolve_object_type(part) for part in path.split("/") if part) if t is not None]
    path = path.rstrip("/")
    reads = method == "GET" or (method == "POST" and path.endswith(READ_SUFFIXES))
    needed = [f"{AREAS[t.name]}.{'read' if reads or index else 'write'}" for index, t in enumerate(types)]
    return tuple(dict.fromkeys(needed))


def property_read_scopes(name: str) -> tuple[str, ...]:
    """The scopes any one of which lets a call read the properties of the object type called `name`."""
    return (f"crm.schemas.{name}.read", f"{AREAS[name]}.read", f"{AREAS[name]}.write")


def call_missing_scopes(method: str, path: str, granted: frozenset[str] | None) -> list[str]:
    """What a call to `path` lacks of the granted scopes (None: every scope is granted); [] when nothing."""
    if granted is None:
        return []
    if method == "GET" and path.startswith(PROPERTIES_PREFIX):
        for object_type in (t for t in map(resolve_object_type, path.split("/")) if t is not None):
            accepted = property_read_scopes(object_type.name)
            if granted.isdisjoint(accepted):
                return list(accepted)
        return []
    return missing_scopes(needed_scopes(method, path), granted)


def missing_scopes(needed: Iterable[str], granted: frozenset[str] | None) -> list[str]:
    """The needed scopes not granted (None: every scope is granted)."""
    return [] if granted is None else [scope for scope in needed if scope not in granted]


def missing_scopes_error(missing: list[str]) -> HubSpotApiError:
    """403 MISSING_SCOPES naming the scopes the call lacks."""
    detail = {
        "message": "One or more of the following scopes are required.",
        "context": {"requiredGranularScopes": missing},
    }
    return HubSpotApiError(403, "MISSING_SCOPES", MISSING_SCOPES_MESSAGE, errors=[detail])
