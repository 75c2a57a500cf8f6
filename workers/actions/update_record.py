"""Action update_record: set fields of the record to rendered templates (Zoho PUT, HubSpot PATCH), exactly once.

Exactly once in effect for one change of one record under one rule's action, through Ledger.apply_once
keyed by `run.change_key()`: the ledger holds the rendered fields as pending before the CRM call, with each
field's value before the write (as fetched for that try), so a retry sends the very same values. The write is
idempotent (the same values again change nothing), so a retry after a crash between the CRM's answer and the
ledger may write again; it looks first, though: when the record as fetched for this job already holds every
value (that earlier write, or a record that needs no change at all), nothing is sent and the effect counts as
found in the CRM. When a retry finds a field holding neither its value before the write nor the value to
write, a person changed it since: their value stands, nothing is sent, and the effect is done as superseded.

Before the CRM call, the values are recorded as crmflow's own writes (workers/own_writes.py), so that the
change they cause, when the CRM notifies it, fires no rule again; a write the CRM refuses is forgotten.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from workers import own_writes
from workers.actions.base import ActionResult
from workers.actions.templated import rendered
from workers.diff import same_value
from workers.errors import CrmNotSentError
from workers.ledger import REFUSED
from workers.rules.model import UpdateRecordParams
from workers.sources.base import ActionRun

# The CRM client's update of one record: (record id, fields) -> the record's id once the CRM applied them.
UpdateFields = Callable[[str, Mapping[str, Any]], Awaitable[str]]
# The outcome of a retry that found a person's newer value in a field it was to write: nothing written.
SUPERSEDED = "superseded"


def already_holds(current: Mapping[str, Any], fields: Mapping[str, Any]) -> bool:
    """Whether the record's fields already hold every value to write (as the CRM reads them back). Pure."""
    return all(name in current and own_writes.matches(value, current[name]) for name, value in fields.items())


def overwritten_since(current: Mapping[str, Any], fields: Mapping[str, Any], was: Mapping[str, Any]) -> list[str]:
    """The fields to write that now hold neither their value before the write nor the value to write: someone
    changed them after the write was begun. Pure."""
    return [
        name
        for name, value in fields.items()
        if name in was
        and name in current
        and not own_writes.matches(value, current[name])
        and not same_value(was[name], current[name])
    ]


def effect_of(fields: Mapping[str, Any], was: Mapping[str, Any]) -> dict[str, Any]:
    """The ledger's effect: the fields to write and their values before the write. Pure."""
    return {"fields": dict(fields), "was": dict(was)}


def _read_effect(effect: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(fields, was) of a ledger effect; an entry written before `was` was kept is the fields alone."""
    if isinstance(effect, dict) and set(effect) == {"fields", "was"}:
        fields, was = effect["fields"], effect["was"]
        if isinstance(fields, dict) and isinstance(was, dict):
            return fields, was
    return dict(effect), {}


async def update_record(update: UpdateFields, run: ActionRun) -> ActionResult:
    """Render the fields, then write them unless the record already holds them, this change wrote them, or a
    person changed them since an earlier try of this change began writing them."""
    params = run.params
    assert isinstance(params, UpdateRecordParams)
    fields = rendered(run, params.fields)
    record = run.record
    where = (record.source, record.module, record.id)
    redis = run.ledger.redis
    before = {name: record.fields[name] for name in fields if name in record.fields}
    superseded: list[str] = []

    async def find_existing(effect: Any) -> str | None:
        to_write, was = _read_effect(effect)
        if already_holds(record.fields, to_write):
            return record.id
        # Only an earlier try's effect can differ here: this try's `was` is the record as fetched.
        superseded.extend(overwritten_since(record.fields, to_write, was))
        return record.id if superseded else None

    async def write(effect: Any) -> str:
        to_write, was = _read_effect(effect)
        await own_writes.remember(redis, *where, to_write, run.change.since, was or before)
        try:
            return await update(record.id, to_write)
        except (*REFUSED, CrmNotSentError):
            # Nothing was written: the values must not pass for crmflow's if someone sets them later.
            await own_writes.forget(redis, *where, to_write, run.change.since, was or before)
            raise

    applied = await run.ledger.apply_once(
        run.change_key(),
        effect_of(fields, before),
        find_existing=find_existing,
        write=write,
        look_first=True,
        checkpoint=run.checkpoint,
    )
    if superseded:
        return ActionResult(SUPERSEDED, f"changed since by someone else: {', '.join(sorted(superseded))}")
    return ActionResult(applied.outcome, applied.crm_id)
