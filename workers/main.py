"""Worker entry: builds the arq Worker with its clients, rules and tuning; settings come in from the CLI."""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import partial
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from signal import Signals
from typing import Any, cast

import httpx
from arq import Worker
from arq.connections import ArqRedis, RedisSettings
from arq.worker import func
from dotenv import dotenv_values
from redis.asyncio import Redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ReadOnlyError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from workers import log_context, sources
from workers.actions.dispatch import Actions
from workers.channel_upkeep import channel_duty
from workers.channels import Wanted
from workers.checkpoints import Checkpoints
from workers.config import WorkerConfig
from workers.contract import PROCESS_CHANGE, QUEUE_NAME, REPLAY_ACTION, dumps, loads
from workers.crm.limits import crm_calls
from workers.crm.zoho import ZohoClient
from workers.deadletters import DeadLetters
from workers.duties import Duty, DutyRunner
from workers.eventlog import EventLog, EventLogBounds
from workers.fetch import CrmClients
from workers.heartbeat import Heartbeat, WorkerFacts
from workers.jobs import RATE_LIMIT_RUNS, RetryPolicy, WorkerDeps, process_change, replay_action, utcnow
from workers.ledger import Ledger
from workers.notify.notifier import Notifier, notify_client
from workers.redis_retry import OutageRetry
from workers.rules.model import RuleSet
from workers.sweep import sweep_duty, swept_modules

logger = logging.getLogger("crmflow.worker")

# Redis failures that may pass, waited out for WORKER_REDIS_OUTAGE_S (workers/redis_retry.py) before a
# command fails: a restart or failover (connection refused or reset: redis-py only wraps the OSError of a
# refused connection in its ConnectionError after its retries, so OSError is named too), a replica that
# is read-only until promoted, and a Redis at maxmemory that refuses writes until memory is freed.
# Retrying means sending a command again: crmflow sends no non-idempotent command in a pipeline without
# MULTI (a refused MULTI/EXEC or Lua script applies nothing, so it can be sent again as it was).
REDIS_TRANSIENT_ERRORS: list[type[Exception]] = [
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    OutOfMemoryError,
    ReadOnlyError,
]
# Redis refusing writes (maxmemory, read-only replica) while the connection is fine.
REDIS_REFUSALS = (OutOfMemoryError, ReadOnlyError)


# arq's job-start line, whose third argument is the job's arguments: those of a replayed action hold the record's
# values it read (personal data), and the line's context names the job already.
ARQ_JOB_START = "%6.2fs → %s(%s)%s"


class WithoutJobArguments(logging.Filter):
    """Leaves the job's arguments out of arq's job-start line (see ARQ_JOB_START)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == ARQ_JOB_START and isinstance(record.args, tuple) and len(record.args) == 4:
            record.args = (record.args[0], record.args[1], "…", record.args[3])
        return True


def hide_job_arguments() -> None:
    """Install WithoutJobArguments on arq's worker logger, once."""
    arq_logger = logging.getLogger("arq.worker")
    if not any(isinstance(existing, WithoutJobArguments) for existing in arq_logger.filters):
        arq_logger.addFilter(WithoutJobArguments())


class CrmflowWorker(Worker):
    """arq's Worker, kept alive while Redis refuses writes: a refusal ends one job's bookkeeping, not the worker.

    arq re-raises a job task's exception in its main loop, and writes its health key there; either failing
    because Redis is at maxmemory or read-only would end the worker (and every job it runs). Instead the job
    is left to arq's in-progress expiry, which runs it again (the ledger keeps that from doing anything twice),
    and the health key is skipped until Redis takes writes again.
    """

    async def run_job(self, job_id: str, score: int) -> None:
        # arq runs each job in a task of its own: from here on, every line logged about it names it, arq's own
        # start and end lines included (the job itself names its record exactly once it has read its event).
        log_context.bind(**log_context.from_job_id(job_id))
        try:
            await super().run_job(job_id, score)
        except REDIS_REFUSALS as exc:
            logger.error("job %s: Redis refused to record its end (%s); it runs again after its timeout", job_id, exc)

    async def close(self) -> None:
        # arq runs on_shutdown only when Redis still answers; the duties must stop whatever happened, or their
        # loops would live on in the event loop that run_forever's next worker uses.
        try:
            await super().close()
        finally:
            runner = self.ctx.get("duties")
            if isinstance(runner, DutyRunner):
                await runner.stop()
            heartbeat = self.ctx.get("heartbeat")
            if isinstance(heartbeat, Heartbeat):
                # Deleted by on_shutdown when Redis answered; otherwise the key expires within seconds.
                await heartbeat.cancel()

    async def record_health(self) -> None:
        try:
            await super().record_health()
        except REDIS_REFUSALS as exc:
            logger.warning("Redis refused the worker's health key (%s)", exc)


