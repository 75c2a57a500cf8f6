"""Association types between notes and appointments, parsing of association inputs, and the pairs made. Pure.

HubSpot publishes no note<->appointment type ids (921/920 appear only in third-party code, see docs/hubspot.md,
"Appointments, notes and associations API"), so the
sandbox uses ids of its own: note -> appointment 1207, appointment -> note 1206, both HUBSPOT_DEFINED with no
label. A client that hard-codes 921 (or anything but the looked-up id) fails here as it might against a
real portal; the ids are found through GET /crm/associations/2026-03/{from}/{to}/labels or avoided with the
default-association endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from sandbox.hubspot.catalogue import APPOINTMENTS, NOTES, ObjectType
from sandbox.hubspot.errors import HubSpotApiError, invalid_json, validation_error

HUBSPOT_DEFINED = "HUBSPOT_DEFINED"
CATEGORIES = ("HUBSPOT_DEFINED", "USER_DEFINED", "INTEGRATOR_DEFINED", "WORK")
NOTE_TO_APPOINTMENT_TYPE_ID = 1207
APPOINTMENT_TO_NOTE_TYPE_ID = 1206

_TYPE_IDS = {
    (NOTES.type_id, APPOINTMENTS.type_id): NOTE_TO_APPOINTMENT_TYPE_ID,
    (APPOINTMENTS.type_id, NOTES.type_id): APPOINTMENT_TO_NOTE_TYPE_ID,
}
_BY_TYPE_ID = {NOTES.type_id: NOTES, APPOINTMENTS.type_id: APPOINTMENTS}

Endpoint = tuple[str, str]  # (object type id, object id)


def type_id_between(from_type: ObjectType, to_type: ObjectType) -> int | None:
    """The HUBSPOT_DEFINED (default) association type id from one object type to another, if any."""
    return _TYPE_IDS.get((from_type.type_id, to_type.type_id))


def target_of(from_type: ObjectType, category: str, type_id: int) -> ObjectType | None:
    """The object type an association type from `from_type` points to, or None when there is no such type."""
    if category != HUBSPOT_DEFINED:
        return None
    for (source, target), known in _TYPE_IDS.items():
        if source == from_type.type_id and known == type_id:
            return _BY_TYPE_ID[target]
    return None


def labels(from_type: ObjectType, to_type: ObjectType) -> list[dict[str, Any]]:
    """The association types (AssociationSpecWithLabel) from one object type to another."""
    type_id = type_id_between(from_type, to_type)
    return [] if type_id is None else [{"category": HUBSPOT_DEFINED, "typeId": type_id, "label": None}]


def v3_type_name(from_type: ObjectType, to_type: ObjectType) -> str:
    """The snake-case name v3 associations carry ("note_to_appointment")."""
    return f"{from_type.singular}_to_{to_type.singular}"


def spec(from_type: ObjectType, to_type: ObjectType) -> dict[str, Any]:
    """The AssociationSpec of the default association."""
    return {"associationCategory": HUBSPOT_DEFINED, "associationTypeId": type_id_between(from_type, to_type)}


@dataclass(frozen=True)
class AssociationInput:
    """One association asked for when creating an object."""

    to_type: ObjectType
    to_id: str


def object_id_of(value: Any) -> str | None:
    """An object id given as a JSON string or integer, else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) and value else None


def invalid_association_type(
    from_type: ObjectType, category: str, type_id: int | str, to_type: ObjectType | None = None
) -> HubSpotApiError:
    """VALIDATION_ERROR naming the association type that does not exist (between these object types)."""
    between = f"from {from_type.type_id} ({from_type.name})"
    if to_type is not None:
        between += f" to {to_type.type_id} ({to_type.name})"
    return validation_error(
        f"Association type {category} {type_id} is not a valid association type {between}",
        context={"associationTypeId": [str(type_id)]},
    )


def target_for_spec(from_type: ObjectType, raw_spec: Any, to_type: ObjectType | None = None) -> ObjectType:
    """The object type an AssociationSpec (`{associationCategory, associationTypeId}`) points to.

    VALIDATION_ERROR when the spec is malformed, names no association type from `from_type`, or (when
    `to_type` is given) one that points elsewhere.
    """
    if not isinstance(raw_spec, dict):
        raise invalid_json("each association type must be an object with associationCategory and associationTypeId")
    category, type_id = raw_spec.get("associationCategory"), raw_spec.get("associationTypeId")
    if category not in CATEGORIES or not isinstance(type_id, int) or isinstance(type_id, bool):
        raise invalid_json(f"invalid association type {orjson.dumps(raw_spec).decode()}")
    target = target_of(from_type, category, type_id)
    if target is None or (to_type is not None and target is not to_type):
        raise invalid_association_type(from_type, category, type_id, to_type)
    return target


def parse_associations(from_type: ObjectType, raw: Any) -> list[AssociationInput]:
    """The `associations` array of a create body (PublicAssociationsForObject items); HubSpotApiError if bad."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise invalid_json("`associations` must be an array")
    inputs: list[AssociationInput] = []
    for item in raw:
        to = item.get("to") if isinstance(item, dict) else None
        to_id = object_id_of(to.get("id")) if isinstance(to, dict) else None
        types = item.get("types") if isinstance(item, dict) else None
        if to_id is None or not isinstance(types, list) or not types:
            raise invalid_json("each association needs `to.id` and a non-empty `types` array")
        inputs.extend(AssociationInput(target_for_spec(from_type, raw_spec), to_id) for raw_spec in types)
    return inputs


class AssociationSet:
    """The associations made, undirected (a note->appointment association is also appointment->note)."""

    def __init__(self) -> None:
        self._pairs: dict[frozenset[Endpoint], None] = {}

    def clear(self) -> None:
        self._pairs = {}

    def add(self, first: Endpoint, second: Endpoint) -> None:
        self._pairs[frozenset((first, second))] = None

    def related(self, of: Endpoint, to_type: ObjectType) -> list[str]:
        """Ids of the `to_type` objects associated with `of`, oldest association first."""
        found: list[str] = []
        for pair in self._pairs:
            if of in pair:
                other = next(iter(pair - {of}), of)
                if other[0] == to_type.type_id:
                    found.append(other[1])
        return found
