"""Replay decisions, in-process on real Redis: which dead letters can be queued again, and as what.

How an action letter keeps its action's inputs (capture) and how the replay job gets them back (rebuild)
is here too; the replay itself, with a worker and the sandbox, is in test_replay_action.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from arq.connections import ArqRedis
from arq.jobs import Job

from tests.test_dlq import letter, queued_jobs, refused
from workers.actions.dispatch import ActionTrace, traced, traced_context
from workers.contract import QUEUE_NAME, REPLAY_ACTION, ChangeEvent, action_job_id, loads
from workers.deadletters import MALFORMED_JOB, MISSED_RESCHEDULE, ActionReplay, DeadLetter, DeadLetters
from workers.diff import Change, FieldChange
from workers.errors import ActionNotApplicableError
from workers.record import HistoryEntry, Record
from workers.replay import Outcome, capture, context_of, rebuild, replay_event, replay_letter, unreplayable
from workers.rules.context import RuleContext
from workers.rules.evaluate import PlannedAction
from workers.rules.model import ActionSpec, LogRescheduleHistoryParams, NotifyParams
from workers.rules.templates import render

STAMP_MS = 1_764_000_000_000
AT = datetime(2026, 3, 2, 9, 15, 30, tzinfo=UTC)
RECORD = Record(
    source="hubspot",
    module="appointments",
    id="51204030001",
    modified_time=AT,
    fields={"hs_appointment_name": "AC Repair - James", "hs_appointment_start": "2026-03-06T10:00:00Z", "x": 1},
    history={"hs_appointment_start": (HistoryEntry("2026-03-06T10:00:00Z", AT, "CRM_UI", "userId:7", "7"),)},
)
CHANGE = Change(fields={"hs_appointment_start": FieldChange("2026-03-04T10:00:00Z", "2026-03-06T10:00:00Z")}, since=AT)
STEP = PlannedAction(
    rule="hubspot-log-reschedules",
    index=0,
    action=ActionSpec(type="log_reschedule_history", params=LogRescheduleHistoryParams(reason="By Team")),
)


def kept_action(**reads: Any) -> ActionReplay:
    """What a letter keeps of STEP on RECORD after the action read `hs_appointment_name`, a missing field and
    the start's history (or what `reads` says)."""
    trace = ActionTrace()
    seen = traced(RECORD, trace)
    for name in reads.get("fields", ("hs_appointment_name", "hs_missing")):
        seen.fields.get(name)
    seen.history.get("hs_appointment_start")
    return capture(STEP, RECORD, CHANGE, AT, trace)


def action_letter() -> DeadLetter:
    return refused(action_replay=kept_action())


def test_a_job_that_ran_out_of_tries_can_be_replayed() -> None:
    assert unreplayable(letter()) is None


def test_letters_a_replay_cannot_redo_say_why() -> None:
    malformed = letter().model_copy(update={"event": {"record_id": 42}, "error_code": MALFORMED_JOB})
    missed = letter(error_code=MISSED_RESCHEDULE)

    assert (unreplayable(malformed) or "").startswith("MALFORMED_JOB: its job's arguments are not a ChangeEvent")
    assert (unreplayable(missed) or "").startswith("MISSED_RESCHEDULE: Zoho keeps no time or user")
    # An action letter from a worker that did not yet keep the action's inputs cannot be run again.
    assert (unreplayable(refused()) or "").startswith("NOT_ALLOWED: written by a worker that did not keep what")


def test_an_action_letter_that_keeps_its_action_can_be_replayed() -> None:
    assert unreplayable(action_letter()) is None
    assert (unreplayable(action_letter().model_copy(update={"error_code": MALFORMED_JOB})) or "").startswith(
        "MALFORMED_JOB: "
    )


def test_a_replayed_event_is_the_letters_event_with_a_replay_number_never_used_before() -> None:
    failed = letter()
    once = replay_event(failed, STAMP_MS)
    # A replay whose own job failed again, replayed with a clock that went backwards.
    twice = replay_event(failed.model_copy(update={"event": once.model_dump(mode="json")}), STAMP_MS - 5)

    original = ChangeEvent.model_validate(failed.event)
    assert once.model_dump(exclude={"replay", "replay_of"}) == original.model_dump(exclude={"replay", "replay_of"})
    assert once.replay == STAMP_MS
    assert once.replay_of == failed.id  # what the replay's event log entry links to
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


async def test_an_action_letter_is_queued_as_a_replay_of_just_that_action(redis: ArqRedis) -> None:
    store = DeadLetters(redis)
    failed = action_letter()
    await store.add(failed)

    outcome = await replay_letter(redis, store, failed, stamp_ms=STAMP_MS)

    event = replay_event(failed, STAMP_MS)
    job_id = action_job_id(event, "hubspot-log-reschedules", "log_reschedule_history")
    assert outcome == Outcome(failed.id, job_id=job_id)
    assert job_id == f"{event.job_id()}:hubspot-log-reschedules:log_reschedule_history"
    assert await redis.zrange(QUEUE_NAME, 0, -1) == [job_id.encode()]
    info = await Job(job_id, redis, _deserializer=loads).info()
    assert info is not None and info.function == REPLAY_ACTION
    assert failed.action_replay is not None
    assert list(info.args) == [event.model_dump(mode="json"), failed.action_replay.model_dump(mode="json")]
    assert await store.get(failed.id) is None


