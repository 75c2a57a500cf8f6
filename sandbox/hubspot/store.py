"""In-memory HubSpot portal: appointments and notes with histories, their associations, and HubSpot's write rules.

Pure: no I/O and no clock reads; methods that change state take `now` and a `Source` (an API call is
INTEGRATION by the configured app, a control-API change is CRM_UI by a user) and return the `ObjectChange`s
webhooks are made from. Invalid input raises HubSpotApiError. Ids are numeric strings from one sequence
shared by all object types, so an appointment id never names a note.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sandbox.hubspot.associations import AssociationInput, AssociationSet
from sandbox.hubspot.catalogue import ObjectType, PropertySpec
from sandbox.hubspot.errors import object_not_found, validation_error
from sandbox.hubspot.records import HubRecord, Source
from sandbox.hubspot.seed import FIRST_GENERATED_ID, USERS, HubSpotUser, seed_appointments
from sandbox.hubspot.values import NO_CUSTOM, checked_properties
from sandbox.hubspot.writes import apply_write
from sandbox.ids import IdSequence

CustomSpecs = Callable[[ObjectType], Mapping[str, PropertySpec]]
ChangeKind = Literal["object.creation", "object.deletion", "object.propertyChange"]


@dataclass(frozen=True)
class ObjectChange:
    """Something a webhook subscription may report: a creation, a deletion or one property's new value."""

    object_type: ObjectType
    object_id: str
    kind: ChangeKind
    occurred_at: datetime
    source: Source
    property_name: str | None = None
    value: str | None = None
    at_creation: bool = False


def _property_changes(
    record: HubRecord, names: list[str], source: Source, now: datetime, *, at_creation: bool = False
) -> list[ObjectChange]:
    return [
        ObjectChange(
            record.object_type, record.id, "object.propertyChange", now, source, name, record.value(name), at_creation
        )
        for name in names
    ]


def _no_custom(object_type: ObjectType) -> Mapping[str, PropertySpec]:
    return NO_CUSTOM


class HubSpotStore:
    """The portal's objects. `portal_id` appears in property error messages.

    `custom`: the portal's custom properties of a type right now (they can be added at run time), written,
    stored with history and read like built-in ones.
    """

    def __init__(self, portal_id: int, custom: CustomSpecs = _no_custom) -> None:
        self.portal_id = portal_id
        self.custom = custom
        self.associations = AssociationSet()
        self.users: Mapping[int, HubSpotUser] = {user.id: user for user in USERS}
        self._records: dict[tuple[str, str], HubRecord] = {}
        self._ids = IdSequence(FIRST_GENERATED_ID)

    def reset(self, now: datetime) -> None:
        """Back to the seed data (sandbox.hubspot.seed), times derived from `now`; no notes, no associations."""
        self._records = {(record.object_type.type_id, record.id): record for record in seed_appointments(now)}
        self.associations.clear()
        self._ids = IdSequence(FIRST_GENERATED_ID)

    @property
    def owner_ids(self) -> frozenset[str]:
        return frozenset(user.owner_id for user in self.users.values())

    # ---- reads ------------------------------------------------------------------------------------------

    def find(self, object_type: ObjectType, object_id: str, *, archived: bool = False) -> HubRecord | None:
        """The object if it exists and its archived state is the one asked for."""
        record = self._records.get((object_type.type_id, object_id))
        return record if record is not None and record.archived == archived else None

    def get(self, object_type: ObjectType, object_id: str, *, archived: bool = False) -> HubRecord:
        record = self.find(object_type, object_id, archived=archived)
        if record is None:
            raise object_not_found()
        return record

    def all(self, object_type: ObjectType) -> list[HubRecord]:
        """Every object of a type, archived ones included, in creation order."""
        return [record for (type_id, _), record in self._records.items() if type_id == object_type.type_id]

    def related(self, record: HubRecord, to_type: ObjectType) -> list[str]:
        """Ids of the live `to_type` objects associated with `record`."""
        ids = self.associations.related((record.object_type.type_id, record.id), to_type)
        return [object_id for object_id in ids if self.find(to_type, object_id) is not None]

    # ---- writes -----------------------------------------------------------------------------------------

    def create(
        self,
        object_type: ObjectType,
        raw_properties: Any,
        source: Source,
        now: datetime,
        *,
        associations: list[AssociationInput] | None = None,
        record_id: str | None = None,
    ) -> tuple[HubRecord, list[ObjectChange]]:
        """POST /crm/objects/2026-03/{type}: validated properties, associations to existing objects only."""
        values = checked_properties(
            object_type, raw_properties, self.owner_ids, self.portal_id, creating=True, custom=self.custom(object_type)
        )
        self._check_targets(associations or [])
        if record_id is not None and (not record_id.isdigit() or (object_type.type_id, record_id) in self._records):
            raise validation_error(f"id must be a new numeric id, got {record_id!r}")
        record = HubRecord.new(object_type, record_id or self._ids.next_id(), source, now)
        changed = apply_write(record, values, source, now)
        self._records[(object_type.type_id, record.id)] = record
        for association in associations or []:
            self.associations.add((object_type.type_id, record.id), (association.to_type.type_id, association.to_id))
        created = ObjectChange(object_type, record.id, "object.creation", now, source)
        return record, [created, *_property_changes(record, changed, source, now, at_creation=True)]

    def update(
        self, object_type: ObjectType, object_id: str, raw_properties: Any, source: Source, now: datetime
    ) -> tuple[HubRecord, list[str], list[ObjectChange]]:
        """PATCH: the record, the names that changed (derived ones included) and the changes to publish."""
        record = self.get(object_type, object_id)
        values = checked_properties(
            object_type, raw_properties, self.owner_ids, self.portal_id, custom=self.custom(object_type)
        )
        changed = apply_write(record, values, source, now)
        return record, changed, _property_changes(record, changed, source, now)

    def archive(self, object_type: ObjectType, object_id: str, source: Source, now: datetime) -> list[ObjectChange]:
        """DELETE: the object moves to the recycle bin (readable with archived=true)."""
        record = self.get(object_type, object_id)
        record.archived_at = now
        record.updated_at = now
        return [ObjectChange(object_type, object_id, "object.deletion", now, source)]

    def associate(self, from_type: ObjectType, from_id: str, to_type: ObjectType, to_id: str) -> HubRecord:
        """Associate two existing objects (idempotent); 404 when either is missing. Returns the `from` object."""
        record = self.get(from_type, from_id)
        self.get(to_type, to_id)
        self.associations.add((from_type.type_id, from_id), (to_type.type_id, to_id))
        return record

    def _check_targets(self, associations: list[AssociationInput]) -> None:
        missing = [item for item in associations if self.find(item.to_type, item.to_id) is None]
        if missing:
            ids = [item.to_id for item in missing]
            raise validation_error(
                f"Could not find the {missing[0].to_type.type_id} objects to associate with: {', '.join(ids)}",
                context={"ids": ids},
            )
