"""Worker test harness: a real arq worker in burst mode on real Redis, its CRM calls sent to a given client."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx
from arq.connections import ArqRedis
from arq.jobs import Job
from pydantic import SecretStr

from tests.processes import REPO
from workers.config import WorkerConfig
from workers.contract import QUEUE_NAME, ChangeEvent, loads
from workers.crm.zoho import ZohoClient
from workers.crm.zoho_auth import ZohoTokens
from workers.main import build_worker
from workers.queue import enqueue_events
from workers.rules.load import load_rules

_clock = itertools.count(1_763_700_000_000)


def worker_config(redis_url: str, **overrides: Any) -> WorkerConfig:
    """Both CRMs pointed at the sandbox (http://sandbox), with retries fast enough for tests; no periodic sweep
    (SWEEP_INTERVAL_S=0) unless a test asks for one."""
    values = {
        "REDIS_URL": redis_url,
        "RULES_PATH": str(REPO / "rules" / "default.yaml"),
        "ZOHO_API_DOMAIN": "http://sandbox",
        "ZOHO_ACCOUNTS_URL": "http://sandbox",
        "ZOHO_CLIENT_ID": "sandbox-client-id",
        "ZOHO_CLIENT_SECRET": "sandbox-client-secret",
        "ZOHO_REFRESH_TOKEN": "sandbox-refresh-token",
        "HUBSPOT_API_BASE": "http://sandbox",
        "HUBSPOT_ACCESS_TOKEN": "sandbox-hubspot-token",
        "WORKER_RETRY_BASE_S": 0.01,
        "WORKER_RETRY_CAP_S": 0.05,
        "WORKER_MAX_TRIES": 4,
        "WORKER_POLL_DELAY_S": 0.005,
        "SWEEP_INTERVAL_S": 0,
    }
    return WorkerConfig.model_validate(values | overrides)


async def run_worker(
    redis_url: str,
    http: httpx.AsyncClient,
    *,
    until: Callable[[], Awaitable[bool]] | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> None:
    """Run one worker until the queue is empty (including the retries it deferred), or until `until()`.

    `environ`: where notify actions read the secrets their rules name (default: none at all).
    """
    config = worker_config(redis_url, **overrides)
    rules = load_rules(config.rules_path)
    worker = build_worker(config, rules, http=http, burst=until is None, environ=environ or {})
    try:
        if until is None:
            await worker.main()
            return
        task = asyncio.create_task(worker.main())
        async with asyncio.timeout(30):
            while not await until():  # noqa: ASYNC110 - polls state in Redis, not an in-process event
                await asyncio.sleep(0.01)
            # Stop picking jobs and let running ones finish their bookkeeping before cancelling anything: a
            # job or poll cancelled inside one of arq's Redis transactions leaves a pipeline unclosed (a
            # ResourceWarning, so a failed test). With no job to pick, a poll runs no transaction at all.
            worker.allow_pick_jobs = False
            await asyncio.sleep(0.05)  # the poll under way, if any, ends (polls come every few ms)
            while any(not job.done() for job in worker.tasks.values()):  # noqa: ASYNC110 - arq's tasks
                await asyncio.sleep(0.005)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        await worker.close()


async def deferred_s(redis: ArqRedis, event: ChangeEvent) -> float:
    """How far in the future the job for `event` is scheduled (negative: due)."""
    score = await redis.zscore(QUEUE_NAME, event.job_id())
    return -1e9 if score is None else (score - time.time() * 1000) / 1000


async def enqueue_change(redis: ArqRedis, source: str, module: str, record_id: str, **fields: Any) -> ChangeEvent:
    """What the receiver queues for one notification (a fresh notified_at_ms unless given)."""
    event = ChangeEvent.model_validate(
        {"source": source, "module": module, "record_id": record_id, "operation": "update"}
        | {"notified_at_ms": next(_clock)}
        | fields
    )
    await enqueue_events(redis, [event])
    return event


async def job_result(redis: ArqRedis, event: ChangeEvent) -> Any:
    """What the job for `event` returned."""
    info = await Job(event.job_id(), redis, _deserializer=loads).result_info()
    assert info is not None
    return info.result


def sandbox_zoho(redis: ArqRedis, http: httpx.AsyncClient) -> ZohoClient:
    """A bare Zoho client (no shared limiter) with the sandbox's credentials, its calls sent through `http`."""
    tokens = ZohoTokens(
        redis,
        http,
        accounts_url="http://sandbox",
        client_id="sandbox-client-id",
        client_secret=SecretStr("sandbox-client-secret"),
        refresh_token=SecretStr("sandbox-refresh-token"),
    )
    return ZohoClient(http, api_domain="http://sandbox", tokens=tokens)
