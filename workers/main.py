"""Worker entry: builds the arq Worker with its clients, rules and tuning; settings come in from the CLI."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from signal import Signals
from typing import Any

import httpx
from arq import Worker
from arq.connections import RedisSettings
from arq.worker import func
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from workers import sources
from workers.actions.dispatch import Actions
from workers.checkpoints import Checkpoints
from workers.config import WorkerConfig
from workers.contract import PROCESS_CHANGE, QUEUE_NAME, REPLAY_ACTION, dumps, loads
from workers.deadletters import DeadLetters
from workers.fetch import CrmClients
from workers.jobs import RetryPolicy, WorkerDeps, process_change, replay_action, utcnow
from workers.ledger import Ledger
from workers.rules.model import RuleSet

logger = logging.getLogger("crmflow.worker")

# Runs a job may spend waiting out rate limits (e.g. 20 hours of HubSpot's ten-second windows).
RATE_LIMIT_RUNS = 10_000


def crm_clients(config: WorkerConfig, redis: Redis, http: httpx.AsyncClient) -> CrmClients:
    """A client for each source configured; the others stay out (their events become dead letters)."""
    connected = {source.name: source.connect(config, redis, http) for source in sources.all_sources()}
    return CrmClients({name: client for name, client in connected.items() if client is not None})


def build_worker(
    config: WorkerConfig,
    rules: RuleSet,
    *,
    http: httpx.AsyncClient | None = None,
    burst: bool = False,
    handle_signals: bool | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Worker:
    """An arq Worker for crmflow's queue; `http` routes CRM calls elsewhere (tests), `burst` drains then stops."""

    async def startup(ctx: dict[str, Any]) -> None:
        client = http or httpx.AsyncClient(timeout=httpx.Timeout(config.http_timeout_s, connect=5.0))
        ctx["http"] = client
        redis = ctx["redis"]
        crm = crm_clients(config, redis, client)
        checkpoints = Checkpoints(redis, config.test_pause_at)
        ctx["deps"] = WorkerDeps(
            redis=redis,
            rules=rules,
            crm=crm,
            actions=Actions(crm=crm, ledger=Ledger(redis), checkpoints=checkpoints),
            deadletters=DeadLetters(redis),
            policy=RetryPolicy(
                max_tries=config.max_tries,
                base_s=config.retry_base_s,
                cap_s=config.retry_cap_s,
                max_age_s=config.max_age_s,
            ),
            checkpoints=checkpoints,
            work_timeout_s=config.job_timeout_s - 2,
            lock_timeout_s=config.job_timeout_s + 10,
            clock=clock or utcnow,
        )

    async def shutdown(ctx: dict[str, Any]) -> None:
        if http is None and "http" in ctx:
            await ctx["http"].aclose()

    redis_settings = RedisSettings.from_dsn(config.redis_url)
    redis_settings.conn_retries = 30  # wait up to ~30 s for Redis at start-up
    # A Redis blip (restart, failover) stalls commands for a while instead of failing them: about 30 s of
    # retries with backoff. A longer outage ends this worker; `crmflow worker` then starts a new one.
    redis_settings.retry_on_error = [RedisConnectionError, RedisTimeoutError]
    redis_settings.retry = Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=30)
    return Worker(
        functions=[func(process_change, name=PROCESS_CHANGE), func(replay_action, name=REPLAY_ACTION)],
        queue_name=QUEUE_NAME,
        redis_settings=redis_settings,
        on_startup=startup,
        on_shutdown=shutdown,
        job_serializer=dumps,
        job_deserializer=loads,
        max_jobs=config.max_jobs,
        poll_delay=config.poll_delay_s,
        job_timeout=config.job_timeout_s,
        keep_result=config.keep_result_s,
        # Above our own limit: on the extra run the job records a dead letter instead of vanishing; and runs
        # spent waiting out rate limits do not count as tries (workers/jobs.py), so arq must allow them.
        max_tries=config.max_tries + 1 + RATE_LIMIT_RUNS,
        burst=burst,
        handle_signals=not burst if handle_signals is None else handle_signals,
        # SIGTERM: take no new jobs, let running ones finish this long, then cancel them (arq re-queues them).
        job_completion_wait=config.shutdown_grace_s,
    )


def run_forever(config: WorkerConfig, rules: RuleSet) -> None:
    """Run a worker until a signal stops it; when Redis stays away longer than its retries, start a fresh one.

    arq's worker ends when a Redis command finally fails. Its queue and jobs are in Redis, so a new worker
    carries on where it stopped once Redis is back (jobs it was running come back after their in-progress
    key expires). New workers are started with backoff: 1 s, doubling, at most 30 s.
    """
    delay_s = 1.0
    while True:
        stopped: list[Signals] = []
        worker = build_worker(config, rules)
        worker.on_stop = stopped.append
        try:
            worker.run()
            return
        except (RedisError, OSError) as exc:
            if stopped:
                return
            logger.error("worker lost Redis (%s: %s); starting a new one in %.0fs", type(exc).__name__, exc, delay_s)
            time.sleep(delay_s)
            delay_s = min(delay_s * 2, 30.0)
