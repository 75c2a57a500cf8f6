"""Redis round trips per reschedule: what one process_change job costs, counted on a real Redis connection.

The job's own round trips (arq's handling of the job comes on top and is not crmflow's to change): counted by a
connection class that counts every send, under a worker's dependencies built as workers/main.py builds them,
for a Zoho reschedule that logs one history row. The bound is what the job needs today, so that extra round
trips cannot creep back unnoticed: the record's lock with its waits, coalesced events and state (1), the
limiter's acquire and release around each of the three CRM calls (6), the ledger before and after the write
(2), and the new state with the lock's release and the event log entry (1).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import Connection

from sandbox.app import create_app as create_sandbox
from sandbox.config import SandboxConfig
from tests.workers.harness import enqueue_change, worker_config
from tests.workers.test_jobs import NEVER_RESCHEDULED, Zoho, soon
from workers.actions.dispatch import Actions
from workers.checkpoints import Checkpoints
from workers.contract import ChangeEvent
from workers.deadletters import DeadLetters
from workers.eventlog import EventLog
from workers.jobs import RetryPolicy, WorkerDeps, process_change
from workers.ledger import Ledger
from workers.main import crm_clients
from workers.rules.load import load_rules

ROUND_TRIPS_PER_RESCHEDULE = 10


class CountingConnection(Connection):
    """A connection that counts what it sends: one count per round trip (a pipeline is one)."""

    sent = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).sent += 1
        await super().send_packed_command(command, check_health)


@pytest.fixture
async def zoho() -> AsyncIterator[Zoho]:
    app = create_sandbox(SandboxConfig())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox") as http:
        yield Zoho(http)


@pytest.fixture
async def counted(redis_url: str) -> AsyncIterator[Redis]:
    pool = ConnectionPool.from_url(redis_url, connection_class=CountingConnection)
    client = Redis(connection_pool=pool)
    yield client
    await client.aclose()
    await pool.disconnect()


async def run_job(deps: WorkerDeps, event: ChangeEvent) -> dict[str, Any]:
    ctx = {"deps": deps, "job_try": 1, "enqueue_time": datetime.now(UTC)}
    return await process_change(ctx, event.model_dump(mode="json"))


async def test_a_reschedule_costs_a_bounded_number_of_round_trips(
    redis: ArqRedis, redis_url: str, counted: Redis, zoho: Zoho
) -> None:
    config = worker_config(redis_url)
    crm = crm_clients(config, counted, zoho.http)
    deps = WorkerDeps(
        redis=counted,
        rules=load_rules(config.rules_path),
        crm=crm,
        actions=Actions(crm=crm, ledger=Ledger(counted), checkpoints=Checkpoints(counted, None)),
        deadletters=DeadLetters(counted),
        policy=RetryPolicy(max_tries=4, base_s=0.01, cap_s=0.05),
        work_timeout_s=28,
        lock_timeout_s=40,
        events=EventLog(counted),
    )
    first = await enqueue_change(redis, "zoho", "Appointments__s", NEVER_RESCHEDULED, operation="insert")
    assert (await run_job(deps, first))["status"] == "processed"  # also loads the scripts and the token
    await zoho.reschedule(NEVER_RESCHEDULED, soon(9))
    change = await enqueue_change(redis, "zoho", "Appointments__s", NEVER_RESCHEDULED)

    before = CountingConnection.sent
    result = await run_job(deps, change)

    assert [action["status"] for action in result["actions"]] == ["created"]
    assert len(await zoho.history(NEVER_RESCHEDULED)) == 1
    assert CountingConnection.sent - before <= ROUND_TRIPS_PER_RESCHEDULE
