"""Jobs: process one ChangeEvent (fetch → diff → rules → actions) and turn failures into retries or dead letters.

Every way a job can end is decided here, so that no change is lost: done, retried later with backoff
(transient CRM and Redis failures, a job that ran out of time, anything unexpected), or kept as a dead
letter (final CRM answers, actions that cannot apply, retries exhausted). arq itself would fail a job
for good on any other exception, so none escapes. A job that ends (not one deferred to a retry) leaves one
entry in the event log (workers/eventlog.py), made from what it noted as it ran (workers/job_notes.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from arq import Retry
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from workers import job_notes, keys, sources
from workers.actions.dispatch import Actions, ActionTrace
from workers.backoff import backoff_s
from workers.checkpoints import NO_CHECKPOINTS, Checkpoints
from workers.contract import ChangeEvent, action_job_id
from workers.crm.limits import reserving
from workers.deadletters import (
    MALFORMED_JOB,
    MISSED_RESCHEDULE,
    ActionReplay,
    DeadLetter,
    DeadLetters,
    dead_letter_id,
)
from workers.diff import Change, FieldChange, Snapshot, diff, lags_listing, looks_lagging, snapshot_of
from workers.errors import (
    ActionNotApplicableError,
    CrmAuthError,
    CrmNotFoundError,
    CrmRateLimitedError,
    CrmRejectedError,
    CrmTransientError,
    NotifyUnavailableError,
    loggable,
)
from workers.event_entry import build_entry, job_outcome
from workers.eventlog import EventEntry, EventLog, JobKind
from workers.fetch import CrmClients, fetch_record, previous_values, remembered_fields
from workers.log_context import log_context
from workers.metrics import ACTIONS, JOBS, event_time, observe_lag
from workers.own_writes import Entries, StateSave, drop_own_writes, load_state, save_state, state_save
from workers.queue import claim_coalesced, coalescing, merged
from workers.record import Record
from workers.record_lock import RecordLock, State, StateReads, Taken, defer_s
from workers.replay import capture, context_of, rebuild
from workers.rules.context import RuleContext
from workers.rules.evaluate import PlannedAction, plan
from workers.rules.model import RuleSet
from workers.rules.registry import NEEDS_RECORD
from workers.snapshots import delete_snapshot, load_snapshot

logger = logging.getLogger("crmflow.jobs")

# Failures that retrying cannot fix: recorded as dead letters at once.
FINAL_ERRORS = (CrmAuthError, CrmNotFoundError, CrmRejectedError, ActionNotApplicableError)
# Tries that may be spent waiting for the CRM to return a record as new as the change it announced.
LAGGING_READ_TRIES = 3
# A change's CRM calls, reserved together in a window-limited CRM's limiter (workers/crm/limits.py `reserving`):
# the record's GET and one write (a reschedule's note). Further calls wait for room as they come.
JOB_CALLS = 2


# Runs a job may spend waiting (rate limits, e.g. 20 hours of HubSpot's ten-second windows; its record's lock)
# rather than trying: arq is allowed this many more runs than tries (workers/main.py). A job that has waited
# for its record's lock for nearly all of them is given up as a dead letter before arq would drop it silently.
RATE_LIMIT_RUNS = 10_000
LOCK_WAIT_RUNS = RATE_LIMIT_RUNS - 100


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently transient failures are retried before a dead letter."""

    max_tries: int
    base_s: float
    cap_s: float
    # No retry once the job is this old (from enqueueing), tries left or not, rate limits included.
    max_age_s: float = 72_000


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class WorkerDeps:
    """Everything a job uses, built once per worker process at start-up."""

    redis: Redis
    rules: RuleSet
    crm: CrmClients
    actions: Actions
    deadletters: DeadLetters
    policy: RetryPolicy
    # The job's own time budget, a little under arq's job timeout, so that running out becomes a retry
    # here instead of a permanent failure in arq.
    work_timeout_s: float
    # How long the record's lock is held at most: longer than any job may run.
    lock_timeout_s: float
    clock: Callable[[], datetime] = field(default=utcnow)
    jitter: Callable[[], float] = field(default=random.random)
    checkpoints: Checkpoints = NO_CHECKPOINTS
    # Where every finished job leaves its entry (workers/eventlog.py); None: no event log (unit tests).
    events: EventLog | None = None


def lock_key(event: ChangeEvent) -> str:
    return keys.lock(event.source, event.module, event.record_id)


def _job_source(event_data: Any) -> str:
    """The job's source as a metric label: a registered source's name, else "other" (a malformed job)."""
    name = event_data.get("source") if isinstance(event_data, dict) else None
    return name if isinstance(name, str) and sources.source_named(name) is not None else "other"


