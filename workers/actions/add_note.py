"""Action add_note: a note on the record with a rendered title and content, exactly once.

Zoho: a record of the Notes module with the appointment as its parent (Note_Title, Note_Content). HubSpot:
a note associated with the appointment as it is created (one request), its body the title's line then the
content, dated (hs_timestamp) when the change was made.

Notes are not idempotent: every create makes one more. So, as for the reschedule history, through
Ledger.apply_once keyed by `run.change_key()`: the ledger holds the exact note as pending before the create,
and a retry after a pending entry (a worker killed between the CRM's answer and the ledger, a lost answer)
first looks among the record's notes for it. What it looks for is a marker that the note's content ends
with, `[crmflow <ref>]`, where <ref> names the ledger entry: unique to this change, rule and action, so a
note with the same words written for another change is never taken for this one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from workers.actions.base import ActionResult
from workers.actions.templated import rendered
from workers.crm.hubspot import HubSpotClient
from workers.crm.hubspot_models import as_hubspot_time, properties_of
from workers.crm.zoho import ZohoClient
from workers.rules.model import AddNoteParams
from workers.sources.base import ActionRun

REF_LENGTH = 12


def marker(ledger_key: str) -> str:
    """The mark a note of this ledger entry carries: `[crmflow <the first 12 hex digits of its digest>]`. Pure."""
    return f"[crmflow {ledger_key.rsplit(':', 1)[-1][:REF_LENGTH]}]"


def marked(content: str, mark: str) -> str:
    """The content with the marker on a line of its own at the end. Pure."""
    return f"{content.rstrip()}\n\n{mark}" if content.strip() else mark


def hubspot_body(title: str, content: str) -> str:
    """A HubSpot note has no title: it is the body's first line. Pure."""
    return f"{title.strip()}\n{content}" if title.strip() else content


# The note as the CRM takes it, its id once created, and the CRM's notes of the record.
Create = Callable[[Mapping[str, Any]], Awaitable[str]]
ListNotes = Callable[[], Awaitable[Sequence[Mapping[str, Any]]]]


async def _add(
    run: ActionRun,
    note: Callable[[str, str], dict[str, Any]],
    create: Create,
    notes: ListNotes,
    text_of: Callable[[Mapping[str, Any]], Any],
) -> ActionResult:
    params = run.params
    assert isinstance(params, AddNoteParams)
    texts = rendered(run, {"title": params.title, "content": params.content})
    key = run.change_key()
    mark = marker(key)

    async def find_existing(effect: Mapping[str, Any]) -> str | None:
        for found in await notes():
            text = text_of(found)
            if isinstance(text, str) and mark in text:
                return str(found.get("id", ""))
        return None

    applied = await run.ledger.apply_once(
        key,
        note(texts["title"], marked(texts["content"], mark)),
        find_existing=find_existing,
        write=create,
        checkpoint=run.checkpoint,
    )
    return ActionResult(applied.outcome, applied.crm_id)


async def add_zoho_note(zoho: ZohoClient, run: ActionRun) -> ActionResult:
    """A Notes record whose parent is the appointment."""
    record_id = run.record.id

    def note(title: str, content: str) -> dict[str, Any]:
        return {"Note_Title": title, "Note_Content": content}

    async def create(effect: Mapping[str, Any]) -> str:
        return await zoho.add_note(record_id, str(effect["Note_Title"]), str(effect["Note_Content"]))

    async def notes() -> Sequence[Mapping[str, Any]]:
        return await zoho.notes_of(record_id)

    return await _add(run, note, create, notes, lambda found: found.get("Note_Content"))


async def add_hubspot_note(hubspot: HubSpotClient, run: ActionRun) -> ActionResult:
    """A note associated with the appointment, on its timeline when the change was made."""
    record_id = run.record.id
    when = as_hubspot_time(run.context.now)

    def note(title: str, content: str) -> dict[str, Any]:
        return {"hs_timestamp": when, "hs_note_body": hubspot_body(title, content)}

    async def create(effect: Mapping[str, Any]) -> str:
        return await hubspot.create_note(record_id, {name: str(value) for name, value in effect.items()})

    async def notes() -> Sequence[Mapping[str, Any]]:
        return await hubspot.notes_of(record_id)

    return await _add(run, note, create, notes, lambda found: properties_of(found).get("hs_note_body"))
