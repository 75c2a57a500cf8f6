"""Fetch: the full, current record a ChangeEvent is about, from its CRM's API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workers.contract import ChangeEvent
from workers.crm.zoho import ZohoClient
from workers.crm.zoho_models import APPOINTMENTS, inferred_previous
from workers.errors import ActionNotApplicableError
from workers.record import Record


async def fetch_record(event: ChangeEvent, zoho: ZohoClient) -> Record:
    """GET the record now (never trust a notification's values: they may be stale or out of order)."""
    if event.source == "zoho" and event.module == APPOINTMENTS:
        return await zoho.get_appointment(event.record_id)
    raise ActionNotApplicableError(f"crmflow cannot fetch {event.source}/{event.module} records")


# Fields every snapshot keeps, whatever the rules watch, because actions reason about their previous values.
_REMEMBERED = {("zoho", APPOINTMENTS): frozenset({"Appointment_Start_Time", "Reschedule_Count"})}


def remembered_fields(source: str, module: str) -> frozenset[str]:
    """Fields to keep between notifications besides those the rules name."""
    return _REMEMBERED.get((source, module), frozenset())


def previous_values(record: Record) -> Mapping[str, Any]:
    """What a record first seen by crmflow says about its own previous state (see docs of each CRM)."""
    if record.source == "zoho" and record.module == APPOINTMENTS:
        return inferred_previous(record)
    return {}
