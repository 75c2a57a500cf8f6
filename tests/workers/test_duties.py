"""Duties: one worker at a time across processes, once per interval, never overlapping, failures recorded."""

from __future__ import annotations

import asyncio
import itertools
import signal
import sys
import time

import pytest
from arq.connections import ArqRedis

from workers import keys
from workers.duties import Duty, DutyIncomplete, DutyRunner, duty_state


def counting_duty(calls: list[str], *, interval_s: float, hold_s: float = 0.0, name: str = "chore") -> Duty:
    async def run() -> str:
        calls.append(name)
        await asyncio.sleep(hold_s)
        return f"run {len(calls)}"

    return Duty(name, interval_s, run)


async def test_of_many_workers_one_runs_the_duty_in_an_interval(redis: ArqRedis) -> None:
    calls: list[str] = []
    duty = counting_duty(calls, interval_s=60)
    runners = [DutyRunner(redis, [duty], owner=f"w{n}") for n in range(4)]

    ran = await asyncio.gather(*(runner.run_once(duty) for runner in runners))

    assert calls == ["chore"]
    assert sum(ran) == 1
    state = await duty_state(redis, "chore")
    assert state["state"] == "ok"
    assert state["summary"] == "run 1"
    assert state["owner"] in {"w0", "w1", "w2", "w3"}


async def test_the_duty_runs_again_once_its_interval_has_passed(redis: ArqRedis) -> None:
    """Three workers, an interval of 0.3 s: the duty runs again and again, never twice within one interval.

    Measured by the runs' own times, not by counting runs in a fixed sleep, so that a loaded machine (which
    delays runs) cannot fail it; a run earlier than the lease allows would.
    """
    ran_at: list[float] = []
    four_runs = asyncio.Event()

    async def run() -> str:
        ran_at.append(time.monotonic())
        if len(ran_at) >= 4:
            four_runs.set()
        return f"run {len(ran_at)}"

    interval_s = 0.3
    runners = [DutyRunner(redis, [Duty("chore", interval_s, run)], owner=f"w{n}") for n in range(3)]
    for runner in runners:
        runner.start()
    try:
        await asyncio.wait_for(four_runs.wait(), timeout=15)
    finally:
        for runner in runners:
            await runner.stop()

    gaps = [later - earlier for earlier, later in itertools.pairwise(ran_at)]
    # The lease lives for the interval (Redis counts milliseconds): no worker can run the duty sooner.
    assert min(gaps) >= interval_s - 0.01, gaps


async def test_a_run_longer_than_the_interval_is_never_overlapped(redis: ArqRedis) -> None:
    calls: list[str] = []
    active: list[int] = []
    overlapped: list[bool] = []

    async def slow() -> str:
        active.append(1)
        overlapped.append(len(active) > 1)
        calls.append("slow")
        await asyncio.sleep(0.5)
        active.pop()
        return "done"

    duty = Duty("slow", 0.1, slow)
    runners = [DutyRunner(redis, [duty], owner=f"w{n}", running_ttl_s=0.3) for n in range(2)]
    for runner in runners:
        runner.start()
    try:
        await asyncio.sleep(1.2)
    finally:
        for runner in runners:
            await runner.stop()

    assert calls
    assert not any(overlapped)


async def test_a_failed_run_is_recorded_and_the_worker_carries_on(redis: ArqRedis) -> None:
    async def broken() -> str:
        raise RuntimeError("Zoho said no")

    runner = DutyRunner(redis, [Duty("broken", 60, broken)], owner="w0")

    assert await runner.run_once(Duty("broken", 60, broken))

    state = await duty_state(redis, "broken")
    assert state["state"] == "failed"
    assert state["error"] == "RuntimeError: Zoho said no"
    assert await redis.exists(keys.duty_running("broken")) == 0


async def test_the_last_success_outlives_a_failed_run(redis: ArqRedis) -> None:
    outcomes = iter(["done"])

    async def once_then_broken() -> str:
        try:
            return next(outcomes)
        except StopIteration:
            raise RuntimeError("Zoho said no") from None

    duty = Duty("flaky", 0.001, once_then_broken)
    ticks = itertools.count(100)
    runner = DutyRunner(redis, [duty], owner="w0", clock=lambda: float(next(ticks)))
    await runner.run_once(duty)
    await redis.delete(keys.duty_lease("flaky"))
    await runner.run_once(duty)

    state = await duty_state(redis, "flaky")
    # Each run reads the clock when it starts and ends (a success also for its duration).
    assert (state["state"], state["finished_at"], state["last_ok_at"]) == ("failed", "104.0", "102.0")


