"""The sandbox portal's webhook subscriptions and the event objects HubSpot sends for object changes. Pure.

Subscriptions use the generic format (docs/hubspot.md, "Webhook batches"): object.creation and object.deletion
of appointments (0-421), and object.propertyChange of hs_appointment_start, hs_appointment_end and
hs_appointment_status, each with its own subscriptionId, plus one per custom appointment property
(sandbox.hubspot.custom_properties). One event per subscribed change; a start change that
moves the end is two events. Event keys, in the order of the real generic payload: eventId, subscriptionId,
portalId, appId, occurredAt (ms, the change time), subscriptionType, attemptNumber, objectId (a JSON integer),
objectTypeId, propertyName and propertyValue (property changes only), changeSource (INTEGRATION for API changes,
CRM_UI for control-API changes), sourceId, isSensitive (property changes; third-party-observed).

Sandbox choices where HubSpot's sources are silent (docs/hubspot.md, "Unconfirmed behaviour"):
  * eventId is NOT unique: values cycle through EVENT_ID_CYCLE numbers, restarting at reset, because HubSpot
    says eventId "is not guaranteed to be unique" and receivers must not deduplicate on it.
  * propertyValue of a datetime property is epoch milliseconds as a string by default (the format is
    UNCONFIRMED; SandboxConfig.hubspot_webhook_datetime_format="iso" sends the API's ISO rendering).
  * creating an appointment raises object.creation plus a propertyChange for each subscribed property set at
    creation (UNCONFIRMED; SandboxConfig.hubspot_creation_property_events=False sends only the creation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sandbox.hubspot.catalogue import PropertySpec
from sandbox.hubspot.store import ObjectChange
from sandbox.hubspot.time import epoch_ms, parse_datetime

DatetimeFormat = Literal["epoch_ms", "iso"]
EVENT_ID_BASE = 1765889300
EVENT_ID_CYCLE = 50
MAX_EVENTS_PER_BATCH = 100


@dataclass(frozen=True)
class Subscription:
    id: int
    subscription_type: str
    object_type_id: str
    property_name: str | None = None

    def wants(self, change: ObjectChange) -> bool:
        return (
            self.subscription_type == change.kind
            and self.object_type_id == change.object_type.type_id
            and self.property_name == change.property_name
        )

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "subscriptionType": self.subscription_type,
            "objectTypeId": self.object_type_id,
            "propertyName": self.property_name,
            "active": True,
        }


SUBSCRIPTIONS: tuple[Subscription, ...] = (
    Subscription(4150001, "object.creation", "0-421"),
    Subscription(4150002, "object.deletion", "0-421"),
    Subscription(4150011, "object.propertyChange", "0-421", "hs_appointment_start"),
    Subscription(4150012, "object.propertyChange", "0-421", "hs_appointment_end"),
    Subscription(4150013, "object.propertyChange", "0-421", "hs_appointment_status"),
)


class EventIds:
    """Hands out eventIds that repeat every EVENT_ID_CYCLE events."""

    def __init__(self) -> None:
        self._count = 0

    def reset(self) -> None:
        self._count = 0

    def next_id(self) -> int:
        value = EVENT_ID_BASE + self._count % EVENT_ID_CYCLE
        self._count += 1
        return value


@dataclass(frozen=True)
class EventSettings:
    portal_id: int
    app_id: int
    datetime_format: DatetimeFormat = "epoch_ms"
    creation_property_events: bool = True


def property_value(
    change: ObjectChange, datetime_format: DatetimeFormat, custom: Mapping[str, PropertySpec] | None = None
) -> str:
    """The new value as a string; datetimes (custom ones too) as epoch ms unless `iso` is asked for."""
    value = change.value or ""
    name = change.property_name or ""
    spec = change.object_type.properties.get(name) or (custom or {}).get(name)
    parsed = parse_datetime(value) if spec is not None and spec.kind == "datetime" else None
    if parsed is None or datetime_format == "iso":
        return value
    return str(epoch_ms(parsed))


def _event(
    change: ObjectChange,
    subscription: Subscription,
    settings: EventSettings,
    event_id: int,
    custom: Mapping[str, PropertySpec] | None,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "eventId": event_id,
        "subscriptionId": subscription.id,
        "portalId": settings.portal_id,
        "appId": settings.app_id,
        "occurredAt": epoch_ms(change.occurred_at),
        "subscriptionType": subscription.subscription_type,
        "attemptNumber": 0,
        "objectId": int(change.object_id),
        "objectTypeId": change.object_type.type_id,
    }
    if change.kind == "object.propertyChange":
        event["propertyName"] = change.property_name
        event["propertyValue"] = property_value(change, settings.datetime_format, custom)
    event["changeSource"] = change.source.type
    if change.source.source_id is not None:
        event["sourceId"] = change.source.source_id
    if change.kind == "object.propertyChange":
        event["isSensitive"] = False
    return event


def events_for(
    changes: Sequence[ObjectChange],
    settings: EventSettings,
    ids: EventIds,
    *,
    extra: Sequence[Subscription] = (),
    custom: Mapping[str, PropertySpec] | None = None,
) -> list[dict[str, Any]]:
    """One event per (change, subscription that wants it), in change order.

    `extra`: subscriptions to custom properties (sandbox.hubspot.custom_properties); `custom`: their specs,
    so a custom datetime's value is rendered like a built-in one's.
    """
    events: list[dict[str, Any]] = []
    for change in changes:
        if change.at_creation and not settings.creation_property_events:
            continue
        for subscription in (*SUBSCRIPTIONS, *extra):
            if subscription.wants(change):
                events.append(_event(change, subscription, settings, ids.next_id(), custom))
    return events


def batches(events: Sequence[dict[str, Any]], size: int = MAX_EVENTS_PER_BATCH) -> list[list[dict[str, Any]]]:
    """The events cut into request bodies of at most `size`."""
    return [list(events[start : start + size]) for start in range(0, len(events), size)]


def attempt_body(events: Sequence[dict[str, Any]], attempt: int) -> list[dict[str, Any]]:
    """The batch as sent on attempt `attempt` (0 = first): every event's attemptNumber set to it."""
    return [{**event, "attemptNumber": attempt} for event in events]
