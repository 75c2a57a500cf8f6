"""Validate: check a decoded webhook body against the sender's payload model and turn it into ChangeEvents. Pure."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from receiver.errors import SchemaError
from receiver.payloads.hubspot import HubSpotBatch, HubSpotEvent
from receiver.payloads.zoho import ZohoNotification
from workers.contract import SUPPORTED_MODULES, ChangeEvent


def _schema_error(exc: ValidationError, what: str = "Zoho notification") -> SchemaError:
    # Name each failing field; never echo the submitted values (they may carry the token).
    errors = [
        {"field": ".".join(str(part) for part in err["loc"]) or "(body)", "problem": err["msg"]}
        for err in exc.errors(include_url=False, include_input=False, include_context=False)
    ]
    return SchemaError(f"payload does not match the {what} format ({len(errors)} problems)", errors=errors)


def validate_zoho(payload: Any) -> ZohoNotification:
    """Parse a decoded body into a ZohoNotification or raise SchemaError listing the failing fields."""
    try:
        return ZohoNotification.model_validate(payload)
    except ValidationError as exc:
        raise _schema_error(exc) from None


def zoho_events(notification: ZohoNotification) -> list[ChangeEvent]:
    """One ChangeEvent per distinct record id, in the order Zoho listed them; none for unsupported modules."""
    if ("zoho", notification.module) not in SUPPORTED_MODULES:
        return []
    return [
        ChangeEvent(
            source="zoho",
            module=notification.module,
            record_id=record_id,
            operation=notification.operation,
            changed_fields=notification.changed_fields(record_id),
            notified_at_ms=notification.server_time,
            channel_id=notification.channel_id,
        )
        for record_id in dict.fromkeys(notification.ids)
    ]


def validate_hubspot(payload: Any) -> list[HubSpotEvent]:
    """Parse a decoded body into HubSpot events or raise SchemaError listing the failing fields."""
    try:
        return HubSpotBatch.model_validate(payload).root
    except ValidationError as exc:
        raise _schema_error(exc, "HubSpot webhook") from None


_OPERATIONS = {"creation": "insert", "deletion": "delete", "restore": "insert"}


def hubspot_events(events: list[HubSpotEvent]) -> list[ChangeEvent]:
    """One ChangeEvent per appointment: its events in this batch coalesce (fields united, latest time kept).

    The latest event (by occurredAt) gives the operation: deletion → delete, creation or restore → insert,
    anything else → update. Events for other object types are not turned into work (the caller counts them).
    """
    grouped: dict[tuple[int, int], list[HubSpotEvent]] = {}
    for event in events:
        if event.is_appointment and event.objectId is not None:
            grouped.setdefault((event.portalId, event.objectId), []).append(event)
    changes = []
    for (portal, object_id), group in grouped.items():
        # What happened last decides: a deletion followed by a restore is not a delete.
        latest = max(group, key=lambda event: event.occurredAt)
        operation = _OPERATIONS.get(latest.action, "update")
        changes.append(
            ChangeEvent(
                source="hubspot",
                module="appointments",
                record_id=str(object_id),
                operation=operation,
                changed_fields=tuple(sorted({e.propertyName for e in group if e.propertyName})),
                notified_at_ms=max(event.occurredAt for event in group),
                channel_id=str(portal),
            )
        )
    return changes
