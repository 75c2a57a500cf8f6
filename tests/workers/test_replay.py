"""Replay decisions, in-process on real Redis: which dead letters can be queued again, and as what."""

from __future__ import annotations

from arq.connections import ArqRedis

from tests.test_dlq import letter, queued_jobs, refused
from workers.contract import ChangeEvent
from workers.deadletters import MALFORMED_JOB, MISSED_RESCHEDULE, DeadLetter, DeadLetters
from workers.replay import Outcome, replay_event, replay_letter, unreplayable

STAMP_MS = 1_764_000_000_000


def test_a_job_that_ran_out_of_tries_can_be_replayed() -> None:
    assert unreplayable(letter()) is None


def test_letters_a_replay_cannot_redo_say_why() -> None:
    malformed = letter().model_copy(update={"event": {"record_id": 42}, "error_code": MALFORMED_JOB})
    missed = letter(error_code=MISSED_RESCHEDULE)

    assert (unreplayable(malformed) or "").startswith("MALFORMED_JOB: its job's arguments are not a ChangeEvent")
    assert (unreplayable(missed) or "").startswith("MISSED_RESCHEDULE: Zoho keeps no time or user")
    assert (unreplayable(refused()) or "").startswith("NOT_ALLOWED: its job went on after this action failed")


def test_a_replayed_event_is_the_letters_event_with_a_replay_number_never_used_before() -> None:
    failed = letter()
    once = replay_event(failed, STAMP_MS)
    # A replay whose own job failed again, replayed with a clock that went backwards.
    twice = replay_event(failed.model_copy(update={"event": once.model_dump(mode="json")}), STAMP_MS - 5)

    original = ChangeEvent.model_validate(failed.event)
    assert once.model_dump(exclude={"replay"}) == original.model_dump(exclude={"replay"})
    assert once.replay == STAMP_MS
    assert twice.replay == STAMP_MS + 1
    assert len({ChangeEvent.model_validate(failed.event).job_id(), once.job_id(), twice.job_id()}) == 3


async def test_replay_queues_the_event_then_removes_the_letter(redis: ArqRedis) -> None:
    store = DeadLetters(redis)
    failed = letter()
    await store.add(failed)

    outcome = await replay_letter(redis, store, failed, stamp_ms=STAMP_MS)

    event = replay_event(failed, STAMP_MS)
    assert outcome == Outcome(failed.id, job_id=event.job_id())
    assert await queued_jobs(redis) == {event.job_id(): event.model_dump(mode="json")}
    assert await store.get(failed.id) is None


async def test_a_letter_that_cannot_be_replayed_stays_and_nothing_is_queued(redis: ArqRedis) -> None:
    store = DeadLetters(redis)
    kept: DeadLetter = refused()
    await store.add(kept)

    outcome = await replay_letter(redis, store, kept, stamp_ms=STAMP_MS)

    assert outcome.job_id is None and outcome.reason == unreplayable(kept)
    assert await queued_jobs(redis) == {}
    assert await store.get(kept.id) == kept