async def test_a_worker_stopped_mid_run_hands_the_duty_over_at_once(redis: ArqRedis) -> None:
    started = asyncio.Event()

    async def long_run() -> str:
        started.set()
        await asyncio.sleep(60)
        return "never"

    duty = Duty("long", 3600, long_run)
    first = DutyRunner(redis, [duty], owner="w0")
    first.start()
    await asyncio.wait_for(started.wait(), 5)

    await first.stop()

    assert (await duty_state(redis, "long"))["state"] == "interrupted"
    assert await redis.exists(keys.duty_lease("long"), keys.duty_running("long")) == 0
    calls: list[str] = []
    assert await DutyRunner(redis, [], owner="w1").run_once(counting_duty(calls, interval_s=3600, name="long"))
    assert calls == ["long"]


async def test_an_interval_of_zero_turns_a_duty_off(redis: ArqRedis) -> None:
    runner = DutyRunner(redis, [counting_duty([], interval_s=0)], owner="w0")

    assert runner.names == []


async def test_a_failed_run_is_tried_again_soon_not_an_interval_later(redis: ArqRedis) -> None:
    async def partly() -> str:
        raise DutyIncomplete("1 channel of 2 not kept")

    runner = DutyRunner(redis, [], owner="w0", retry_after_failure_s=2)

    assert await runner.run_once(Duty("partly", 3600, partly))

    assert 0 < await redis.pttl(keys.duty_lease("partly")) <= 2000
    assert (await duty_state(redis, "partly"))["error"] == "DutyIncomplete: 1 channel of 2 not kept"


async def test_a_lease_taken_under_a_longer_interval_is_cut_to_the_new_one(redis: ArqRedis) -> None:
    # A worker restarted with a shorter interval must not wait out the lease its predecessor took.
    await redis.set(keys.duty_lease("chore"), "old-worker", px=3_600_000)
    ran = asyncio.Event()

    async def run() -> str:
        ran.set()
        return "ran"

    runner = DutyRunner(redis, [Duty("chore", 0.2, run)], owner="w1")
    runner.start()
    try:
        # Within seconds (however loaded the machine), not after the hour the old lease had left.
        await asyncio.wait_for(ran.wait(), timeout=10)
    finally:
        await runner.stop()

    assert ran.is_set()


HOLDER = """
import asyncio, sys
from redis.asyncio import Redis
from workers.duties import Duty, DutyRunner

async def main() -> None:
    redis = Redis.from_url(sys.argv[1])
    async def forever() -> str:
        await asyncio.sleep(3600)
        return "never"
    runner = DutyRunner(redis, [], owner="doomed", running_ttl_s=1.0)
    await runner.run_once(Duty("taken-over", 1.0, forever))

asyncio.run(main())
"""


@pytest.mark.slow
async def test_a_duty_whose_worker_was_killed_mid_run_is_taken_over(redis: ArqRedis, redis_url: str) -> None:
    holder = await asyncio.create_subprocess_exec(sys.executable, "-c", HOLDER, redis_url)
    try:
        for _ in range(200):
            if (await duty_state(redis, "taken-over")).get("state") == "running":
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the holder never started its run")
        holder.send_signal(signal.SIGKILL)
        await asyncio.wait_for(holder.wait(), 5)
        began = time.monotonic()
        calls: list[str] = []
        successor = DutyRunner(redis, [], owner="successor")
        while not await successor.run_once(counting_duty(calls, interval_s=1.0, name="taken-over")) or not calls:
            assert time.monotonic() - began < 10, "the duty was never taken over"
            await asyncio.sleep(0.05)
    finally:
        if holder.returncode is None:
            holder.kill()
            await asyncio.wait_for(holder.wait(), 5)

    # Its lease (1 s) and its running lock (1 s, no longer renewed) both ran out: the successor ran it.
    assert calls == ["taken-over"]
    assert (await duty_state(redis, "taken-over"))["owner"] == "successor"
