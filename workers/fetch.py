"""Fetch: the full, current record a ChangeEvent is about, from its CRM's API (as its source declares)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from workers import sources
from workers.contract import ChangeEvent
from workers.errors import ActionNotApplicableError
from workers.record import Record


@dataclass(frozen=True)
class CrmClients:
    """The client of each source this worker serves, by source name (a missing one is not configured here)."""

    clients: Mapping[str, Any] = field(default_factory=dict)

    def require(self, source: str) -> Any:
        """The source's client, or ActionNotApplicableError naming the settings it needs."""
        client = self.clients.get(source)
        if client is None:
            declared = sources.source_named(source)
            hint = declared.settings_hint if declared is not None else f"crmflow has no source {source!r}"
            raise ActionNotApplicableError(hint)
        return client


async def fetch_record(event: ChangeEvent, crm: CrmClients, fields: frozenset[str]) -> Record:
    """GET the record now (never trust a notification's values: they may be stale or out of order).

    `fields` are those the rules read; some CRMs return every field anyway, others only those asked for.
    """
    module = sources.module_of(event.source, event.module)
    if module is None:
        raise ActionNotApplicableError(f"crmflow cannot fetch {event.source}/{event.module} records")
    return await module.fetch(crm.require(event.source), event.record_id, fields)


def remembered_fields(source: str, module: str) -> frozenset[str]:
    """Fields to keep between notifications besides those the rules name."""
    declared = sources.module_of(source, module)
    return declared.remembered if declared is not None else frozenset()


def previous_values(record: Record, since: datetime | None = None) -> Mapping[str, Any]:
    """What a record first seen by crmflow says about its own previous state (see each source's module); with
    `since` (a sweep's window start), its state at that time, as far as the record tells."""
    declared = sources.module_of(record.source, record.module)
    return declared.infer_previous(record, since) if declared is not None else {}
