"""workers/status.py: the status read from real Redis, written by the real queue, heartbeat, letters and duties."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from arq.connections import ArqRedis

from tests.workers.test_deadletters import letter
from workers import keys
from workers.channel_upkeep import DUTY_NAME, ChannelFailures
from workers.channels import Outcome
from workers.contract import ChangeEvent
from workers.deadletters import DeadLetters
from workers.duties import Duty, DutyIncomplete, DutyRunner
from workers.heartbeat import Heartbeat, WorkerFacts
from workers.queue import enqueue_events
from workers.status import QueueState, by_count, collect_status, duty_run, queue_state, sweep_states
from workers.sweep import advance_cursor

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def event(record_id: str) -> ChangeEvent:
    return ChangeEvent(
        source="zoho", module="Appointments__s", record_id=record_id, operation="update", notified_at_ms=1
    )


def test_queue_state_ages_the_oldest_due_job_and_ignores_deferred_ones() -> None:
    now_ms = NOW.timestamp() * 1000
    assert queue_state(3, 2, now_ms - 1500, NOW) == QueueState(depth=3, due=2, oldest_age_s=1.5)
    assert queue_state(1, 0, now_ms + 60_000, NOW) == QueueState(depth=1, due=0, oldest_age_s=None)
    assert queue_state(0, 0, None, NOW) == QueueState(depth=0, due=0, oldest_age_s=None)


def test_duty_run_reads_the_recorded_hash_and_tolerates_gaps() -> None:
    recorded = {"state": "ok", "owner": "w1", "started_at": str(NOW.timestamp()), "finished_at": "x", "summary": "s"}
    run = duty_run("sweep:zoho", recorded)
    assert run is not None
    assert (run.state, run.owner, run.started_at, run.finished_at, run.summary, run.error) == (
        "ok",
        "w1",
        NOW,
        None,
        "s",
        "",
    )
    assert duty_run("sweep:zoho", {}) is None


def test_sweep_states_join_runs_and_cursors_by_source() -> None:
    run = duty_run("sweep:hubspot", {"state": "failed", "error": "boom"})
    assert run is not None
    states = sweep_states({"sweep:hubspot": run, "zoho-channels": run}, {"zoho": {"B": NOW, "A": NOW}})
    assert [(s.source, s.last_run, list(s.cursors)) for s in states] == [
        ("hubspot", run, []),
        ("zoho", None, ["A", "B"]),
    ]


def test_by_count_sums_and_orders_most_first() -> None:
    assert list(by_count([("B", 1), ("A", 2), ("C", 2), ("B", 2)]).items()) == [("B", 3), ("A", 2), ("C", 2)]


async def test_an_empty_database_has_an_empty_status(redis: ArqRedis) -> None:
    status = await collect_status(redis, NOW, sources=("zoho", "hubspot"))

    assert status.queue == QueueState(depth=0, due=0, oldest_age_s=None)
    assert (status.workers, dict(status.deadletters), status.deadletters_total) == ((), {}, 0)
    assert status.last_notifications == {"hubspot": None, "zoho": None}
    assert (status.channels.upkeep, dict(status.channels.failures), status.sweeps) == (None, {}, ())
    assert status.to_json()["queue"] == {"depth": 0, "due": 0, "oldest_age_s": None}


async def test_the_status_reads_what_the_queue_heartbeats_letters_and_duties_wrote(redis: ArqRedis) -> None:
    await enqueue_events(redis, [event("1"), event("2")])
    now = datetime.now(UTC) + timedelta(seconds=30)
    facts = WorkerFacts("host-a:41:ab", "host-a", 41, now - timedelta(hours=1), "0.1.0", ("zoho",), now)
    await Heartbeat(redis, facts, clock=lambda: now).beat()
    letters = DeadLetters(redis, clock=lambda: now)
    for name, code in [("a", "NOT_ALLOWED"), ("b", "HTTP_500"), ("c", "NOT_ALLOWED")]:
        await letters.add(letter(name, last_failed_at=now, first_failed_at=now, error_code=code))
    old = letter("d", last_failed_at=now - timedelta(days=15), first_failed_at=now - timedelta(days=15))
    # Past the retention: still indexed until a trim, but no longer kept.
    await redis.set(keys.deadletter(old.id), old.model_dump_json())
    await redis.zadd(keys.DEADLETTER_INDEX, {old.id: old.last_failed_at.timestamp()})
    await redis.set(keys.last_notification("hubspot"), int(now.timestamp() * 1000) - 2000)

    async def channels() -> str:
        await ChannelFailures(redis).record([Outcome("1000000068001", "not renewed", error="HTTP 500")], now, by="w1")
        raise DutyIncomplete("1000000068001 not renewed: HTTP 500")

    async def sweep() -> str:
        await advance_cursor(redis, "zoho", "Appointments__s", now - timedelta(minutes=1))
        return "queued 0"

    runner = DutyRunner(redis, [], owner="w1", clock=time.time)
    assert await runner.run_once(Duty(DUTY_NAME, 60, channels))
    assert await runner.run_once(Duty("sweep:zoho", 60, sweep))

    status = await collect_status(redis, now, sources=("zoho",))

    assert status.queue.depth == status.queue.due == 2
    assert status.queue.oldest_age_s is not None and 29 <= status.queue.oldest_age_s <= 60
    assert [w.worker_id for w in status.workers] == ["host-a:41:ab"]
    assert dict(status.deadletters) == {"NOT_ALLOWED": 2, "HTTP_500": 1}
    assert status.last_notifications == {
        "hubspot": datetime.fromtimestamp((int(now.timestamp() * 1000) - 2000) / 1000, UTC),
        "zoho": None,
    }
    upkeep = status.channels.upkeep
    assert upkeep is not None and (upkeep.state, upkeep.owner, upkeep.error) == (
        "failed",
        "w1",
        "DutyIncomplete: 1000000068001 not renewed: HTTP 500",
    )
    assert list(status.channels.failures) == ["1000000068001"]
    [swept] = status.sweeps
    assert swept.source == "zoho" and swept.last_run is not None and swept.last_run.state == "ok"
    assert list(swept.cursors) == ["Appointments__s"]
    assert abs(swept.cursors["Appointments__s"] - (now - timedelta(minutes=1))) < timedelta(milliseconds=2)
    shown = status.to_json()
    assert shown["deadletters"] == {"total": 3, "by_error": {"NOT_ALLOWED": 2, "HTTP_500": 1}}
    assert shown["workers"][0]["pid"] == 41 and shown["sweeps"][0]["last_run"]["summary"] == "queued 0"


async def test_unreadable_letters_are_counted_apart_and_vanished_ones_not_at_all(redis: ArqRedis) -> None:
    await redis.zadd(keys.DEADLETTER_INDEX, {"bad": NOW.timestamp(), "gone": NOW.timestamp()})
    await redis.set(keys.deadletter("bad"), b"{not json")

    status = await collect_status(redis, NOW)

    assert dict(status.deadletters) == {"?": 1}
