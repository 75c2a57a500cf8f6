"""Jobs: process one ChangeEvent (fetch → diff → rules → actions) and turn failures into retries or dead letters."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from arq import Retry
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from workers.actions.dispatch import Actions
from workers.backoff import backoff_s
from workers.contract import ChangeEvent
from workers.crm.zoho import ZohoClient
from workers.deadletters import DeadLetter, DeadLetters, dead_letter_id
from workers.diff import diff, snapshot_of
from workers.errors import (
    ActionNotApplicableError,
    CrmAuthError,
    CrmNotFoundError,
    CrmRejectedError,
    CrmTransientError,
)
from workers.fetch import fetch_record, previous_values
from workers.record import Record
from workers.rules.evaluate import PlannedAction, evaluate
from workers.rules.model import RuleSet
from workers.snapshots import delete_snapshot, load_snapshot, save_snapshot

logger = logging.getLogger("crmflow.jobs")

# Failures that retrying cannot fix: recorded as dead letters at once.
FINAL_ERRORS = (CrmAuthError, CrmNotFoundError, CrmRejectedError, ActionNotApplicableError)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently transient failures are retried before a dead letter."""

    max_tries: int
    base_s: float
    cap_s: float


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class WorkerDeps:
    """Everything a job uses, built once per worker process at start-up."""

    redis: Redis
    rules: RuleSet
    zoho: ZohoClient
    actions: Actions
    deadletters: DeadLetters
    policy: RetryPolicy
    lock_timeout_s: float
    clock: Callable[[], datetime] = field(default=utcnow)
    jitter: Callable[[], float] = field(default=random.random)


def lock_key(event: ChangeEvent) -> str:
    return f"crmflow:lock:{event.source}:{event.module}:{event.record_id}"


async def process_change(ctx: dict[str, Any], event_data: Any) -> dict[str, Any]:
    """The arq job: handle one change under the record's lock; retry transient failures with backoff."""
    deps: WorkerDeps = ctx["deps"]
    job_try: int = ctx.get("job_try", 1)
    try:
        event = ChangeEvent.model_validate(event_data)
    except ValidationError as exc:
        return await _reject_malformed(deps, event_data, job_try, exc)
    if job_try > deps.policy.max_tries:
        # Only reached when tries ended without an answer: worker killed or job timed out every time.
        message = f"started {job_try - 1} times without finishing (worker crashes or job timeouts)"
        return await _dead_letter(deps, event, job_try, "TOO_MANY_TRIES", message, "CrashLoop")
    try:
        # sleep: how often a job waiting for the lock retries (redis-py's default is 0.1 s).
        lock = deps.redis.lock(lock_key(event), timeout=deps.lock_timeout_s, blocking_timeout=10, sleep=0.01)
        async with lock:
            return await handle_change(event, deps, job_try=job_try)
    except (CrmTransientError, RedisError) as exc:
        return await _retry_or_give_up(deps, event, job_try, exc)


async def handle_change(event: ChangeEvent, deps: WorkerDeps, *, job_try: int) -> dict[str, Any]:
    """fetch → diff → rules → actions → remember the new state. The caller holds the record's lock."""
    where = (event.source, event.module, event.record_id)
    if event.operation == "delete":
        await delete_snapshot(deps.redis, *where)
        return {"status": "deleted"}
    try:
        record = await fetch_record(event, deps.zoho)
    except CrmNotFoundError:
        await delete_snapshot(deps.redis, *where)
        return {"status": "gone"}
    except FINAL_ERRORS as exc:
        return await _dead_letter(deps, event, job_try, exc.code, str(exc), type(exc).__name__)
    watched = deps.rules.watched_fields(event.source, event.module)
    previous = await load_snapshot(deps.redis, *where)
    change = diff(previous, record, watched, inferred_previous=previous_values(record))
    if change.stale:
        return {"status": "stale", "modified_time": record.modified_time.isoformat()}
    planned = evaluate(
        deps.rules, source=event.source, module=event.module, changed=change.fields, record=record.fields
    )
    results = [await _run_action(deps, event, job_try, step, record, change) for step in planned]
    await save_snapshot(deps.redis, *where, snapshot_of(record, watched))
    return {
        "status": "processed",
        "first_seen": change.first_seen,
        "changed": sorted(change.fields),
        "actions": results,
    }


async def _run_action(
    deps: WorkerDeps, event: ChangeEvent, job_try: int, step: PlannedAction, record: Record, change: Any
) -> dict[str, Any]:
    summary: dict[str, Any] = {"rule": step.rule, "action": step.action.type}
    try:
        result = await deps.actions.run(step, record, change, now=deps.clock())
    except FINAL_ERRORS as exc:
        await _dead_letter(
            deps, event, job_try, exc.code, str(exc), type(exc).__name__, rule=step.rule, action=step.action.type
        )
        return {**summary, "status": "dead_lettered", "error": exc.code}
    return {**summary, "status": result.status, "detail": result.detail}


async def _retry_or_give_up(
    deps: WorkerDeps, event: ChangeEvent, job_try: int, exc: CrmTransientError | RedisError
) -> dict[str, Any]:
    code = exc.code if isinstance(exc, CrmTransientError) else "REDIS"
    if job_try >= deps.policy.max_tries:
        message = f"gave up after {job_try} tries; last error: {exc}"
        return await _dead_letter(deps, event, job_try, code, message, type(exc).__name__)
    retry_after = exc.retry_after_s if isinstance(exc, CrmTransientError) else None
    policy = deps.policy
    jitter = deps.jitter()
    delay = backoff_s(job_try, base_s=policy.base_s, cap_s=policy.cap_s, jitter=jitter, retry_after_s=retry_after)
    logger.warning("%s try %d failed (%s); retrying in %.1fs", event.job_id(), job_try, exc, delay)
    raise Retry(defer=delay) from exc


async def _dead_letter(
    deps: WorkerDeps,
    event: ChangeEvent,
    job_try: int,
    code: str,
    message: str,
    error_class: str,
    *,
    rule: str | None = None,
    action: str | None = None,
) -> dict[str, Any]:
    now = deps.clock()
    letter = DeadLetter(
        id=dead_letter_id(event.job_id(), rule, action),
        source=event.source,
        module=event.module,
        record_id=event.record_id,
        event=event.model_dump(mode="json"),
        rule=rule,
        action=action,
        error_class=error_class,
        error_code=code,
        message=message,
        tries=job_try,
        first_failed_at=now,
        last_failed_at=now,
    )
    await deps.deadletters.add(letter)
    logger.error("dead letter %s: %s rule=%s action=%s: %s", letter.id, event.job_id(), rule, action, message)
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
        error_code="MALFORMED_JOB",
        message=f"job arguments are not a ChangeEvent: {exc.error_count()} problems",
        tries=job_try,
        first_failed_at=now,
        last_failed_at=now,
    )
    await deps.deadletters.add(letter)
    logger.error("dead letter %s: malformed job arguments", letter.id)
    return {"status": "dead_lettered", "dead_letter": letter.id, "error": "MALFORMED_JOB"}
