"""What a job run counts (workers/jobs.py): crmflow_jobs_total, crmflow_actions_total and the event lag."""

from __future__ import annotations

from arq.connections import ArqRedis

from tests.workers.test_jobs import HISTORY_PATH, NEVER_RESCHEDULED, Zoho, notify, result, soon, work, zoho, zoho_error
from workers.metrics import REGISTRY

__all__ = ["zoho"]  # the fixture

RULE = {"rule": "zoho-log-reschedules", "action": "log_reschedule_history"}


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def jobs(outcome: str) -> float:
    return value("crmflow_jobs_total", source="zoho", outcome=outcome)


def actions(outcome: str) -> float:
    return value("crmflow_actions_total", **RULE, outcome=outcome)


async def test_a_reschedule_counts_a_processed_job_a_created_action_and_its_lag(
    redis: ArqRedis, redis_url: str, zoho: Zoho
) -> None:
    await notify(redis, NEVER_RESCHEDULED, "insert")
    await work(redis_url, zoho)
    await zoho.reschedule(NEVER_RESCHEDULED, soon(5))
    processed, created = jobs("processed"), actions("created")
    lags = value("crmflow_event_lag_seconds_count", source="zoho")

    await notify(redis, NEVER_RESCHEDULED)
    await work(redis_url, zoho)

    assert jobs("processed") == processed + 1
    assert actions("created") == created + 1
    assert value("crmflow_event_lag_seconds_count", source="zoho") == lags + 1


async def test_retries_then_a_dead_letter_are_counted_per_run(redis: ArqRedis, redis_url: str, zoho: Zoho) -> None:
    await notify(redis, NEVER_RESCHEDULED, "insert")
    await work(redis_url, zoho)
    await zoho.reschedule(NEVER_RESCHEDULED, soon(6))
    await zoho.faults({"method": "POST", "path_prefix": HISTORY_PATH, "status": 500})
    retried, dead, failed = jobs("retried"), jobs("dead_lettered"), actions("failed")
    errors = value("crmflow_crm_requests_total", source="zoho", operation="create_history", status="500")

    await notify(redis, NEVER_RESCHEDULED)
    await work(redis_url, zoho)  # WORKER_MAX_TRIES=4 (tests/workers/harness.py)

    assert jobs("retried") == retried + 3
    assert jobs("dead_lettered") == dead + 1
    assert actions("failed") == failed + 4
    assert value("crmflow_crm_requests_total", source="zoho", operation="create_history", status="500") == errors + 4


async def test_a_job_whose_action_is_dead_lettered_counts_dead_lettered_not_processed(
    redis: ArqRedis, redis_url: str, zoho: Zoho
) -> None:
    await notify(redis, NEVER_RESCHEDULED, "insert")
    await work(redis_url, zoho)
    await zoho.reschedule(NEVER_RESCHEDULED, soon(6))
    await zoho.faults(zoho_error(400, "INVALID_DATA", "invalid data", "Rescheduled_By"))
    processed, dead = jobs("processed"), jobs("dead_lettered")

    event = await notify(redis, NEVER_RESCHEDULED)
    await work(redis_url, zoho)

    # The job's own status stays "processed"; it kept the action's letter, as its event log entry says.
    assert (await result(redis, event))["status"] == "processed"
    assert jobs("dead_lettered") == dead + 1
    assert jobs("processed") == processed