def notify_secrets_environ(dotenv_path: str = ".env") -> dict[str, str]:
    """Where notify actions read the secrets their rules name (`secret_env`): the process's environment, over a
    .env file in the working directory, as for every setting (workers/config.py)."""
    from_file = {name: value for name, value in dotenv_values(dotenv_path).items() if value}
    return from_file | dict(os.environ)


def crm_clients(config: WorkerConfig, redis: Redis, http: httpx.AsyncClient) -> CrmClients:
    """A client for each source configured; the others stay out (their events become dead letters)."""
    connected = {source.name: source.connect(config, redis, http) for source in sources.all_sources()}
    return CrmClients({name: client for name, client in connected.items() if client is not None})


def worker_duties(
    config: WorkerConfig, redis: Redis, crm: CrmClients, clock: Callable[[], datetime] = utcnow
) -> list[Duty]:
    """The periodic chores this worker takes its turn at (workers/duties.py); an interval of 0 leaves one out.

    zoho-channels: Zoho watch-channel upkeep (workers/channel_upkeep.py), every ZOHO_CHANNEL_CHECK_S, when
    PUBLIC_BASE_URL and ZOHO_CHANNEL_IDS are set.
    sweep:<source>: a reconciliation sweep (workers/sweep.py) of each configured source that has a module
    with a listing, every SWEEP_INTERVAL_S.
    """
    duties: list[Duty] = []
    wanted = channels_wanted(config)
    zoho = crm.clients.get("zoho")
    if wanted is not None and isinstance(zoho, ZohoClient):
        by = f"worker {socket.gethostname()}:{os.getpid()}"
        duties.append(channel_duty(zoho, redis, wanted, config.zoho_channel_check_s, clock, by))
    for source in sources.all_sources():
        client = crm.clients.get(source.name)
        if client is None or not swept_modules(source):
            continue
        # arq hands its worker an ArqRedis; the sweep queues jobs through it like the receiver does.
        queue = cast(ArqRedis, redis)
        run = partial(sweep_duty, queue, source, client, clock=clock, lookback_s=config.sweep_lookback_s)
        duties.append(Duty(f"sweep:{source.name}", config.sweep_interval_s, run))
    return [duty for duty in duties if duty.interval_s > 0]


def channels_wanted(config: WorkerConfig) -> Wanted | None:
    """The Zoho channels the workers keep alive: set when Zoho, PUBLIC_BASE_URL and ZOHO_CHANNEL_IDS all are
    (WorkerConfig then insists on ZOHO_NOTIFY_TOKEN, without which the receiver would refuse the callbacks)."""
    if "zoho" not in config.sources or not config.public_base_url or not config.zoho_channel_ids:
        return None
    if config.zoho_notify_token is None:
        return None
    return Wanted(config.zoho_channel_ids, config.public_base_url, config.zoho_notify_token)


async def log_crm_calls(redis: Redis, sources: list[str]) -> None:
    """Log today's CRM calls (all workers together) for each source: what `crmflow crm-calls` shows."""
    today = datetime.now(UTC).date()
    try:
        for source in sources:
            counts = await crm_calls(redis, source, today)
            spent = ", ".join(f"{name} {count}" for name, count in counts.items())
            logger.info("%s API calls today (UTC, all workers): %s", source, spent)
    except RedisError as exc:
        logger.warning("could not read today's CRM call counts: %s", exc)