# --- capture and rebuild --------------------------------------------------------------------------------


def test_a_trace_notes_what_the_action_read() -> None:
    trace = ActionTrace()
    seen = traced(RECORD, trace)

    seen.fields.get("hs_appointment_name")
    assert "hs_missing" not in seen.fields
    seen.history.get("hs_appointment_start", ())

    assert (trace.fields.names, trace.fields.complete) == ({"hs_appointment_name", "hs_missing"}, False)
    assert trace.history.names == {"hs_appointment_start"}
    dict(seen.fields)
    assert (trace.fields.names, trace.fields.complete) == (set(RECORD.fields) | {"hs_missing"}, True)


def test_an_action_letter_keeps_only_what_the_action_read_and_gives_it_back() -> None:
    kept = ActionReplay.model_validate_json(kept_action().model_dump_json())  # as stored in Redis

    step, record, change = rebuild(kept)

    assert kept.record.fields.values == {"hs_appointment_name": "AC Repair - James"}
    assert kept.record.fields.absent == ("hs_missing",)
    assert (step, change, kept.now) == (STEP, CHANGE, AT)
    assert (record.source, record.module, record.id, record.modified_time) == (
        RECORD.source,
        RECORD.module,
        RECORD.id,
        RECORD.modified_time,
    )
    assert record.fields.get("hs_appointment_name") == "AC Repair - James"
    assert record.fields.get("hs_missing") is None and "hs_missing" not in record.fields
    assert record.history.get("hs_appointment_start") == RECORD.history["hs_appointment_start"]


def test_a_replayed_action_cannot_read_what_the_letter_does_not_keep() -> None:
    # It would run on values the failed run never saw: the replay stops with a new letter instead.
    _, record, _ = rebuild(kept_action())

    with pytest.raises(ActionNotApplicableError, match="does not keep field 'x'"):
        record.fields.get("x")
    with pytest.raises(ActionNotApplicableError, match="does not keep every field"):
        list(record.fields)
    with pytest.raises(ActionNotApplicableError, match="does not keep history of 'other'"):
        record.history.get("other")


def test_an_action_that_read_every_field_keeps_every_field() -> None:
    trace = ActionTrace()
    dict(traced(RECORD, trace).fields)

    _, record, _ = rebuild(capture(STEP, RECORD, CHANGE, AT, trace))

    assert dict(record.fields) == dict(RECORD.fields)


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"type": "send_email"}, "this worker knows no action 'send_email'"),
        ({"params": {"reason": "Because"}}, "the kept parameters of log_reschedule_history are not valid any more"),
    ],
    ids=["unknown-action", "invalid-params"],
)
def test_an_action_this_worker_cannot_rebuild_is_not_applicable(update: dict[str, Any], message: str) -> None:
    with pytest.raises(ActionNotApplicableError, match=message):
        rebuild(kept_action().model_copy(update=update))


# --- Templates: what a letter keeps of the rule context ---------------------------------------------------

NOTIFY = PlannedAction(
    rule="tell",
    index=1,
    action=ActionSpec(
        type="notify",
        params=NotifyParams(
            url="https://hooks.example.com/x",
            text="{{ record.hs_appointment_name }} was {{ previous.hs_appointment_status }} ({{ rule.name }})",
        ),
    ),
)


def test_a_letter_keeps_what_the_templates_read_of_the_context_and_gives_it_back() -> None:
    context = RuleContext.build(
        source="hubspot",
        module="appointments",
        operation="update",
        record=RECORD.fields,
        previous={"hs_appointment_status": "SCHEDULED", "hs_appointment_location": "12 Elm Street"},
        change=CHANGE,
        now=AT,
        start_field="hs_appointment_start",
    )
    trace = ActionTrace()
    seen = traced(RECORD, trace)
    first = traced_context(context.for_rule("tell").with_record(seen.fields), trace)
    params = NOTIFY.action.params
    assert isinstance(params, NotifyParams) and params.text is not None
    text = render(params.text, first.variables())

    kept = ActionReplay.model_validate_json(capture(NOTIFY, RECORD, CHANGE, AT, trace, first).model_dump_json())

    assert text == "AC Repair - James was SCHEDULED (tell)"
    assert kept.record.fields.values == {"hs_appointment_name": "AC Repair - James"}
    assert kept.previous.values == {"hs_appointment_status": "SCHEDULED"}  # not the location: never read
    assert (kept.operation, kept.changed_at) == ("update", AT)
    step, record, change = rebuild(kept)
    again = context_of(kept, record)
    assert (step, change) == (NOTIFY, CHANGE)
    assert render(params.text, again.variables()) == text
    assert again.reschedule == context.reschedule
    with pytest.raises(ActionNotApplicableError, match="previous value of 'hs_appointment_location'"):
        render("{{ previous.hs_appointment_location }}", again.variables())
