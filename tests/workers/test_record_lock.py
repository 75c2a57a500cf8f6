"""The record lock: taken in one round trip with the job's waits, never spun on; a busy lock defers the job
without spending a try or holding a worker's slot (real Redis, a real arq worker, the in-process sandbox)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from arq.connections import ArqRedis

from sandbox.app import create_app as create_sandbox
from sandbox.config import SandboxConfig
from tests.workers.harness import enqueue_change, job_result, run_worker
from tests.workers.test_jobs import NEVER_RESCHEDULED, RESCHEDULED_ONCE, Zoho, notify, soon
from workers import keys
from workers.contract import ChangeEvent
from workers.eventlog import LogWrite
from workers.jobs import LOCK_WAIT_RUNS
from workers.own_writes import StateSave
from workers.record_lock import FIRST_DEFER_S, MAX_DEFER_S, RecordLock, defer_s

LOCK = keys.lock("zoho", "Appointments__s", NEVER_RESCHEDULED)


@pytest.fixture
async def zoho() -> AsyncIterator[Zoho]:
    app = create_sandbox(SandboxConfig())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox") as http:
        yield Zoho(http)


def test_deferrals_start_short_and_grow_to_a_cap() -> None:
    assert defer_s(0, 0) == FIRST_DEFER_S
    assert defer_s(0.5, 0) == 0.25
    assert defer_s(600, 0) == MAX_DEFER_S
    assert defer_s(600, 0.99) <= MAX_DEFER_S * 1.1
    assert [defer_s(waited, 0) for waited in (0, 0.1, 0.4, 1, 3)] == sorted(defer_s(w, 0) for w in (0, 0.1, 0.4, 1, 3))


async def test_a_busy_lock_is_a_wait_until_the_lock_timeout_then_a_try(redis: ArqRedis) -> None:
    holder = RecordLock(redis, "crmflow:lock:t", "job-a", timeout_s=40, max_wait_s=40)
    waiter = RecordLock(redis, "crmflow:lock:t", "job-b", timeout_s=40, max_wait_s=40)
    assert (await holder.take(1_000)).taken

    first = await waiter.take(2_000)
    later = await waiter.take(12_000)
    assert (first.taken, first.waited_runs, first.waiting_s) == (False, 0, 0)
    assert (later.taken, later.waited_runs, later.waiting_s) == (False, 1, 10)
    assert first.counted_as_wait(40) and later.counted_as_wait(40)
    beyond = await waiter.take(42_001)
    assert not beyond.counted_as_wait(40)
    assert int(await redis.get(keys.rate_limited("job-b"))) == 2  # the run beyond the bound is a try

    assert not await waiter.release()  # not its lock
    assert await holder.release()
    taken = await waiter.take(43_000)
    assert (taken.taken, taken.waited_runs) == (True, 2)
    assert await redis.exists(keys.lock_wait("job-b")) == 0
    assert 0 < await redis.pttl("crmflow:lock:t") <= 40_000


async def test_a_run_ends_with_its_state_release_and_log_entry_in_one_script(redis: ArqRedis) -> None:
    lock = RecordLock(redis, "crmflow:lock:t", "job-a", timeout_s=40, max_wait_s=40)
    assert (await lock.take(1_000)).taken
    await redis.hset("crmflow:test:own", mapping={"A": "1", "B": "2"})  # type: ignore[misc]
    save = StateSave("crmflow:test:snap", b"snapshot", "crmflow:test:own", ("A", "1", "B", "written again since"))
    entry = LogWrite(("crmflow:test:events", "crmflow:test:events:r"), ('{"e": 1}', 100, 60_000))

    assert await lock.end(save, entry)

    assert await redis.exists("crmflow:lock:t") == 0
    assert await redis.get("crmflow:test:snap") == b"snapshot"
    assert 0 < await redis.ttl("crmflow:test:snap") <= keys.SNAPSHOT_TTL_S
    assert await redis.hgetall("crmflow:test:own") == {b"B": b"2"}  # type: ignore[misc]  # only what still held
    assert await redis.xlen("crmflow:test:events") == 1
    assert await redis.zcard("crmflow:test:events:r") == 1


async def test_a_run_whose_lock_timed_out_saves_nothing_and_leaves_the_new_holder_s_lock(redis: ArqRedis) -> None:
    late = RecordLock(redis, "crmflow:lock:t", "job-a", timeout_s=40, max_wait_s=40)
    holder = RecordLock(redis, "crmflow:lock:t", "job-b", timeout_s=40, max_wait_s=40)
    assert (await holder.take(1_000)).taken  # job-a's lock timed out and job-b took it

    assert not await late.end(StateSave("crmflow:test:snap", b"s", "crmflow:test:own", ()), None)
    assert await redis.get("crmflow:test:snap") is None  # job-b may save a newer state: job-a's older one waits
    assert await redis.exists("crmflow:lock:t") == 1
    assert await holder.end(None, None)  # nothing to save or log: just the release
    assert await redis.exists("crmflow:lock:t") == 0


async def test_an_end_sent_again_after_its_reply_was_lost_writes_nothing_more(redis: ArqRedis) -> None:
    # job-a's end ran but its reply was lost; meanwhile job-b took the lock and saved a newer state; then
    # job-a's end is sent again (workers/main.py's OutageRetry): it must not put the older snapshot back.
    first = RecordLock(redis, "crmflow:lock:t", "job-a", timeout_s=40, max_wait_s=40)
    second = RecordLock(redis, "crmflow:lock:t", "job-b", timeout_s=40, max_wait_s=40)
    older = StateSave("crmflow:test:snap", b"older", "crmflow:test:own", ())
    assert (await first.take(1_000)).taken
    assert await first.end(older, None)
    assert (await second.take(2_000)).taken
    assert await second.end(StateSave("crmflow:test:snap", b"newer", "crmflow:test:own", ()), None)
    assert not await first.end(older, None)
    assert await redis.get("crmflow:test:snap") == b"newer"


async def test_a_job_whose_record_is_locked_is_deferred_and_frees_its_slot(
    redis: ArqRedis, redis_url: str, zoho: Zoho
) -> None:
    # Another job holds the record's lock (as a job of another worker would): with a single slot, the job of
    # another record still runs, and the waiting job spends no try (WORKER_MAX_TRIES=1) and runs once it is free.
    await redis.set(LOCK, "another job", px=30_000)
    waiting = await notify(redis, NEVER_RESCHEDULED, "insert")
    other = await enqueue_change(redis, "zoho", "Appointments__s", RESCHEDULED_ONCE, operation="insert")

    async def other_done() -> bool:
        return bool(await redis.exists(keys.ARQ_RESULT_PREFIX + other.job_id()))

    await run_worker(redis_url, zoho.http, until=other_done, WORKER_MAX_JOBS=1, WORKER_MAX_TRIES=1)
    assert await redis.exists(keys.ARQ_RESULT_PREFIX + waiting.job_id()) == 0
    assert await redis.zscore("crmflow:queue", waiting.job_id()) is not None  # deferred, not running
    assert int(await redis.get(keys.rate_limited(waiting.job_id())) or 0) >= 1

    await redis.delete(LOCK)
    await run_worker(redis_url, zoho.http, WORKER_MAX_JOBS=1, WORKER_MAX_TRIES=1)
    assert (await job_result(redis, waiting))["status"] == "processed"
    assert await redis.exists(keys.lock_wait(waiting.job_id())) == 0


async def test_two_jobs_for_one_record_run_one_after_the_other(redis: ArqRedis, redis_url: str, zoho: Zoho) -> None:
    await notify(redis, NEVER_RESCHEDULED, "insert")
    await run_worker(redis_url, zoho.http)
    await zoho.reschedule(NEVER_RESCHEDULED, soon(7))
    await zoho.faults({"method": "GET", "path_prefix": "/crm/v7/Appointments__s/", "delay_ms": 300})
    first = await notify(redis, NEVER_RESCHEDULED)
    second: list[ChangeEvent] = []

    async def notify_while_the_first_runs() -> None:
        while not await redis.exists(LOCK):  # noqa: ASYNC110 - polls state in Redis
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)  # the first job has claimed its marker: the next event gets a job of its own
        second.append(await notify(redis, NEVER_RESCHEDULED))

    async def both_done() -> bool:
        done = [first, *second]
        found = [await redis.exists(keys.ARQ_RESULT_PREFIX + event.job_id()) for event in done]
        return len(done) == 2 and all(found)

    notifier = asyncio.create_task(notify_while_the_first_runs())
    await run_worker(redis_url, zoho.http, until=both_done, WORKER_MAX_JOBS=2, WORKER_MAX_TRIES=1)
    await notifier
    (later,) = second
    assert (await job_result(redis, first))["status"] == "processed"
    assert (await job_result(redis, later))["status"] == "processed"
    assert int(await redis.get(keys.rate_limited(later.job_id())) or 0) >= 1
    assert len(await zoho.history(NEVER_RESCHEDULED)) == 1


async def test_a_take_sent_again_after_its_reply_was_lost_finds_its_own_lock_taken(redis: ArqRedis) -> None:
    # workers/main.py's OutageRetry sends a command again when the connection dropped, even if Redis ran it.
    lock = RecordLock(redis, "crmflow:lock:t", "job-a", timeout_s=40, max_wait_s=40)
    assert (await lock.take(1_000)).taken
    await redis.pexpire("crmflow:lock:t", 5_000)
    again = await lock.take(1_500)
    assert (again.taken, again.waited_runs) == (True, 0)
    assert await redis.get(keys.rate_limited("job-a")) is None  # not counted as a wait
    assert 5_000 < await redis.pttl("crmflow:lock:t") <= 40_000  # its timeout renewed
    assert await lock.release()


async def test_the_wait_is_counted_per_holder_so_a_busy_record_is_not_a_stuck_lock(redis: ArqRedis) -> None:
    # One job after another holds the record's lock for 30 s in all, more than the 20 s a wait may last: the
    # waiting job's runs stay waits, since no single holder kept the lock longer than its timeout.
    waiter = RecordLock(redis, "crmflow:lock:t", "job-w", timeout_s=20, max_wait_s=20)
    for n, start in enumerate((0, 15_000)):
        holder = RecordLock(redis, "crmflow:lock:t", f"job-{n}", timeout_s=20, max_wait_s=20)
        assert (await holder.take(start)).taken
        for at in range(start, start + 15_000, 5_000):
            found = await waiter.take(at)
            assert found.counted_as_wait(20)
            assert found.waiting_s == (at - start) / 1000
        assert await holder.release()
    stuck = RecordLock(redis, "crmflow:lock:t", "job-stuck", timeout_s=20, max_wait_s=20)
    assert (await stuck.take(40_000)).taken
    assert (await waiter.take(40_000)).counted_as_wait(20)
    assert not (await waiter.take(60_001)).counted_as_wait(20)


async def test_a_failed_take_after_long_waits_is_one_try_and_leaves_no_lock(
    redis: ArqRedis, redis_url: str, zoho: Zoho
) -> None:
    # The job has run 15 times, all waits for its record's lock; then the lock's script fails after taking the
    # lock (the record's snapshot is of the wrong type): that is its first try, not its 16th, so with 3 tries it
    # is retried, not dead-lettered, and the lock it took is let go.
    event = await notify(redis, NEVER_RESCHEDULED, "insert")
    job_id = event.job_id()
    await redis.set("arq:retry:" + job_id, 15, ex=60)
    await redis.set(keys.rate_limited(job_id), 15, ex=60)
    snapshot = keys.snapshot("zoho", "Appointments__s", NEVER_RESCHEDULED)
    await redis.zadd(snapshot, {"not a snapshot": 1})

    async def retried() -> bool:
        return int(await redis.get("arq:retry:" + job_id) or 0) >= 16 and not await redis.exists(
            keys.ARQ_IN_PROGRESS_PREFIX + job_id
        )

    await run_worker(redis_url, zoho.http, until=retried, WORKER_MAX_TRIES=3)
    assert await redis.exists(keys.ARQ_RESULT_PREFIX + job_id) == 0  # no result: retried, not given up
    assert await redis.zscore("crmflow:queue", job_id) is not None
    assert await redis.exists(LOCK) == 0

    await redis.delete(snapshot)
    await run_worker(redis_url, zoho.http, WORKER_MAX_TRIES=3)
    assert (await job_result(redis, event))["status"] == "processed"


async def test_a_job_that_waited_for_its_record_through_nearly_every_run_arq_allows_is_a_dead_letter(
    redis: ArqRedis, redis_url: str, zoho: Zoho
) -> None:
    # Its record's lock has been busy (one job after another) for LOCK_WAIT_RUNS of its runs: rather than be
    # dropped by arq at its run limit, it becomes a LOCK_BUSY dead letter that can be replayed.
    await redis.set(LOCK, "another job", px=30_000)
    event = await notify(redis, NEVER_RESCHEDULED, "insert")
    job_id = event.job_id()
    await redis.set("arq:retry:" + job_id, LOCK_WAIT_RUNS, ex=60)
    await redis.set(keys.rate_limited(job_id), LOCK_WAIT_RUNS, ex=60)

    async def done() -> bool:
        return bool(await redis.exists(keys.ARQ_RESULT_PREFIX + job_id))

    await run_worker(redis_url, zoho.http, until=done, WORKER_MAX_TRIES=3)
    result = await job_result(redis, event)
    assert result["status"] == "dead_lettered"
    assert await redis.exists(LOCK) == 1  # the other job's lock is left alone