def worker_identity() -> str:
    """Names this worker process in duty leases, heartbeats and logs: host, process id and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def worker_facts(identity: str, config: WorkerConfig, now: datetime) -> WorkerFacts:
    """What this worker process's heartbeat says about it (workers/heartbeat.py)."""
    return WorkerFacts(
        worker_id=identity,
        host=socket.gethostname(),
        pid=os.getpid(),
        started_at=now,
        version=crmflow_version(),
        sources=tuple(config.sources),
        beat_at=now,
    )


def crmflow_version() -> str:
    """The installed crmflow's version ("unknown" when run from a tree that was never installed)."""
    try:
        return package_version("crmflow")
    except PackageNotFoundError:
        return "unknown"


def worker_redis_settings(redis_url: str, *, outage_s: float) -> RedisSettings:
    """arq's connection settings for a worker: patient at start-up and through Redis blips."""
    settings = RedisSettings.from_dsn(redis_url)
    settings.conn_retries = 30  # wait up to ~30 s for Redis at start-up
    # A Redis blip (restart, failover, maxmemory) stalls commands for a while instead of failing them, for
    # `outage_s` in all. A longer outage ends this worker; `crmflow worker` then starts a new one.
    settings.retry_on_error = REDIS_TRANSIENT_ERRORS
    settings.retry = OutageRetry(ExponentialBackoff(cap=1.0, base=0.05), budget_s=outage_s)
    return settings


def build_worker(
    config: WorkerConfig,
    rules: RuleSet,
    *,
    http: httpx.AsyncClient | None = None,
    burst: bool = False,
    handle_signals: bool | None = None,
    clock: Callable[[], datetime] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Worker:
    """An arq Worker for crmflow's queue; `http` routes CRM calls elsewhere (tests), `burst` drains then stops.

    Notify actions POST through a client of their own (workers/notify/notifier.py), never through `http`, and
    read the secrets their rules name (`secret_env`) from `environ` (default: notify_secrets_environ()).
    """

    async def startup(ctx: dict[str, Any]) -> None:
        client = http or httpx.AsyncClient(timeout=httpx.Timeout(config.http_timeout_s, connect=5.0))
        ctx["http"] = client
        ctx["notify_http"] = notify_client()
        secrets = notify_secrets_environ() if environ is None else environ
        notifier = Notifier(ctx["notify_http"], secrets, clock=clock or utcnow)
        redis = ctx["redis"]
        crm = crm_clients(config, redis, client)
        checkpoints = Checkpoints(redis, config.test_pause_at)
        events = EventLog(redis, EventLogBounds(config.event_log_max_age_s, config.event_log_max_entries))
        await events.prepare()
        ctx["deps"] = WorkerDeps(
            redis=redis,
            rules=rules,
            crm=crm,
            actions=Actions(crm=crm, ledger=Ledger(redis), checkpoints=checkpoints, notifier=notifier),
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
            events=events,
        )
        identity = worker_identity()
        heartbeat = Heartbeat(redis, worker_facts(identity, config, utcnow()), clock=utcnow)
        ctx["heartbeat"] = heartbeat
        await heartbeat.beat()  # live from the moment the worker takes jobs
        heartbeat.start()
        runner = DutyRunner(redis, worker_duties(config, redis, crm, clock or utcnow), owner=identity)
        ctx["duties"] = runner
        runner.start()
        if runner.names:
            logger.info("worker: periodic duties: %s", ", ".join(runner.names))

    async def shutdown(ctx: dict[str, Any]) -> None:
        if "duties" in ctx:
            await ctx["duties"].stop()
        if "heartbeat" in ctx:
            await ctx["heartbeat"].stop()
        await log_crm_calls(ctx["redis"], config.sources)
        if http is None and "http" in ctx:
            await ctx["http"].aclose()
        if "notify_http" in ctx:
            await ctx["notify_http"].aclose()

    redis_settings = worker_redis_settings(config.redis_url, outage_s=config.redis_outage_s)
    hide_job_arguments()
    return CrmflowWorker(
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
            what = "Redis kept refusing writes" if isinstance(exc, REDIS_REFUSALS) else "worker lost Redis"
            logger.error("%s (%s: %s); starting a new worker in %.0fs", what, type(exc).__name__, exc, delay_s)
            time.sleep(delay_s)
            delay_s = min(delay_s * 2, 30.0)
