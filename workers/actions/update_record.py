"""Action update_record: set fields of the record to rendered templates (Zoho PUT, HubSpot PATCH), exactly once.

Exactly once in effect for one change of one record under one rule's action, through Ledger.apply_once
keyed by `run.change_key()`: the ledger holds the rendered fields as pending before the CRM call, so a retry
sends the very same values. The write is idempotent (the same values again change nothing), so a retry
after a crash between the CRM's answer and the ledger may write again; it looks first, though: when the
record as fetched for this job already holds every value (that earlier write, or a record that needs no
change at all), nothing is sent and the effect counts as found in the CRM.

Before the CRM call, the values are recorded as crmflow's own writes (workers/own_writes.py), so that the
change they cause, when the CRM notifies it, fires no rule again; a write the CRM refuses is forgotten.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from workers import own_writes
from workers.actions.base import ActionResult
from workers.actions.templated import rendered
from workers.errors import CrmNotSentError
from workers.ledger import REFUSED
from workers.rules.model import UpdateRecordParams
from workers.sources.base import ActionRun

# The CRM client's update of one record: (record id, fields) -> the record's id once the CRM applied them.
UpdateFields = Callable[[str, Mapping[str, Any]], Awaitable[str]]


def already_holds(current: Mapping[str, Any], fields: Mapping[str, Any]) -> bool:
    """Whether the record's fields already hold every value to write (as the CRM reads them back). Pure."""
    return all(name in current and own_writes.matches(value, current[name]) for name, value in fields.items())


async def update_record(update: UpdateFields, run: ActionRun) -> ActionResult:
    """Render the fields, then write them unless the record already holds them or this change wrote them."""
    params = run.params
    assert isinstance(params, UpdateRecordParams)
    fields = rendered(run, params.fields)
    record = run.record
    where = (record.source, record.module, record.id)
    redis = run.ledger.redis

    async def find_existing(effect: Mapping[str, Any]) -> str | None:
        return record.id if already_holds(record.fields, effect) else None

    async def write(effect: Mapping[str, Any]) -> str:
        await own_writes.remember(redis, *where, effect, run.change.since)
        try:
            return await update(record.id, effect)
        except (*REFUSED, CrmNotSentError):
            # Nothing was written: the values must not pass for crmflow's if someone sets them later.
            await own_writes.forget(redis, *where, effect, run.change.since)
            raise

    applied = await run.ledger.apply_once(
        run.change_key(), fields, find_existing=find_existing, write=write, look_first=True, checkpoint=run.checkpoint
    )
    return ActionResult(applied.outcome, applied.crm_id)
