"""The worker's Redis connection: how long it waits out a Redis that is away or refusing writes, in all."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import pytest
from arq.worker import func
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from crmflow.embedded_redis import EmbeddedRedis, free_port
from workers.config import WorkerConfig
from workers.contract import QUEUE_NAME, dumps, loads
from workers.main import CrmflowWorker, notify_secrets_environ, worker_redis_settings
from workers.queue import Job, connect_queue, enqueue_jobs

BUDGET_S = 1.0


def client(port: int) -> Redis:
    settings = worker_redis_settings(f"redis://127.0.0.1:{port}/0", outage_s=BUDGET_S)
    return Redis(host="127.0.0.1", port=port, retry=settings.retry, retry_on_error=settings.retry_on_error)


def test_an_outage_is_waited_out_for_thirty_seconds_by_default() -> None:
    # What docs/guarantees.md promises (WORKER_REDIS_OUTAGE_S).
    assert WorkerConfig.model_validate({"HUBSPOT_ACCESS_TOKEN": "x"}).redis_outage_s == 30


async def test_a_refused_connection_is_retried_for_the_budget_and_no_longer() -> None:
    # A new connection to a Redis that is not there (a restart under a busy worker) used to fail at the
    # first refusal: redis-py retries only its own ConnectionError, and wraps the OSError after retrying.
    began = time.monotonic()
    with pytest.raises(RedisConnectionError):
        await client(free_port()).get("anything")

    assert BUDGET_S <= time.monotonic() - began < BUDGET_S + 1.0


async def test_commands_queued_behind_each_other_share_one_outage_budget() -> None:
    # Connecting holds the pool's lock, so commands wait for one another: with a budget per command the
    # fifth waited five budgets. One clock for the outage makes every one give up after one budget.
    redis = client(free_port())
    began = time.monotonic()
    failed = await asyncio.gather(*(redis.get(f"k{n}") for n in range(5)), return_exceptions=True)

    assert all(isinstance(error, RedisConnectionError) for error in failed)
    assert time.monotonic() - began < BUDGET_S + 1.0


async def test_a_connection_lost_mid_use_is_retried_for_the_budget_not_budget_times_tries() -> None:
    # Reconnecting retries inside the command's own retry: counted in tries, the two multiplied.
    server = EmbeddedRedis()
    server.start()
    redis = client(server.port)
    assert await redis.set("k", "v")
    server.stop()
    began = time.monotonic()
    with pytest.raises(RedisConnectionError):
        await redis.get("k")
    waited_s = time.monotonic() - began
    await redis.aclose()

    assert BUDGET_S <= waited_s < BUDGET_S + 1.0


async def test_the_outage_ends_with_the_first_success() -> None:
    server = EmbeddedRedis()
    server.start()
    redis = client(server.port)
    try:
        port = server.port
        server.stop()
        with pytest.raises(RedisConnectionError):
            await redis.get("k")
        server = EmbeddedRedis(port=port)
        server.start()
        assert await redis.set("k", "v")  # the outage is over: a new one gets a whole budget again
        server.stop()
        began = time.monotonic()
        with pytest.raises(RedisConnectionError):
            await redis.get("k")
        assert time.monotonic() - began >= BUDGET_S
    finally:
        await redis.aclose()
        server.stop()


async def test_redis_refusing_the_end_of_a_job_for_longer_than_the_budget_does_not_stop_the_worker(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # arq re-raises in its main loop what a job's bookkeeping raised: a write refused at maxmemory for
    # longer than the worker waits would have ended the worker and every job it ran.
    server = EmbeddedRedis()
    url = server.start()
    store = Redis.from_url(url)

    async def fills_redis(ctx: dict[str, Any]) -> str:
        await ctx["redis"].config_set("maxmemory", 1)  # noeviction: arq cannot store this job's result
        return "done"

    async def later(ctx: dict[str, Any]) -> str:
        return "done"

    worker = CrmflowWorker(
        functions=[func(fills_redis, name="fills"), func(later, name="later")],
        redis_settings=worker_redis_settings(url, outage_s=BUDGET_S),
        queue_name=QUEUE_NAME,
        poll_delay=0.01,
        handle_signals=False,
        job_serializer=dumps,
        job_deserializer=loads,
    )
    queue = connect_queue(url)
    await enqueue_jobs(queue, [Job("first", "fills", ())])
    task = asyncio.create_task(worker.main())
    try:
        async with asyncio.timeout(20):
            while "Redis refused to record its end" not in caplog.text:  # noqa: ASYNC110 - a log line
                await asyncio.sleep(0.05)
            await store.config_set("maxmemory", 0)
            await enqueue_jobs(queue, [Job("second", "later", ())])
            while await store.exists("arq:result:second") == 0:  # noqa: ASYNC110 - the job's result
                await asyncio.sleep(0.05)
        assert not task.done()  # the worker lived through it
    finally:
        worker.allow_pick_jobs = False
        await asyncio.sleep(0.05)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await worker.close()
        await queue.aclose()
        await store.aclose()
        server.stop()


def test_each_configured_source_with_a_listing_gets_a_sweep_duty() -> None:
    from workers.fetch import CrmClients
    from workers.main import worker_duties

    config = WorkerConfig.model_validate({"HUBSPOT_ACCESS_TOKEN": "x", "SWEEP_INTERVAL_S": 120})
    redis = connect_queue("redis://127.0.0.1:1/0")  # never used: nothing runs here

    both = worker_duties(config, redis, CrmClients({"zoho": object(), "hubspot": object()}))
    one = worker_duties(config, redis, CrmClients({"hubspot": object()}))

    assert [(duty.name, duty.interval_s) for duty in both] == [("sweep:zoho", 120), ("sweep:hubspot", 120)]
    assert [duty.name for duty in one] == ["sweep:hubspot"]


def test_notify_secrets_come_from_the_environment_over_the_dotenv_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("CRMFLOW_A_SECRET=whsec_from-file\nCRMFLOW_B_SECRET=whsec_file-b\nEMPTY=\n")
    monkeypatch.setenv("CRMFLOW_B_SECRET", "whsec_from-env")
    monkeypatch.chdir(tmp_path)

    environ = notify_secrets_environ()

    assert environ["CRMFLOW_A_SECRET"] == "whsec_from-file"
    assert environ["CRMFLOW_B_SECRET"] == "whsec_from-env"
    assert "EMPTY" not in environ


def test_without_a_dotenv_file_notify_secrets_are_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CRMFLOW_C_SECRET", "whsec_c")

    assert notify_secrets_environ()["CRMFLOW_C_SECRET"] == "whsec_c"
