"""Validate: check a decoded webhook body against the sender's payload model and turn it into ChangeEvents. Pure."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from receiver.errors import SchemaError
from receiver.payloads.hubspot import HubSpotBatch, HubSpotEvent
from receiver.payloads.zoho import ZohoNotification
from workers import sources
from workers.contract import ChangeEvent


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
    if not sources.supported("zoho", notification.module):
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


def hubspot_module(event: HubSpotEvent) -> str | None:
    """The module of the one record `event` is about, if crmflow serves it (None: not turned into work).

    The generic format names the object type (objectTypeId), the legacy one its subscription type's prefix
    ("appointment.propertyChange"); association changes name two objects (no objectId) and are not about one.
    """
    if event.objectId is None:
        return None
    prefix, dot, _ = event.subscriptionType.partition(".")
    for name in (event.objectTypeId, prefix if dot else None):
        module = sources.notified_module("hubspot", name) if name else None
        if module is not None:
            return module.name
    return None


def hubspot_events(events: list[HubSpotEvent]) -> list[ChangeEvent]:
    """One ChangeEvent per record: its events in this batch coalesce (fields united, latest time kept).

    The latest event (by occurredAt) gives the operation: deletion → delete, creation or restore → insert,
    anything else → update. Events for modules crmflow does not serve are not turned into work (the caller
    counts them).
    """
    grouped: dict[tuple[int, str, int], list[HubSpotEvent]] = {}
    for event in events:
        module = hubspot_module(event)
        if module is not None and event.objectId is not None:
            grouped.setdefault((event.portalId, module, event.objectId), []).append(event)
    changes = []
    for (portal, module, object_id), group in grouped.items():
        # What happened last decides: a deletion followed by a restore is not a delete.
        latest = max(group, key=lambda event: event.occurredAt)
        operation = _OPERATIONS.get(latest.action, "update")
        changes.append(
            ChangeEvent(
                source="hubspot",
                module=module,
                record_id=str(object_id),
                operation=operation,
                changed_fields=tuple(sorted({e.propertyName for e in group if e.propertyName})),
                notified_at_ms=max(event.occurredAt for event in group),
                channel_id=str(portal),
            )
        )
    return changes
