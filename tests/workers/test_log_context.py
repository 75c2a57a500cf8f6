"""workers/log_context.py: the fields, their nesting, and every line of a real worker's job carrying them."""

from __future__ import annotations

import asyncio
import logging

import pytest
from arq.connections import ArqRedis

from crmflow.logs import ContextFilter
from tests.workers.test_jobs import HISTORY_PATH, NEVER_RESCHEDULED, Zoho, notify, soon, work, zoho
from workers.log_context import bind, current, from_job_id, log_context

__all__ = ["zoho"]  # the sandbox fixture, shared with test_jobs


def test_contexts_nest_and_unwind() -> None:
    with log_context(job_id="j", source="zoho", record_id="1"):
        with log_context(rule="r", action="a", record_id=None):
            assert dict(current()) == {"job_id": "j", "source": "zoho", "record_id": "1", "rule": "r", "action": "a"}
        assert dict(current()) == {"job_id": "j", "source": "zoho", "record_id": "1"}
    assert dict(current()) == {}


def test_only_known_fields_are_taken() -> None:
    with pytest.raises(ValueError, match="not log context fields: email"), log_context(email="x"):
        pass


async def test_a_binding_stays_inside_its_task() -> None:
    async def job() -> dict[str, str]:
        bind(job_id="j1", source="zoho")
        return dict(current())

    assert await asyncio.create_task(job()) == {"job_id": "j1", "source": "zoho"}
    assert dict(current()) == {}


def test_a_job_id_tells_its_record() -> None:
    assert from_job_id("zoho:Appointments__s:5545974000002555001:update:1763700000001") == {
        "job_id": "zoho:Appointments__s:5545974000002555001:update:1763700000001",
        "source": "zoho",
        "module": "Appointments__s",
        "record_id": "5545974000002555001",
    }
    assert from_job_id("hubspot:appointments:30118:update:1:replay:2:hubspot-log:add_note")["record_id"] == "30118"
    assert from_job_id("cron:thing") == {"job_id": "cron:thing"}


async def test_every_line_about_a_job_names_it_and_its_record_and_action_lines_their_rule(
    redis: ArqRedis, redis_url: str, zoho: Zoho, caplog: pytest.LogCaptureFixture
) -> None:
    await notify(redis, NEVER_RESCHEDULED, "insert")
    await work(redis_url, zoho)
    await zoho.reschedule(NEVER_RESCHEDULED, soon(6))
    await zoho.faults({"method": "POST", "path_prefix": HISTORY_PATH, "times": 1, "status": 500})
    event = await notify(redis, NEVER_RESCHEDULED)
    caplog.handler.addFilter(ContextFilter())
    caplog.set_level(logging.INFO)

    await work(redis_url, zoho)

    job_id = event.job_id()
    about = [r for r in caplog.records if job_id in r.getMessage() or r.name.startswith("crmflow.jobs")]
    record = {"job_id": job_id, "source": "zoho", "module": "Appointments__s", "record_id": NEVER_RESCHEDULED}
    messages = [r.getMessage() for r in about]
    assert any("→" in m for m in messages) and any("←" in m for m in messages), messages
    assert any("try 1 failed (HTTP_500: Zoho server error (HTTP 500))" in m for m in messages), messages
    for line in about:
        context = getattr(line, "crmflow_context", {})
        assert {name: context.get(name) for name in record} == record, (line.getMessage(), context)
    (start,) = [r for r in about if "→" in r.getMessage() and "try=2" in r.getMessage()]
    assert start.getMessage().endswith(f"{job_id}:process_change(…) try=2")
    actions = [r for r in caplog.records if r.name.startswith("crmflow.actions") or "history row" in r.getMessage()]
    assert actions and all(
        getattr(r, "crmflow_context", {}).get("rule") == "zoho-log-reschedules"
        and getattr(r, "crmflow_context", {}).get("action") == "log_reschedule_history"
        for r in actions
    )
    retry = [r for r in about if "try 1 failed" in r.getMessage()]
    assert retry and "rule" not in getattr(retry[0], "crmflow_context", {})
