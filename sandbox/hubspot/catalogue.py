"""The emulated HubSpot object types (appointments 0-421, notes 0-46) and their property catalogues. Pure.

What the sources confirm (docs/hubspot.md, "Appointments, notes and associations API"):
    appointments  hs_appointment_name (required to create), hs_appointment_start, hs_appointment_end and
                  hs_appointment_status are confirmed by HubSpot's own create example, which also confirms the
                  status value SCHEDULED. UNCONFIRMED (seen only in third-party code, or assumed because every
                  HubSpot object has them): hs_appointment_location, hs_duration, hubspot_owner_id, hs_pipeline,
                  hs_pipeline_stage, hs_object_id, hs_createdate, hs_lastmodifieddate, and the status values
                  COMPLETED, CANCELED, RESCHEDULED, NO_SHOW.
    notes         hs_timestamp (required), hs_note_body (at most 65,536 characters), hubspot_owner_id and
                  hs_attachment_ids are confirmed by the notes guide; hs_object_id, hs_createdate and
                  hs_lastmodifieddate are assumed as for every object.

Sandbox modelling choices: hs_object_id, hs_createdate and hs_lastmodifieddate are read-only (HubSpot sets
them); hs_duration is read-only too, kept equal to end - start in milliseconds (UNCONFIRMED: HubSpot's own
engagement durations are milliseconds); hs_pipeline and hs_pipeline_stage are free strings because the
sandbox models no pipelines; hubspot_owner_id must name one of the portal's owners.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

PropertyKind = Literal["string", "datetime", "date", "enumeration", "number", "bool", "owner"]

DEFAULT_PROPERTIES = ("hs_createdate", "hs_lastmodifieddate", "hs_object_id")
APPOINTMENT_STATUSES = ("SCHEDULED", "COMPLETED", "CANCELED", "RESCHEDULED", "NO_SHOW")
NOTE_BODY_MAX_LENGTH = 65_536


@dataclass(frozen=True)
class PropertySpec:
    """One property definition: its type, whether clients may write it, and whether a source confirms it."""

    name: str
    kind: PropertyKind
    confirmed: bool
    read_only: bool = False
    options: tuple[str, ...] = ()
    max_length: int | None = None


def _catalogue(*specs: PropertySpec) -> Mapping[str, PropertySpec]:
    return MappingProxyType({spec.name: spec for spec in specs})


_SYSTEM = (
    PropertySpec("hs_object_id", "number", confirmed=False, read_only=True),
    PropertySpec("hs_createdate", "datetime", confirmed=False, read_only=True),
    PropertySpec("hs_lastmodifieddate", "datetime", confirmed=False, read_only=True),
)

APPOINTMENT_PROPERTIES: Mapping[str, PropertySpec] = _catalogue(
    PropertySpec("hs_appointment_name", "string", confirmed=True),
    PropertySpec("hs_appointment_start", "datetime", confirmed=True),
    PropertySpec("hs_appointment_end", "datetime", confirmed=True),
    PropertySpec("hs_appointment_status", "enumeration", confirmed=True, options=APPOINTMENT_STATUSES),
    PropertySpec("hs_appointment_location", "string", confirmed=False),
    PropertySpec("hs_duration", "number", confirmed=False, read_only=True),
    PropertySpec("hubspot_owner_id", "owner", confirmed=False),
    PropertySpec("hs_pipeline", "string", confirmed=False),
    PropertySpec("hs_pipeline_stage", "string", confirmed=False),
    *_SYSTEM,
)

NOTE_PROPERTIES: Mapping[str, PropertySpec] = _catalogue(
    PropertySpec("hs_timestamp", "datetime", confirmed=True),
    PropertySpec("hs_note_body", "string", confirmed=True, max_length=NOTE_BODY_MAX_LENGTH),
    PropertySpec("hubspot_owner_id", "owner", confirmed=True),
    PropertySpec("hs_attachment_ids", "string", confirmed=True),
    *_SYSTEM,
)


@dataclass(frozen=True)
class ObjectType:
    """An object type as paths name it (`type_id`, `name`, `singular`) with its properties.

    `label` is the upper-case name HubSpot uses in batch error messages ("Could not get some APPOINTMENT
    objects ..."). `v3_by_name`: whether /crm/v3/objects/{name} works; for appointments only `0-421` is
    documented on v3 (docs/hubspot.md marks the name form UNCONFIRMED), so the sandbox refuses the name there.
    """

    type_id: str
    name: str
    singular: str
    label: str
    properties: Mapping[str, PropertySpec]
    required: tuple[str, ...]
    v3_by_name: bool

    def defines(self, name: str) -> bool:
        return name in self.properties


APPOINTMENTS = ObjectType(
    "0-421", "appointments", "appointment", "APPOINTMENT", APPOINTMENT_PROPERTIES, ("hs_appointment_name",), False
)
NOTES = ObjectType("0-46", "notes", "note", "NOTE", NOTE_PROPERTIES, ("hs_timestamp",), True)
OBJECT_TYPES = (APPOINTMENTS, NOTES)


def resolve_object_type(text: str, *, v3: bool = False) -> ObjectType | None:
    """The object type a path segment names: its id ("0-421"), or its plural or singular name."""
    for object_type in OBJECT_TYPES:
        if text == object_type.type_id:
            return object_type
        by_name = text.lower() in (object_type.name, object_type.singular)
        if by_name and (object_type.v3_by_name or not v3):
            return object_type
    return None