async def _counted(
    ctx: dict[str, Any], event_data: Any, run: Callable[[job_notes.JobNotes], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    """`await run(notes)`, counted in crmflow_jobs_total: retried (arq's Retry), dead_lettered, or processed.

    dead_lettered when the job kept any letter (an action's, a missed reschedule's), as its event log entry
    says (workers/event_entry.py `job_outcome`), even where its result's status is "processed".
    """
    source = _job_source(event_data)
    deps: WorkerDeps = ctx["deps"]
    with job_notes.noting(deps.clock()) as notes:
        try:
            result = await run(notes)
        except Retry:
            JOBS.labels(source, "retried").inc()
            raise
    JOBS.labels(source, "dead_lettered" if job_outcome(result, notes) == "dead_lettered" else "processed").inc()
    return result


async def process_change(ctx: dict[str, Any], event_data: Any) -> dict[str, Any]:
    """The arq job: handle one change under the record's lock; retry transient failures with backoff."""
    return await _counted(ctx, event_data, lambda notes: _process_change(ctx, event_data, notes))


async def _process_change(ctx: dict[str, Any], event_data: Any, notes: job_notes.JobNotes) -> dict[str, Any]:
    deps: WorkerDeps = ctx["deps"]
    runs: int = ctx.get("job_try", 1)
    try:
        event = ChangeEvent.model_validate(event_data)
    except ValidationError as exc:
        return await _reject_malformed(deps, event_data, runs, exc)

    async def give_up(job_try: int, code: str, message: str, error_class: str) -> dict[str, Any]:
        return await _dead_letter(deps, event, job_try, code, message, error_class)

    async def work(job_try: int, state: State | None) -> dict[str, Any]:
        # Before the fetch: from here on a new event for the record gets a job of its own (workers/queue.py). The
        # lock's script claimed the job's coalesced events and read the record's state (workers/record_lock.py).
        if state is None:
            notified = await claim_coalesced(deps.redis, event, event.job_id())
            preloaded = None
        else:
            notified = merged(event, state.claimed)
            preloaded = state.decoded()
        if event.operation == "delete":
            return await handle_change(event, deps, job_try=job_try, notified=notified, state=preloaded)
        # The fetch spends a call only when a window-limited CRM (HubSpot) can take the write after it too.
        async with reserving(JOB_CALLS):
            return await handle_change(event, deps, job_try=job_try, notified=notified, state=preloaded, ending=ending)

    with _job_context(event, event.job_id()):
        reads = _state_reads(event)
        ending = JobEnd()
        enqueued_at = ctx.get("enqueue_time")
        result = await _guarded(
            deps, event, event.job_id(), runs, enqueued_at, work, give_up, reads=reads, ending=ending
        )
        return await _end(deps, ctx, "process_change", event.job_id(), event, result, notes, ending, give_up)


def _state_reads(event: ChangeEvent) -> StateReads:
    """What a process_change job reads with its record's lock, in the same round trip."""
    job_id = event.job_id()
    claim = None
    if coalescing(event, 0) is not None:
        claim = (keys.queued_marker(event.source, event.module, event.record_id), keys.coalesced(job_id))
    where = (event.source, event.module, event.record_id)
    return StateReads(job_id, claim, keys.snapshot(*where), keys.own_writes(*where))


@dataclass
class JobEnd:
    """What a run that finished its work under the record's lock writes in its last round trip, together
    (workers/record_lock.py `RecordLock.end`): the record's new state (None: nothing to save), the lock's release,
    the job's event log entry. `lock` is None when the run did not finish that way (a retry, a dead letter)."""

    lock: RecordLock | None = None
    job_try: int = 0
    save: StateSave | None = None


async def _end(
    deps: WorkerDeps,
    ctx: dict[str, Any],
    job: JobKind,
    job_id: str,
    event: ChangeEvent,
    result: dict[str, Any],
    notes: job_notes.JobNotes,
    ending: JobEnd,
    give_up: GiveUp,
) -> dict[str, Any]:
    """The job's last round trip: new state, lock released, event log entry (`JobEnd`); the job's result.

    A Redis failure that loses the new state makes the try a failed one (retried, or a dead letter), as a failed
    save within the work would; one that loses only the release and the entry loses just those (the lock times
    out), since the job's work is done and must not be redone for them.
    """
    if ending.lock is None:
        await _log_event(deps, ctx, job, job_id, event, result, notes)
        return result
    entry = _entry(deps, ctx, job, job_id, event, result, notes)
    try:
        await ending.lock.end(ending.save, deps.events.writing(entry) if deps.events and entry else None)
        return result
    except RedisError as exc:
        with contextlib.suppress(RedisError):
            await ending.lock.release()
        if ending.save is None:
            logger.warning("%s: event log entry not written: %s", job_id, exc)
            return result
        failed = await _retry_or_give_up(deps, job_id, ending.job_try, exc, ctx.get("enqueue_time"), give_up)
        await _log_event(deps, ctx, job, job_id, event, failed, notes)
        return failed


def _job_context(event: ChangeEvent, job_id: str) -> contextlib.AbstractContextManager[None]:
    """Every log line of the job names it, its record and where the record lives (workers/log_context.py)."""
    return log_context(job_id=job_id, source=event.source, module=event.module, record_id=event.record_id)


async def _log_event(
    deps: WorkerDeps,
    ctx: dict[str, Any],
    job: JobKind,
    job_id: str,
    event: ChangeEvent,
    result: dict[str, Any],
    notes: job_notes.JobNotes,
) -> None:
    """Leave the finished job's entry in the event log: one round trip; a Redis failure loses only the entry."""
    entry = _entry(deps, ctx, job, job_id, event, result, notes)
    if deps.events is None or entry is None:
        return
    try:
        await deps.events.write(entry)
    except RedisError as exc:
        # The job's work is done and must not be redone for the sake of its log entry.
        logger.warning("%s: event log entry not written: %s", job_id, exc)


def _entry(
    deps: WorkerDeps,
    ctx: dict[str, Any],
    job: JobKind,
    job_id: str,
    event: ChangeEvent,
    result: dict[str, Any],
    notes: job_notes.JobNotes,
) -> EventEntry | None:
    """The finished job's event log entry; None without an event log."""
    if deps.events is None:
        return None
    received: datetime | None = ctx.get("enqueue_time")
    return build_entry(
        job=job,
        job_id=job_id,
        event=event,
        result=result,
        notes=notes,
        runs=ctx.get("job_try", 1),
        received_at=received.astimezone(UTC) if received is not None else None,
        finished_at=deps.clock(),
    )


# Records a job's final failure as a dead letter: (job_try, code, message, error class) -> the job's result.
GiveUp = Callable[[int, str, str, str], Awaitable[dict[str, Any]]]


async def _guarded(
    deps: WorkerDeps,
    event: ChangeEvent,
    job_id: str,
    runs: int,
    enqueued_at: datetime | None,
    work: Callable[[int, State | None], Awaitable[dict[str, Any]]],
    give_up: GiveUp,
    *,
    reads: StateReads | None = None,
    ending: JobEnd | None = None,
) -> dict[str, Any]:
    """Run `work(job_try, state)` under the record's lock; every way it can fail becomes a retry or `give_up`.

    The lock is taken in the job's first round trip, which also reads the runs spent waiting (rate limits, the
    lock) that do not count as tries. A lock another job holds defers this one at once (workers/record_lock.py),
    not counted as a try, for as long as the lock's own timeout; a lock taken for longer than that (no job
    holds it that long) makes each further run a try, so it still ends in a dead letter. `reads`: what the same
    round trip reads once the lock is taken, handed to `work` (workers/record_lock.py). `ending`: when given, a
    run whose work returned keeps the lock, for the caller to let go in its last round trip (`_end`).
    """
    lock = RecordLock(
        deps.redis, lock_key(event), job_id, timeout_s=deps.lock_timeout_s, max_wait_s=deps.lock_timeout_s
    )
    try:
        taken = await lock.take(int(deps.clock().timestamp() * 1000), reads)
    except RedisError as exc:
        return await _take_failed(deps, lock, job_id, runs, exc, enqueued_at, give_up)
    job_try = runs - taken.waited_runs
    if job_try > deps.policy.max_tries:
        # Reached only when earlier tries never reported back: the worker running them was killed.
        message = f"started {job_try - 1} times without finishing (worker killed each time?)"
        try:
            return await give_up(job_try, "TOO_MANY_TRIES", message, "CrashLoop")
        finally:
            if taken.taken:
                with contextlib.suppress(RedisError):
                    await lock.release()
    if not taken.taken:
        return await _lock_busy(deps, lock, taken, job_id, job_try, enqueued_at, give_up)
    try:
        async with asyncio.timeout(deps.work_timeout_s):
            return await _holding(lock, job_try, taken.state, work, ending)
    except TimeoutError:
        overdue = CrmTransientError(f"the job took longer than {deps.work_timeout_s:.0f}s", code="JOB_TIMEOUT")
        return await _retry_or_give_up(deps, job_id, job_try, overdue, enqueued_at, give_up)
    except CrmRateLimitedError as exc:
        return await _wait_out_rate_limit(deps, job_id, job_try, exc, enqueued_at, give_up)
    except (CrmTransientError, RedisError) as exc:
        return await _retry_or_give_up(deps, job_id, job_try, exc, enqueued_at, give_up)
    except Exception as exc:
        # A bug or corrupt state: keep the change (retried, then a dead letter) rather than let arq drop it.
        logger.exception("try %d: unexpected error", job_try)
        unexpected = CrmTransientError(f"unexpected {type(exc).__name__}: {exc}", code="UNEXPECTED", quoted=True)
        return await _retry_or_give_up(deps, job_id, job_try, unexpected, enqueued_at, give_up)


async def _lock_busy(
    deps: WorkerDeps,
    lock: RecordLock,
    taken: Taken,
    job_id: str,
    job_try: int,
    enqueued_at: datetime | None,
    give_up: GiveUp,
) -> dict[str, Any]:
    """Another job holds the record's lock: defer this one (a wait, not a try), or, once one holder has kept
    the lock past its timeout, count a try; a job that waited through nearly all the runs arq allows, or past
    its age limit, is given up as a dead letter rather than dropped by arq."""
    if taken.waited_runs >= LOCK_WAIT_RUNS or _age_s(deps, enqueued_at) > deps.policy.max_age_s:
        message = f"the record's lock was taken by other jobs through {taken.waited_runs} runs of this one"
        return await give_up(job_try, "LOCK_BUSY", message, "CrmTransientError")
    if taken.counted_as_wait(lock.max_wait_s):
        delay = defer_s(taken.waiting_s, deps.jitter())
        logger.info("the record is being processed by another job; again in %.2fs", delay)
        raise Retry(defer=delay)
    busy = CrmTransientError(f"the record's lock has been taken for {taken.waiting_s:.0f}s", code="LOCK_BUSY")
    return await _retry_or_give_up(deps, job_id, job_try, busy, enqueued_at, give_up)


async def _holding(
    lock: RecordLock,
    job_try: int,
    state: State | None,
    work: Callable[[int, State | None], Awaitable[dict[str, Any]]],
    ending: JobEnd | None,
) -> dict[str, Any]:
    """`work` under the lock, let go when it fails; when it returns, let go, or kept for `ending`."""
    try:
        result = await work(job_try, state)
    except BaseException:
        await lock.release()
        raise
    if ending is None:
        await lock.release()
    else:
        ending.lock, ending.job_try = lock, job_try
    return result


async def handle_change(
    event: ChangeEvent,
    deps: WorkerDeps,
    *,
    job_try: int,
    notified: ChangeEvent | None = None,
    state: tuple[Snapshot | None, Entries] | None = None,
    ending: JobEnd | None = None,
) -> dict[str, Any]:
    """fetch → diff → rules → actions → remember the new state. The caller holds the record's lock.

    `notified`: the event with what the events coalesced into this job added (their latest notified_at_ms
    and every changed field), which the lagging-read check reads; the event itself names the job. `state`: the
    record's snapshot and own-write entries, when the caller read them with the lock (else read here). `ending`:
    where the new state goes for the caller to save with the lock's release (else saved here).
    """
    notified = notified or event
    where = (event.source, event.module, event.record_id)
    if event.operation == "delete":
        return await _handle_delete(event, deps, job_try=job_try)
    watched = deps.rules.watched_fields(event.source, event.module) | remembered_fields(event.source, event.module)
    try:
        record = await fetch_record(event, deps.crm, watched)
    except CrmNotFoundError:
        await delete_snapshot(deps.redis, *where)
        return {"status": "gone"}
    except FINAL_ERRORS as exc:
        return await _dead_letter(deps, event, job_try, exc.code, str(exc), type(exc).__name__)
    # The state last seen, and what crmflow itself wrote to the record (workers/own_writes.py): read with the lock,
    # or here in one round trip.
    previous, own_writes = state if state is not None else await load_state(deps.redis, *where)
    notified_at = datetime.fromtimestamp(notified.notified_at_ms / 1000, UTC)
    mentioned = notified.changed_fields
    lagging = looks_lagging(previous, record, notified_at=notified_at, mentioned=mentioned, watched=watched)
    # A sweep's event carries the modified time the CRM listed: a record older than that lags, snapshot or not.
    listed_at = datetime.fromtimestamp(event.notified_at_ms / 1000, UTC)
    lagging = lagging or (event.origin == "sweep" and lags_listing(record, listed_at))
    if lagging and job_try < LAGGING_READ_TRIES:
        raise CrmTransientError("the CRM returned the record as it was before the notified change", code="LAGGING_READ")
    since = datetime.fromtimestamp(event.since_ms / 1000, UTC) if event.since_ms is not None else None
    change = diff(previous, record, watched, inferred_previous=previous_values(record, since), inferred_since=since)
    # Fields crmflow wrote itself (update_record) are not a change any rule may fire on; a retry of the change they
    # were written for sees it as its first try did (workers/own_writes.py).
    module = sources.module_of(event.source, event.module)
    recognised = drop_own_writes(
        change,
        record.fields,
        own_writes,
        before=previous.fields if previous is not None else None,
        system_fields=module.system_fields if module is not None else (),
    )
    change, own = recognised.change, recognised.dropped
    job_notes.note_change(change)
    if change.stale:
        return {"status": "stale", "modified_time": record.modified_time.isoformat()}
    known_previous = previous.fields if previous is not None else previous_values(record, since)
    context = RuleContext.build(
        source=event.source,
        module=event.module,
        operation=event.operation,
        record=recognised.record_as_seen(record.fields),
        previous=known_previous,
        change=change,
        now=record.modified_time,
        start_field=_start_field(event),
    )
    # A change made only of crmflow's own writes fires no rule at all, not even one on every update; nor does the
    # record exactly as crmflow last processed it (a repeated notification, or a change already handled by the
    # job of another notification or a sweep).
    unchanged = previous is not None and record.modified_time == previous.modified_time and not change.fields
    planned = [] if recognised.only_own_writes or unchanged else plan(deps.rules, context, change.fields)
    results = [await _run_action(deps, event, job_try, step, record, change, context) for step in planned]
    await deps.checkpoints.reach("before_snapshot")
    new_state = state_save(*where, snapshot_of(record, watched), recognised.consumed)
    if ending is not None:
        ending.save = new_state
    else:
        await save_state(deps.redis, *where, snapshot_of(record, watched), recognised.consumed)
    return {
        "status": "processed",
        "first_seen": change.first_seen,
        "changed": sorted(change.fields),
        "actions": results,
        **({"own_writes": sorted(own)} if own else {}),
    }


async def _handle_delete(event: ChangeEvent, deps: WorkerDeps, *, job_try: int) -> dict[str, Any]:
    """A deleted record: run the rules that fire on deletes (when.operation), then forget its snapshot.

    The rules see no record and, as `previous`, the last snapshot's fields; each of them changed from its
    value to nothing. Actions that act on the record (NEEDS_RECORD) are skipped: it is gone. The change is
    dated when the delete was notified. Without a snapshot no rule runs: crmflow knows nothing of the record
    (never seen), or has handled its delete already (a second notification of it must do nothing).
    """
    where = (event.source, event.module, event.record_id)
    results: list[dict[str, Any]] = []
    previous = None
    if deps.rules.fires_on(event.source, event.module, "delete"):
        previous = await load_snapshot(deps.redis, *where)
    if previous is not None:
        deleted_at = datetime.fromtimestamp(event.notified_at_ms / 1000, UTC)
        known = dict(previous.fields)
        change = Change(
            fields={name: FieldChange(old=value, new=None) for name, value in known.items() if value is not None},
            since=previous.modified_time,
        )
        job_notes.note_change(change)
        record = Record(event.source, event.module, event.record_id, modified_time=deleted_at, fields={})
        context = RuleContext.build(
            source=event.source,
            module=event.module,
            operation="delete",
            record={},
            previous=known,
            change=change,
            now=deleted_at,
            start_field=_start_field(event),
        )
        planned = plan(deps.rules, context, change.fields)
        for step in planned:
            if step.action.type in NEEDS_RECORD:
                results.append({"rule": step.rule, "action": step.action.type, "status": "skipped"})
                continue
            results.append(await _run_action(deps, event, job_try, step, record, change, context))
        await deps.checkpoints.reach("before_snapshot")
    await delete_snapshot(deps.redis, *where)
    return {"status": "deleted", "actions": results} if results else {"status": "deleted"}


def _start_field(event: ChangeEvent) -> str | None:
    module = sources.module_of(event.source, event.module)
    return module.start_field if module is not None else None


def _change_context(record: Record, change: Change) -> dict[str, Any]:
    """What a dead letter needs to tell what the action was about, even after the record moves on."""
    fields = {name: {"old": moved.old, "new": moved.new} for name, moved in change.fields.items()}
    return {"changed": fields, "record_modified_time": record.modified_time.isoformat()}


@dataclass(frozen=True)
class _Again:
    """An action run again from its dead letter: what the letter kept, and the trace of this run."""

    replay: ActionReplay
    trace: ActionTrace


async def _run_action(
    deps: WorkerDeps,
    event: ChangeEvent,
    job_try: int,
    step: PlannedAction,
    record: Record,
    change: Change,
    context: RuleContext,
    *,
    again: _Again | None = None,
) -> dict[str, Any]:
    names = {"rule": step.rule, "action": step.action.type}
    with log_context(**names):
        return await _run_one_action(deps, event, job_try, step, record, change, context, names, again)


async def _action_given_up(
    deps: WorkerDeps,
    event: ChangeEvent,
    job_try: int,
    step: PlannedAction,
    record: Record,
    change: Change,
    context: RuleContext,
    names: dict[str, str],
    again: _Again | None,
    now: datetime,
    trace: ActionTrace,
    exc: CrmAuthError | CrmNotFoundError | CrmRejectedError | CrmTransientError | ActionNotApplicableError,
) -> dict[str, Any]:
    """The action's own dead letter, from which `crmflow dlq replay` runs just this action again."""
    ACTIONS.labels(step.rule, step.action.type, "dead_lettered").inc()
    replay = capture(step, record, change, now, trace, context) if again is None else again.replay
    await _action_dead_letter(deps, event, job_try, exc.code, str(exc), type(exc).__name__, replay, trace)
    return {**names, "status": "dead_lettered", "error": exc.code}


async def _run_one_action(
    deps: WorkerDeps,
    event: ChangeEvent,
    job_try: int,
    step: PlannedAction,
    record: Record,
    change: Change,
    context: RuleContext,
    names: dict[str, str],
    again: _Again | None,
) -> dict[str, Any]:
    now = deps.clock() if again is None else again.replay.now
    trace = ActionTrace() if again is None else again.trace
    try:
        result = await deps.actions.run(step, record, change, now=now, context=context, trace=trace)
    except FINAL_ERRORS as exc:
        return await _action_given_up(
            deps, event, job_try, step, record, change, context, names, again, now, trace, exc
        )
    except NotifyUnavailableError as exc:
        if job_try < deps.policy.max_tries:
            ACTIONS.labels(step.rule, step.action.type, "failed").inc()
            raise
        # The job's last try: a webhook endpoint that stays down is this action's dead letter, not the job's, so
        # the rule's later actions, the other rules and the record's snapshot go on. Replaying the letter sends
        # the same delivery (the same webhook-id) again.
        message = f"gave up after {job_try} tries; last answer: {exc.message}"
        given_up = NotifyUnavailableError(message, code=exc.code, quoted=exc.quoted)
        return await _action_given_up(
            deps, event, job_try, step, record, change, context, names, again, now, trace, given_up
        )
    except BaseException:
        # Transient failures (and a cancelled job) end the try: the job is retried, or dead-lettered at its end.
        ACTIONS.labels(step.rule, step.action.type, "failed").inc()
        raise
    ACTIONS.labels(step.rule, step.action.type, result.status).inc()
    if result.status == "created" and again is None:
        # A replayed action's lag would be the operator's delay, not the pipeline's: not observed.
        notified_at = datetime.fromtimestamp(event.notified_at_ms / 1000, UTC)
        observe_lag(event.source, event_time(notified_at, record.modified_time), deps.clock())
    # One letter per stretch of a hidden span that no history row covers (actions/zoho_history.py).
    for missed in result.missed.get("uncovered", []):
        message = "an earlier reschedule happened between two fetches; Zoho keeps no time or user for it"
        about = _change_context(record, change) | {"missed": missed, "hidden_span": result.missed["hidden_span"]}
        # Keyed by the stretch, so every job that notices it (a retry, a late duplicate) updates one dead letter.
        anchor = f"missed:{record.id}:{missed['Rescheduled_From']}:{missed['Rescheduled_To']}"
        await _dead_letter(
            deps,
            event,
            job_try,
            MISSED_RESCHEDULE,
            message,
            "MissedReschedule",
            context=about,
            anchor=anchor,
            **names,
        )
    return {**names, "status": result.status, "detail": result.detail}


async def _wait_out_rate_limit(
    deps: WorkerDeps,
    job_id: str,
    job_try: int,
    exc: CrmRateLimitedError,
    enqueued_at: datetime | None,
    give_up: GiveUp,
) -> dict[str, Any]:
    """Retry after the wait the CRM asked for (plus up to 10 % jitter), without spending a try."""
    if exc.retry_after_s is None or _age_s(deps, enqueued_at) > deps.policy.max_age_s:
        return await _retry_or_give_up(deps, job_id, job_try, exc, enqueued_at, give_up)
    key = keys.rate_limited(job_id)
    async with deps.redis.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, keys.RATE_LIMITED_TTL_S)
        await pipe.execute()
    delay = exc.retry_after_s * (1 + 0.1 * deps.jitter())
    logger.warning("rate limited (%s); retrying in %.1fs", loggable(exc), delay)
    raise Retry(defer=delay) from exc


def _age_s(deps: WorkerDeps, enqueued_at: datetime | None) -> float:
    return (deps.clock() - enqueued_at).total_seconds() if enqueued_at is not None else 0.0


async def _take_failed(
    deps: WorkerDeps,
    lock: RecordLock,
    job_id: str,
    runs: int,
    exc: RedisError,
    enqueued_at: datetime | None,
    give_up: GiveUp,
) -> dict[str, Any]:
    """The lock's script failed (Redis full, read-only, gone): retry, counting only real tries.

    The script may have taken the lock before it failed, or its reply may have been lost: the lock is let go
    (only if it is this run's). The runs that were waits are read on their own (a plain GET, which Redis serves
    even when full or read-only); when that fails too, the job is retried without counting a try at all, so a
    job that waited long for its record never dead-letters on one failed round trip.
    """
    with contextlib.suppress(RedisError):
        await lock.release()
    try:
        waited_runs = int(await deps.redis.get(keys.rate_limited(job_id)) or 0)
    except RedisError:
        delay = backoff_s(1, base_s=deps.policy.base_s, cap_s=deps.policy.cap_s, jitter=deps.jitter())
        logger.warning("the record's lock could not be taken (%s); retrying in %.1fs", loggable(exc), delay)
        raise Retry(defer=delay) from exc
    return await _retry_or_give_up(deps, job_id, runs - waited_runs, exc, enqueued_at, give_up)


async def _retry_or_give_up(
    deps: WorkerDeps,
    job_id: str,
    job_try: int,
    exc: CrmTransientError | RedisError,
    enqueued_at: datetime | None,
    give_up: GiveUp,
) -> dict[str, Any]:
    code = exc.code if isinstance(exc, CrmTransientError) else "REDIS"
    age_s = _age_s(deps, enqueued_at)
    if job_try >= deps.policy.max_tries or age_s > deps.policy.max_age_s:
        message = f"gave up after {job_try} tries and {age_s / 60:.0f} min; last error: {exc}"
        return await give_up(job_try, code, message, type(exc).__name__)
    retry_after = exc.retry_after_s if isinstance(exc, CrmTransientError) else None
    policy, jitter = deps.policy, deps.jitter()
    delay = backoff_s(job_try, base_s=policy.base_s, cap_s=policy.cap_s, jitter=jitter, retry_after_s=retry_after)
    logger.warning("try %d failed (%s); retrying in %.1fs", job_try, loggable(exc), delay)
    raise Retry(defer=delay) from exc


async def _dead_letter(
    deps: WorkerDeps, event: ChangeEvent, job_try: int, code: str, message: str, error_class: str, **about: Any
) -> dict[str, Any]:
    """Keep a dead letter for the event; `about` names its rule, action, context and anchor (see _letter)."""
    return await _keep(deps, event, _letter(deps, event, job_try, code, message, error_class, **about))


def _letter(
    deps: WorkerDeps,
    event: ChangeEvent,
    job_try: int,
    code: str,
    message: str,
    error_class: str,
    rule: str | None = None,
    action: str | None = None,
    context: dict[str, Any] | None = None,
    anchor: str | None = None,
) -> DeadLetter:
    now = deps.clock()
    return DeadLetter(
        id=dead_letter_id(anchor or event.job_id(), rule, action),
        source=event.source,
        module=event.module,
        record_id=event.record_id,
        event=event.model_dump(mode="json"),
        rule=rule,
        action=action,
        error_class=error_class,
        error_code=code,
        message=message,
        context=context or {},
        tries=job_try,
        first_failed_at=now,
        last_failed_at=now,
    )


async def _keep(deps: WorkerDeps, event: ChangeEvent, letter: DeadLetter) -> dict[str, Any]:
    await deps.deadletters.add(letter)
    job_notes.note_dead_letter(letter.id)
    code = letter.error_code
    # The letter's message may quote the CRM (personal data): the log names the letter, `crmflow dlq show` shows it.
    logger.error("dead letter %s: %s (%s) on try %d", letter.id, code, letter.error_class, letter.tries)
    return {"status": "dead_lettered", "dead_letter": letter.id, "error": code}


async def _reject_malformed(deps: WorkerDeps, event_data: Any, job_try: int, exc: ValidationError) -> dict[str, Any]:
    now = deps.clock()
    raw = event_data if isinstance(event_data, dict) else {"raw": repr(event_data)}
    letter = DeadLetter(
        id=dead_letter_id(repr(event_data), None, None),
        source=str(raw.get("source", "unknown")),
        module=str(raw.get("module", "unknown")),
        record_id=str(raw.get("record_id", "unknown")),
        event=raw,
        error_class="ValidationError",
        error_code=MALFORMED_JOB,
        message=f"job arguments are not a ChangeEvent: {exc.error_count()} problems",
        tries=job_try,
        first_failed_at=now,
        last_failed_at=now,
    )
    await deps.deadletters.add(letter)
    logger.error("dead letter %s: malformed job arguments", letter.id)
    return {"status": "dead_lettered", "dead_letter": letter.id, "error": MALFORMED_JOB}


# --- Running one failed action again -------------------------------------------------------------------


def _replay_context(replay: ActionReplay) -> dict[str, Any]:
    fields = {name: {"old": moved.old, "new": moved.new} for name, moved in replay.change.fields.items()}
    return {"changed": fields, "record_modified_time": replay.record.modified_time.isoformat()}


async def _action_dead_letter(
    deps: WorkerDeps,
    event: ChangeEvent,
    job_try: int,
    code: str,
    message: str,
    error_class: str,
    replay: ActionReplay,
    trace: ActionTrace | None = None,
) -> dict[str, Any]:
    """A dead letter for one action, holding what running it again takes.

    Its context adds what the action was writing when it stopped (`unwritten`, to log by hand), and the
    letter names the ledger entries still pending, so they go when it is purged. Nothing is pending after
    the CRM refused a write: the ledger dropped that entry already (Ledger.apply_once).
    """
    context = _replay_context(replay)
    pending: list[str] = []
    if trace is not None:
        if trace.ledger.unfinished:
            context["unwritten"] = list(trace.ledger.unfinished.values())
        pending = await deps.actions.ledger.pending_among(trace.ledger.keys)
    letter = _letter(deps, event, job_try, code, message, error_class, replay.rule, replay.type, context)
    return await _keep(deps, event, letter.model_copy(update={"action_replay": replay, "ledger_keys": tuple(pending)}))


async def replay_action(ctx: dict[str, Any], event_data: Any, replay_data: Any) -> dict[str, Any]:
    """The arq job `crmflow dlq replay` queues for an action's dead letter: run just that action again.

    The action runs as its rule had it when it failed, on the change and the record's fields the letter
    kept (no fetch, no diff, no snapshot: the job that failed went on and stored the record as seen), under
    the record's lock and with the same ledger keys as the failed run, so that an effect applied meanwhile
    is not applied again. A final failure writes a new letter for the replayed event; transient ones are
    retried like process_change's, ending in such a letter.
    """
    return await _counted(ctx, event_data, lambda notes: _replay_action(ctx, event_data, replay_data, notes))


async def _replay_action(
    ctx: dict[str, Any], event_data: Any, replay_data: Any, notes: job_notes.JobNotes
) -> dict[str, Any]:
    deps: WorkerDeps = ctx["deps"]
    runs: int = ctx.get("job_try", 1)
    try:
        event = ChangeEvent.model_validate(event_data)
        replay = ActionReplay.model_validate(replay_data)
    except ValidationError as exc:
        return await _reject_malformed_replay(deps, event_data, replay_data, runs, exc)
    job_id = str(ctx.get("job_id") or action_job_id(event, replay.rule, replay.type))
    with _job_context(event, job_id), log_context(rule=replay.rule, action=replay.type):
        return await _replay(deps, ctx, event, replay, job_id, runs, notes)


async def _replay(
    deps: WorkerDeps,
    ctx: dict[str, Any],
    event: ChangeEvent,
    replay: ActionReplay,
    job_id: str,
    runs: int,
    notes: job_notes.JobNotes,
) -> dict[str, Any]:
    trace = ActionTrace()

    async def give_up(job_try: int, code: str, message: str, error_class: str) -> dict[str, Any]:
        return await _action_dead_letter(deps, event, job_try, code, message, error_class, replay, trace)

    async def again() -> dict[str, Any]:
        try:
            step, record, change = rebuild(replay)
        except ActionNotApplicableError as exc:
            return await give_up(runs, exc.code, str(exc), type(exc).__name__)
        context = context_of(replay, record)

        async def work(job_try: int, _state: State | None) -> dict[str, Any]:
            again = _Again(replay, trace)
            outcome = await _run_action(deps, event, job_try, step, record, change, context, again=again)
            return {"status": "replayed", "actions": [outcome]}

        return await _guarded(deps, event, job_id, runs, ctx.get("enqueue_time"), work, give_up, ending=ending)

    job_notes.note_change(replay.change)
    ending = JobEnd()
    result = await again()
    return await _end(deps, ctx, "replay_action", job_id, event, result, notes, ending, give_up)


async def _reject_malformed_replay(
    deps: WorkerDeps, event_data: Any, replay_data: Any, job_try: int, exc: ValidationError
) -> dict[str, Any]:
    """A replay_action job whose arguments cannot be read: a MALFORMED_JOB letter keeping them as they are."""
    try:
        event = ChangeEvent.model_validate(event_data)
    except ValidationError:
        return await _reject_malformed(deps, event_data, job_try, exc)
    raw = replay_data if isinstance(replay_data, dict) else {"raw": repr(replay_data)}
    names = {name: str(raw[key]) if raw.get(key) else None for name, key in (("rule", "rule"), ("action", "type"))}
    message = f"job arguments are not an action to replay: {exc.error_count()} problems"
    context = {"action_replay": raw}
    return await _dead_letter(deps, event, job_try, MALFORMED_JOB, message, "ValidationError", context=context, **names)
