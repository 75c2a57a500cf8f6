"""Replay: which dead letters can be queued again, and as what.

The worker writes dead letters (workers/jobs.py); this module, beside it, decides what replaying one can
redo. A letter about a whole job is queued again as its event (process_change). A letter about one failed
action carries an ActionReplay (workers/deadletters.py), made here by `capture` from what the action read;
it is queued as a replay_action job, which rebuilds the action and its inputs with `rebuild` and runs just
that action again. `crmflow dlq replay` only chooses the letters and prints the outcomes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from arq.connections import ArqRedis
from pydantic import ValidationError

from workers import sources
from workers.actions.dispatch import ActionTrace, Reads
from workers.contract import REPLAY_ACTION, ChangeEvent, action_job_id
from workers.deadletters import (
    MALFORMED_JOB,
    MISSED_RESCHEDULE,
    ActionReplay,
    DeadLetter,
    DeadLetters,
    Kept,
    ReplayRecord,
)
from workers.diff import Change
from workers.errors import ActionNotApplicableError
from workers.queue import Job, enqueue_events, enqueue_jobs
from workers.record import Record
from workers.rules.context import RuleContext
from workers.rules.evaluate import PlannedAction
from workers.rules.model import ActionSpec
from workers.rules.registry import ACTION_PARAMS

V = TypeVar("V")


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
    if letter.error_code == MALFORMED_JOB:
        return "MALFORMED_JOB: its job's arguments could not be read, so there is no work to queue again"
    if letter.error_code == MISSED_RESCHEDULE:
        return (
            "MISSED_RESCHEDULE: Zoho keeps no time or user for this reschedule and the record has moved on, so a "
            "replay would find no change; log it by hand from the context, then purge the letter"
        )
    if (letter.rule is not None or letter.action is not None) and letter.action_replay is None:
        return (
            f"{letter.error_code}: written by a worker that did not keep what running the action again takes; "
            "log the change by hand from the context, then purge the letter"
        )
    return None


def replay_event(letter: DeadLetter, stamp_ms: int) -> ChangeEvent:
    """The letter's event with a replay number no earlier replay of it used (a job id of its own), naming the letter."""
    previous = ChangeEvent.model_validate(letter.event).replay
    return ChangeEvent.model_validate(letter.event | {"replay": max(stamp_ms, previous + 1), "replay_of": letter.id})


async def replay_letter(redis: ArqRedis, store: DeadLetters, letter: DeadLetter, *, stamp_ms: int) -> Outcome:
    """Queue the letter's work again (its event, or its action), then remove the letter; or say why not."""
    reason = unreplayable(letter)
    if reason is not None:
        return Outcome(letter.id, reason=reason)
    event = replay_event(letter, stamp_ms)
    # Queued first, removed after: a crash in between leaves the letter, and replaying it again only queues
    # the same work again, which the worker's ledger keeps from being done twice.
    if letter.action_replay is None:
        await enqueue_events(redis, [event])
        job_id = event.job_id()
    else:
        job_id = await enqueue_action(redis, event, letter.action_replay)
    await store.delete(letter.id)
    return Outcome(letter.id, job_id=job_id)


async def enqueue_action(redis: ArqRedis, event: ChangeEvent, replay: ActionReplay) -> str:
    """Queue a replay_action job for one action letter (arguments: the event and the ActionReplay, as JSON)."""
    job_id = action_job_id(event, replay.rule, replay.type)
    # Through the same script as notifications: queued or already there (queued, or run and its result
    # kept) once this returns, and QueueUnavailableError otherwise, so the letter is never dropped for a
    # job that Redis did not take.
    args = (event.model_dump(mode="json"), replay.model_dump(mode="json"))
    await enqueue_jobs(redis, [Job(job_id, REPLAY_ACTION, args)])
    return job_id


# --- An action's inputs, kept and rebuilt ----------------------------------------------------------------


def _kept(values: Mapping[str, V], reads: Reads) -> Kept[V]:
    names = sorted(reads.names)
    return Kept[V](
        values={name: values[name] for name in names if name in values},
        absent=tuple(name for name in names if name not in values),
        complete=reads.complete,
    )


