"""Replay: which dead letters can be queued again, and how a letter becomes a ChangeEvent again.

The worker writes dead letters (workers/jobs.py); this module, beside it, decides what replaying one can
redo. `crmflow dlq replay` only chooses the letters and prints the outcomes.
"""

from __future__ import annotations

from dataclasses import dataclass

from arq.connections import ArqRedis
from pydantic import ValidationError

from workers.contract import ChangeEvent
from workers.deadletters import MISSED_RESCHEDULE, DeadLetter, DeadLetters
from workers.queue import enqueue_events


@dataclass(frozen=True)
class Outcome:
    """What a replay did with one letter: queued it as `job_id`, or skipped it for `reason`."""

    id: str
    job_id: str | None = None
    reason: str | None = None


def unreplayable(letter: DeadLetter) -> str | None:
    """Why replaying `letter` could not redo its work, or None if it can be replayed."""
    try:
        ChangeEvent.model_validate(letter.event)
    except ValidationError:
        return "MALFORMED_JOB: its job's arguments are not a ChangeEvent, so there is no event to queue again"
    if letter.error_code == MISSED_RESCHEDULE:
        return (
            "MISSED_RESCHEDULE: Zoho keeps no time or user for this reschedule and the record has moved on, so a "
            "replay would find no change; log it by hand from the context, then purge the letter"
        )
    if letter.rule is not None or letter.action is not None:
        return (
            f"{letter.error_code}: its job went on after this action failed and stored the record as seen, so a "
            "replayed job would find no change and run nothing"
        )
    return None


def replay_event(letter: DeadLetter, stamp_ms: int) -> ChangeEvent:
    """The letter's event with a replay number no earlier replay of it used: a job id of its own."""
    previous = ChangeEvent.model_validate(letter.event).replay
    return ChangeEvent.model_validate(letter.event | {"replay": max(stamp_ms, previous + 1)})


async def replay_letter(redis: ArqRedis, store: DeadLetters, letter: DeadLetter, *, stamp_ms: int) -> Outcome:
    """Queue the letter's event as the receiver does, then remove the letter; or say why not."""
    reason = unreplayable(letter)
    if reason is not None:
        return Outcome(letter.id, reason=reason)
    event = replay_event(letter, stamp_ms)
    # Queued first, removed after: a crash in between leaves the letter, and replaying it again only queues
    # the same work again, which the worker's ledger keeps from being done twice.
    await enqueue_events(redis, [event])
    await store.delete(letter.id)
    return Outcome(letter.id, job_id=event.job_id())
