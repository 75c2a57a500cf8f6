"""One HubSpot CRM object with every property's history, and its JSON renderings. Pure.

Values are strings ("" = empty, rendered as null). Every change of a property appends a history entry
`{value, timestamp, sourceType, sourceId?, updatedByUserId?}` (HubSpot's ValueWithTimestamp); setting a
property to the value it already has records nothing. History is rendered NEWEST FIRST, the order third
parties observed (UNCONFIRMED), so clients have to sort by `timestamp` themselves.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sandbox.hubspot.catalogue import DEFAULT_PROPERTIES, ObjectType
from sandbox.hubspot.time import format_iso


@dataclass(frozen=True)
class Source:
    """Who made a change, as history entries and webhook events report it."""

    type: str
    source_id: str | None
    user_id: int | None = None

    @classmethod
    def integration(cls, app_id: int) -> Source:
        """An API call by an app: sourceType INTEGRATION, sourceId the app id, no user."""
        return cls("INTEGRATION", str(app_id))

    @classmethod
    def ui(cls, user_id: int) -> Source:
        """A user in HubSpot's UI: sourceType CRM_UI, sourceId "userId:<id>" (as third parties observed)."""
        return cls("CRM_UI", f"userId:{user_id}", user_id)


@dataclass(frozen=True)
class HistoryEntry:
    value: str
    timestamp: datetime
    source: Source

    def render(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "value": self.value,
            "timestamp": format_iso(self.timestamp),
            "sourceType": self.source.type,
        }
        if self.source.source_id is not None:
            body["sourceId"] = self.source.source_id
        if self.source.user_id is not None:
            body["updatedByUserId"] = self.source.user_id
        return body


def _unique(names: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(names))


@dataclass
class HubRecord:
    """A stored object: current values, their histories, timestamps, and whether it is archived."""

    object_type: ObjectType
    id: str
    created_at: datetime
    updated_at: datetime
    values: dict[str, str] = field(default_factory=dict)
    history: dict[str, list[HistoryEntry]] = field(default_factory=dict)
    archived_at: datetime | None = None

    @classmethod
    def new(cls, object_type: ObjectType, record_id: str, source: Source, now: datetime) -> HubRecord:
        """A fresh object with HubSpot's system properties set."""
        record = cls(object_type, record_id, now, now)
        record.set("hs_object_id", record_id, source, now)
        record.set("hs_createdate", format_iso(now), source, now)
        record.set("hs_lastmodifieddate", format_iso(now), source, now)
        return record

    @property
    def archived(self) -> bool:
        return self.archived_at is not None

    def value(self, name: str) -> str:
        return self.values.get(name, "")

    def set(self, name: str, value: str, source: Source, at: datetime) -> bool:
        """Set one property; True (and a history entry) only when the value changes."""
        if self.values.get(name, "") == value:
            return False
        self.values[name] = value
        self.history.setdefault(name, []).append(HistoryEntry(value, at, source))
        return True

    def touch(self, source: Source, at: datetime) -> None:
        """Record a modification: updatedAt and hs_lastmodifieddate move to `at`."""
        self.updated_at = at
        self.set("hs_lastmodifieddate", format_iso(at), source, at)

    def render(
        self,
        properties: Sequence[str] | None = None,
        with_history: Sequence[str] = (),
        *,
        everything: bool = False,
        custom: Collection[str] = (),
    ) -> dict[str, Any]:
        """SimplePublicObject: the defaults plus the requested properties that exist (all when `everything`).

        HubSpot always adds hs_createdate, hs_lastmodifieddate and hs_object_id; a property named in
        `with_history` also appears in `properties` (UNCONFIRMED). `custom`: the portal's custom properties
        of the type, which exist like built-in ones. Undefined names are ignored.
        """
        if everything:
            wanted = [*self.object_type.properties, *custom]
        else:
            wanted = [*DEFAULT_PROPERTIES, *(properties or ()), *with_history]
        names = sorted({name for name in wanted if self.object_type.defines(name) or name in custom})
        body: dict[str, Any] = {"id": self.id, "properties": {name: self.values.get(name) or None for name in names}}
        history_names = [name for name in _unique(with_history) if self.object_type.defines(name) or name in custom]
        if history_names:
            body["propertiesWithHistory"] = {
                name: [entry.render() for entry in reversed(self.history.get(name, []))] for name in history_names
            }
        body.update(
            {"createdAt": format_iso(self.created_at), "updatedAt": format_iso(self.updated_at), "archived": False}
        )
        if self.archived_at is not None:
            body.update({"archived": True, "archivedAt": format_iso(self.archived_at)})
        return body
