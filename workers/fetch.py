"""Fetch: the full, current record a ChangeEvent is about, from its CRM's API."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from workers.contract import ChangeEvent
from workers.crm import hubspot_models, zoho_models
from workers.crm.hubspot import HubSpotClient
from workers.crm.zoho import ZohoClient
from workers.errors import ActionNotApplicableError
from workers.record import Record


@dataclass(frozen=True)
class CrmClients:
    """The client of each CRM this worker serves (None: not configured here)."""

    zoho: ZohoClient | None = None
    hubspot: HubSpotClient | None = None

    def require_zoho(self) -> ZohoClient:
        if self.zoho is None:
            raise ActionNotApplicableError("Zoho is not configured in this worker (ZOHO_CLIENT_ID, ...)")
        return self.zoho

    def require_hubspot(self) -> HubSpotClient:
        if self.hubspot is None:
            raise ActionNotApplicableError("HubSpot is not configured in this worker (HUBSPOT_ACCESS_TOKEN)")
        return self.hubspot


async def fetch_record(event: ChangeEvent, crm: CrmClients, fields: frozenset[str]) -> Record:
    """GET the record now (never trust a notification's values: they may be stale or out of order).

    `fields` are those the rules read; Zoho returns every field anyway, HubSpot only those asked for.
    """
    if event.source == "zoho" and event.module == zoho_models.APPOINTMENTS:
        return await crm.require_zoho().get_appointment(event.record_id)
    if event.source == "hubspot" and event.module == hubspot_models.APPOINTMENTS:
        return await crm.require_hubspot().get_appointment(event.record_id, fields)
    raise ActionNotApplicableError(f"crmflow cannot fetch {event.source}/{event.module} records")


# Fields every snapshot keeps, whatever the rules watch, because actions reason about their previous values.
_REMEMBERED = {
    ("zoho", zoho_models.APPOINTMENTS): frozenset({"Appointment_Start_Time", "Reschedule_Count"}),
    ("hubspot", hubspot_models.APPOINTMENTS): frozenset({hubspot_models.START}),
}


def remembered_fields(source: str, module: str) -> frozenset[str]:
    """Fields to keep between notifications besides those the rules name."""
    return _REMEMBERED.get((source, module), frozenset())


def previous_values(record: Record) -> Mapping[str, Any]:
    """What a record first seen by crmflow says about its own previous state (see each CRM's models)."""
    if record.source == "zoho" and record.module == zoho_models.APPOINTMENTS:
        return zoho_models.inferred_previous(record)
    if record.source == "hubspot" and record.module == hubspot_models.APPOINTMENTS:
        return hubspot_models.inferred_previous(record)
    return {}