def capture(
    step: PlannedAction,
    record: Record,
    change: Change,
    now: datetime,
    trace: ActionTrace,
    context: RuleContext | None = None,
) -> ActionReplay:
    """What running `step` again takes: the action as its rule had it, and of `record` (and of the values from
    before the change, in `context`) only what `trace` saw read.

    Nothing else of the record is kept (it is personal data), nor anything of the worker (no credentials).
    """
    kept = ReplayRecord(
        source=record.source,
        module=record.module,
        id=record.id,
        modified_time=record.modified_time,
        fields=_kept(record.fields, trace.fields),
        history=_kept(record.history, trace.history),
    )
    params = step.action.params.model_dump(mode="json")
    about = {}
    if context is not None:
        about = {
            "operation": context.operation,
            "previous": _kept(context.known_previous, trace.previous),
            "changed_at": context.now,
        }
    return ActionReplay(
        rule=step.rule,
        index=step.index,
        type=step.action.type,
        params=params,
        change=change,
        record=kept,
        now=now,
        **about,
    )


class _Replayed(Mapping[str, V]):
    """The values an action read when it first ran. Reading anything else stops the action: it would run on
    values the letter never saw (an action that reads a field only after its first write, for example)."""

    def __init__(self, kept: Kept[V], what: str) -> None:
        self._kept = kept
        self._what = what

    def _unknown(self, name: str | None = None) -> ActionNotApplicableError:
        which = f"{self._what} {name!r}" if name is not None else f"every {self._what}"
        return ActionNotApplicableError(f"the dead letter does not keep {which}, which the action read this time")

    def __getitem__(self, name: str) -> V:
        if name in self._kept.values:
            return self._kept.values[name]
        if self._kept.complete or name in self._kept.absent:
            raise KeyError(name)
        raise self._unknown(name)

    def __iter__(self) -> Iterator[str]:
        if not self._kept.complete:
            raise self._unknown()
        return iter(self._kept.values)

    def __len__(self) -> int:
        if not self._kept.complete:
            raise self._unknown()
        return len(self._kept.values)


def rebuild(replay: ActionReplay) -> tuple[PlannedAction, Record, Change]:
    """The action, record and change `replay` keeps, as the action first got them (its context: `context_of`).

    ActionNotApplicableError when this worker no longer knows the action type or its kept parameters.
    """
    params_model = ACTION_PARAMS.get(replay.type)
    if params_model is None:
        raise ActionNotApplicableError(f"this worker knows no action {replay.type!r}")
    try:
        params = params_model.model_validate(replay.params)
    except ValidationError as exc:
        raise ActionNotApplicableError(f"the kept parameters of {replay.type} are not valid any more: {exc}") from exc
    step = PlannedAction(rule=replay.rule, index=replay.index, action=ActionSpec(type=replay.type, params=params))
    kept = replay.record
    record = Record(
        source=kept.source,
        module=kept.module,
        id=kept.id,
        modified_time=kept.modified_time,
        fields=_Replayed(kept.fields, "field"),
        history=_Replayed(kept.history, "history of"),
    )
    return step, record, replay.change


def context_of(replay: ActionReplay, record: Record) -> RuleContext:
    """The rule context the action first ran in, on the `record` rebuilt from `replay` (see `rebuild`).

    A letter of a worker that kept no previous values answers only for the changed fields' old values.
    """
    kept = replay.previous
    if not kept.values and not kept.absent and not kept.complete:
        kept = Kept[Any](values={name: moved.old for name, moved in replay.change.fields.items()})
    module = sources.module_of(record.source, record.module)
    return RuleContext.build(
        source=record.source,
        module=record.module,
        operation=replay.operation,
        record=record.fields,
        previous=_Replayed(kept, "previous value of"),
        change=replay.change,
        now=replay.changed_at or record.modified_time,
        start_field=module.start_field if module is not None else None,
        rule=replay.rule,
    )
