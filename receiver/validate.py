"""Validate: check a decoded webhook body against the sender's payload model and turn it into ChangeEvents. Pure."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from receiver.errors import SchemaError
from receiver.payloads.zoho import ZohoNotification
from workers.contract import SUPPORTED_MODULES, ChangeEvent


def _schema_error(exc: ValidationError) -> SchemaError:
    # Name each failing field; never echo the submitted values (they may carry the token).
    errors = [
        {"field": ".".join(str(part) for part in err["loc"]) or "(body)", "problem": err["msg"]}
        for err in exc.errors(include_url=False, include_input=False, include_context=False)
    ]
    return SchemaError(f"payload does not match the Zoho notification format ({len(errors)} problems)", errors=errors)


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
