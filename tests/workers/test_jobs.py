"""process_change on a real arq worker (burst mode) and real Redis, with Zoho played by the in-process sandbox.

Covers the issue's worker contract: one correct history row per reschedule however often and in whatever
order notifications arrive, every documented error of the history endpoint, and token refresh.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis

from sandbox.app import create_app as create_sandbox
from sandbox.config import SandboxConfig
from tests.workers.harness import enqueue_change, job_result, run_worker
from workers import keys
from workers.contract import ChangeEvent
from workers.deadletters import DeadLetters
from workers.queue import enqueue_events

NEVER_RESCHEDULED = "5545974000002555001"  # "AC Repair - James", Scheduled
RESCHEDULED_ONCE = "5545974000002555012"  # "Boiler Service - Maria"
API_USER = {"name": "Patricia Boyle", "id": "5545974000000393001"}
HISTORY_PATH = "/crm/v7/Appointments_Rescheduled_History__s"


class Zoho:
    """The sandbox, driven the way a CRM user would drive Zoho, plus its control API."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self._token: str | None = None

    async def token(self) -> str:
        # One token for the test's own calls, as a real client would (Zoho throttles refreshes).
        if self._token is None:
            self._token = await self._grant()
        return self._token

    async def _grant(self) -> str:
        response = await self.http.post("/oauth/v2/token", data=SandboxConfig().refresh_form())
        return str(response.json()["access_token"])

    async def reschedule(self, record_id: str, start: datetime, **extra: Any) -> None:
        body = {"data": [{"id": record_id, "Appointment_Start_Time": start.isoformat(timespec="seconds"), **extra}]}
        headers = {"Authorization": f"Zoho-oauthtoken {await self.token()}"}
        response = await self.http.put("/crm/v7/Appointments__s", json=body, headers=headers)
        assert response.status_code == 200, response.text

    async def appointment(self, record_id: str) -> dict[str, Any]:
        headers = {"Authorization": f"Zoho-oauthtoken {await self.token()}"}
        response = await self.http.get(f"/crm/v7/Appointments__s/{record_id}", headers=headers)
        data: dict[str, Any] = response.json()["data"][0]
        return data

    async def history(self, record_id: str) -> list[dict[str, Any]]:
        rows = (await self.http.get("/_sandbox/history")).json()["data"]
        return [row for row in rows if row["Appointment_Name"]["id"] == record_id]

    async def faults(self, *rules: dict[str, Any]) -> None:
        response = await self.http.post("/_sandbox/faults", json=list(rules))
        assert response.status_code == 200, response.text

    async def count(self, endpoint: str) -> int:
        counts: dict[str, int] = (await self.http.get("/_sandbox/requests")).json()["by_endpoint"]
        return counts.get(endpoint, 0)


@pytest.fixture
async def zoho() -> AsyncIterator[Zoho]:
    app = create_sandbox(SandboxConfig())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox") as http:
        yield Zoho(http)


async def notify(redis: ArqRedis, record_id: str, operation: str = "update") -> ChangeEvent:
    """What the receiver does for one Zoho callback: a new event (new server_time) for the record."""
    return await enqueue_change(redis, "zoho", "Appointments__s", record_id, operation=operation)


async def work(redis_url: str, zoho: Zoho, **overrides: Any) -> None:
    """Run one worker until the queue is empty (including retries it deferred)."""
    await run_worker(redis_url, zoho.http, **overrides)


async def result(redis: ArqRedis, event: ChangeEvent) -> Any:
    return await job_result(redis, event)


def soon(days: int, hour: int = 10) -> datetime:
    base = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return base + timedelta(days=days, hours=hour)


async def test_reschedule_logs_one_correct_row(redis: ArqRedis, redis_url: str, zoho: Zoho) -> None:
    baseline = await notify(redis, NEVER_RESCHEDULED, "insert")
    await work(redis_url, zoho)
    before = await zoho.appointment(NEVER_RESCHEDULED)
    new_start = soon(5)
    await zoho.reschedule(NEVER_RESCHEDULED, new_start, Reschedule_Reason="By Customer", Reschedule_Note="Away")
    after = await zoho.appointment(NEVER_RESCHEDULED)

    changed = await notify(redis, NEVER_RESCHEDULED)
    await work(redis_url, zoho)

    assert (await result(redis, baseline))["status"] == "processed"
    outcome = await result(redis, changed)
    assert outcome["changed"] == ["Appointment_Start_Time", "Reschedule_Count"]
    assert [a["status"] for a in outcome["actions"]] == ["created"]
    (row,) = await zoho.history(NEVER_RESCHEDULED)
    assert row["Appointment_Name"] == {"name": "AC Repair - James", "id": NEVER_RESCHEDULED}
    assert row["Rescheduled_From"] == before["Appointment_Start_Time"]
    assert row["Rescheduled_To"] == after["Appointment_Start_Time"] == new_start.isoformat(timespec="seconds")
    assert row["Rescheduled_Time"] == after["Rescheduled_Time"]
    assert {"name": row["Rescheduled_By"]["name"], "id": row["Rescheduled_By"]["id"]} == API_USER
    assert row["Reschedule_Reason"] == "By Customer"
    assert row["Reschedule_Note"] == "Away"


async def test_first_seen_rescheduled_appointment_is_logged_from_its_own_fields(
    redis: ArqRedis, redis_url: str, zoho: Zoho
) -> None:
    record = await zoho.appointment(RESCHEDULED_ONCE)

    event = await notify(redis, RESCHEDULED_ONCE)
    await work(redis_url, zoho)

    assert (await result(redis, event))["first_seen"] is True
    (row,) = await zoho.history(RESCHEDULED_ONCE)
    assert (row["Rescheduled_From"], row["Rescheduled_To"]) == (record["Rescheduled_From"], record["Rescheduled_To"])


async def test_first_seen_never_rescheduled_appointment_logs_nothing(
    redis: ArqRedis, redis_url: str, zoho: Zoho
) -> None:
    await notify(redis, NEVER_RESCHEDULED)
    await work(redis_url, zoho)

    assert await zoho.history(NEVER_RESCHEDULED) == []


async def test_duplicate_notifications_write_one_row(redis: ArqRedis, redis_url: str, zoho: Zoho) -> None:
    await notify(redis, NEVER_RESCHEDULED, "insert")
    await work(redis_url, zoho)
    await zoho.reschedule(NEVER_RESCHEDULED, soon(6))

    event = await notify(redis, NEVER_RESCHEDULED)
    await enqueue_events(redis, [event])  # the same callback redelivered: same job id, not queued
    await notify(redis, NEVER_RESCHEDULED)  # a second callback for the same change
    await work(redis_url, zoho)
    await notify(redis, NEVER_RESCHEDULED)  # and one more after the first were done
    await work(redis_url, zoho)

    assert len(await zoho.history(NEVER_RESCHEDULED)) == 1
    assert await zoho.count(f"POST {HISTORY_PATH}") == 1


async def test_out_of_order_notifications_end_in_the_same_state(redis: ArqRedis, redis_url: str, zoho: Zoho) -> None:
    await notify(redis, NEVER_RESCHEDULED, "insert")
    await work(redis_url, zoho)
    original = (await zoho.appointment(NEVER_RESCHEDULED))["Appointment_Start_Time"]
    await zoho.reschedule(NEVER_RESCHEDULED, soon(6))
    first = await notify(redis, NEVER_RESCHEDULED)
    await zoho.reschedule(NEVER_RESCHEDULED, soon(7), Reschedule_Reason="By Team")
    # As when the first job had started before the second notification came: no coalescing (queue.py).
    await redis.delete(keys.queued_marker("zoho", "Appointments__s", NEVER_RESCHEDULED))
    second = await notify(redis, NEVER_RESCHEDULED)

    # Deliver the later notification first, then the earlier one (arq runs jobs in score order).
    second_score = await redis.zscore("crmflow:queue", second.job_id())
    assert second_score is not None
    await redis.zadd("crmflow:queue", {first.job_id(): second_score, second.job_id(): second_score - 1000})
    await work(redis_url, zoho)

    # Both reschedules happened before either job ran. Zoho's record describes the latest one fully, so it
    # is logged from Zoho's own fields; the one before it (no time or user kept by Zoho) is reported.
    (row,) = await zoho.history(NEVER_RESCHEDULED)
    assert (row["Rescheduled_From"], row["Rescheduled_To"]) == (_zoho(soon(6)), _zoho(soon(7)))
    assert row["Reschedule_Reason"] == "By Team"
    (letter,) = await DeadLetters(redis).all()
    assert letter.error_code == "MISSED_RESCHEDULE"
    assert letter.context["missed"] == {"Rescheduled_From": original, "Rescheduled_To": _zoho(soon(6))}
    assert (await result(redis, first))["changed"] == []


def _zoho(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


async def test_stale_read_never_undoes_newer_state(redis: ArqRedis, redis_url: str, zoho: Zoho) -> None:
    from workers.diff import Snapshot
    from workers.snapshots import load_snapshot, save_snapshot

    future = datetime.now(UTC) + timedelta(days=1)
    newer = Snapshot(future, {"Appointment_Start_Time": "2030-01-01T09:00:00+00:00", "Status": "Scheduled"})
    await save_snapshot(redis, "zoho", "Appointments__s", NEVER_RESCHEDULED, newer)

    event = await notify(redis, NEVER_RESCHEDULED)
    await work(redis_url, zoho)

    assert (await result(redis, event))["status"] == "stale"
    assert await load_snapshot(redis, "zoho", "Appointments__s", NEVER_RESCHEDULED) == newer
    assert await zoho.history(NEVER_RESCHEDULED) == []


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 429},
        {"status": 500},
        {"status": 503},
        {"status": 500, "after": True},  # Zoho wrote the row, the answer was lost
    ],
    ids=["429", "500", "503", "answer-lost"],
)
async def test_transient_history_errors_are_retried_to_one_row(
    redis: ArqRedis, redis_url: str, zoho: Zoho, fault: dict[str, Any]
) -> None:
    await notify(redis, NEVER_RESCHEDULED, "insert")
    await work(redis_url, zoho)
    await zoho.reschedule(NEVER_RESCHEDULED, soon(6))
    await zoho.faults({"method": "POST", "path_prefix": HISTORY_PATH, "times": 2, **fault})

    event = await notify(redis, NEVER_RESCHEDULED)
    await work(redis_url, zoho)

    outcome = await result(redis, event)
    assert outcome["status"] == "processed"
    assert len(await zoho.history(NEVER_RESCHEDULED)) == 1
    assert await DeadLetters(redis).all() == []


class TimeoutOnce(httpx.AsyncBaseTransport):
    """The sandbox behind a network that times out the first history POST."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.tripped = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == HISTORY_PATH and not self.tripped:
            self.tripped = True
            raise httpx.ReadTimeout("timed out", request=request)
        return await self.inner.handle_async_request(request)


async def test_timeout_is_retried(redis: ArqRedis, redis_url: str, zoho: Zoho) -> None:
    await notify(redis, NEVER_RESCHEDULED, "insert")
    await work(redis_url, zoho)
    await zoho.reschedule(NEVER_RESCHEDULED, soon(6))
    flaky = TimeoutOnce(zoho.http._transport)

    await notify(redis, NEVER_RESCHEDULED)
    async with httpx.AsyncClient(transport=flaky, base_url="http://sandbox") as http:
        await work(redis_url, Zoho(http))

    assert flaky.tripped
    assert len(await zoho.history(NEVER_RESCHEDULED)) == 1


async def test_retries_run_out_into_a_dead_letter(redis: ArqRedis, redis_url: str, zoho: Zoho) -> None:
    await notify(redis, NEVER_RESCHEDULED, "insert")
    await work(redis_url, zoho)
    await zoho.reschedule(NEVER_RESCHEDULED, soon(6))
    await zoho.faults({"method": "POST", "path_prefix": HISTORY_PATH, "status": 500})

    event = await notify(redis, NEVER_RESCHEDULED)
    await work(redis_url, zoho)

    assert (await result(redis, event))["status"] == "dead_lettered"
    (letter,) = await DeadLetters(redis).all()
    assert (letter.error_code, letter.tries, letter.record_id) == ("HTTP_500", 4, NEVER_RESCHEDULED)
    assert letter.message.startswith("gave up after 4 tries")
    assert await zoho.count(f"POST {HISTORY_PATH}") == 4


def zoho_error(status: int, code: str, message: str, field: str | None = None) -> dict[str, Any]:
    details = {"api_name": field, "json_path": f"$.data[0].{field}"} if field else {}
    entry = {"code": code, "details": details, "message": message, "status": "error"}
    return {"method": "POST", "path_prefix": HISTORY_PATH, "status": status, "body": {"data": [entry]}}


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (zoho_error(403, "NOT_ALLOWED", "You have tried to make an entry without rescheduling"), "NOT_ALLOWED"),
        (zoho_error(400, "INVALID_DATA", "invalid data", "Rescheduled_By"), "INVALID_DATA"),
        (zoho_error(400, "MANDATORY_NOT_FOUND", "required field not found", "Rescheduled_To"), "MANDATORY_NOT_FOUND"),
        (zoho_error(400, "IN_REQUEST_LIMIT_EXCEEDED", "limit exceeded"), "IN_REQUEST_LIMIT_EXCEEDED"),
    ],
    ids=["NOT_ALLOWED", "INVALID_DATA", "MANDATORY_NOT_FOUND", "IN_REQUEST_LIMIT_EXCEEDED"],
)
async def test_final_history_errors_are_kept_not_retried(
    redis: ArqRedis, redis_url: str, zoho: Zoho, fault: dict[str, Any], code: str
) -> None:
    await notify(redis, NEVER_RESCHEDULED, "insert")
    await work(redis_url, zoho)
    await zoho.reschedule(NEVER_RESCHEDULED, soon(6))
    await zoho.faults(fault)

    event = await notify(redis, NEVER_RESCHEDULED)
    await work(redis_url, zoho)

    outcome = await result(redis, event)
    assert outcome["actions"] == [
        {"rule": "zoho-log-reschedules", "action": "log_reschedule_history", "status": "dead_lettered", "error": code}
    ]
    assert await zoho.count(f"POST {HISTORY_PATH}") == 1
    (letter,) = await DeadLetters(redis).all()
    assert (letter.error_code, letter.rule, letter.action) == (code, "zoho-log-reschedules", "log_reschedule_history")
    assert letter.event["record_id"] == NEVER_RESCHEDULED


async def test_twenty_row_cap_from_zoho_itself(redis: ArqRedis, redis_url: str, zoho: Zoho) -> None:
    await notify(redis, NEVER_RESCHEDULED, "insert")
    await work(redis_url, zoho)
    for day in range(21):
        await zoho.reschedule(NEVER_RESCHEDULED, soon(3 + day))
        await notify(redis, NEVER_RESCHEDULED)
        await work(redis_url, zoho)

    assert len(await zoho.history(NEVER_RESCHEDULED)) == 20
    (letter,) = await DeadLetters(redis).all()
    assert letter.error_code == "IN_REQUEST_LIMIT_EXCEEDED"


async def test_expired_token_is_refreshed_once(redis: ArqRedis, redis_url: str, zoho: Zoho) -> None:
    await notify(redis, NEVER_RESCHEDULED, "insert")
    await work(redis_url, zoho)
    grants = await zoho.count("POST /oauth/v2/token")
    await zoho.http.post("/_sandbox/tokens/expire")

    event = await notify(redis, NEVER_RESCHEDULED)
    await work(redis_url, zoho)

    assert (await result(redis, event))["status"] == "processed"
    assert await zoho.count("POST /oauth/v2/token") == grants + 1


async def test_deleted_or_unknown_appointments_are_not_errors(redis: ArqRedis, redis_url: str, zoho: Zoho) -> None:
    gone = await notify(redis, "5545974000009999999")
    deleted = await notify(redis, NEVER_RESCHEDULED, "delete")
    await work(redis_url, zoho)

    assert (await result(redis, gone))["status"] == "gone"
    assert (await result(redis, deleted))["status"] == "deleted"
    assert await DeadLetters(redis).all() == []


async def test_a_job_that_runs_out_of_time_is_retried_not_lost(redis: ArqRedis, redis_url: str, zoho: Zoho) -> None:
    # arq fails a job that passes its timeout for good; without the job's own time budget this change
    # would vanish (no retry, no dead letter) and a redelivery would be a "duplicate" for a day.
    await notify(redis, NEVER_RESCHEDULED, "insert")
    await work(redis_url, zoho)
    await zoho.reschedule(NEVER_RESCHEDULED, soon(6))
    await zoho.faults({"method": "GET", "path_prefix": "/crm/v7/Appointments__s/", "delay_ms": 4000, "times": 1})

    event = await notify(redis, NEVER_RESCHEDULED)
    await work(redis_url, zoho, WORKER_JOB_TIMEOUT_S=5)

    from arq.jobs import Job

    from workers.contract import loads

    info = await Job(event.job_id(), redis, _deserializer=loads).result_info()
    assert info is not None and info.success and info.job_try == 2
    assert len(await zoho.history(NEVER_RESCHEDULED)) == 1


async def test_unexpected_errors_are_retried_then_kept(redis: ArqRedis, redis_url: str, zoho: Zoho) -> None:
    await redis.set("crmflow:snapshot:zoho:Appointments__s:" + NEVER_RESCHEDULED, b"{not json")

    event = await notify(redis, NEVER_RESCHEDULED)
    await work(redis_url, zoho)

    assert (await result(redis, event))["status"] == "dead_lettered"
    (letter,) = await DeadLetters(redis).all()
    assert (letter.error_code, letter.tries) == ("UNEXPECTED", 4)
    assert "JSONDecodeError" in letter.message


async def test_a_lagging_read_is_retried_a_few_times(redis: ArqRedis, redis_url: str, zoho: Zoho) -> None:
    await notify(redis, NEVER_RESCHEDULED, "insert")
    await work(redis_url, zoho)
    # Zoho announces a start-time change a minute after the state we saw, yet GET returns that same state.
    later = int((datetime.now(UTC) + timedelta(minutes=1)).timestamp() * 1000)
    event = ChangeEvent(
        source="zoho",
        module="Appointments__s",
        record_id=NEVER_RESCHEDULED,
        operation="update",
        changed_fields=("Appointment_Start_Time",),
        notified_at_ms=later,
    )
    await enqueue_events(redis, [event])
    await work(redis_url, zoho)

    from arq.jobs import Job

    from workers.contract import loads

    info = await Job(event.job_id(), redis, _deserializer=loads).result_info()
    assert info is not None and info.job_try == 3
    assert info.result["status"] == "processed"


async def test_dead_letters_keep_what_the_change_was(redis: ArqRedis, redis_url: str, zoho: Zoho) -> None:
    await notify(redis, NEVER_RESCHEDULED, "insert")
    await work(redis_url, zoho)
    before = (await zoho.appointment(NEVER_RESCHEDULED))["Appointment_Start_Time"]
    await zoho.reschedule(NEVER_RESCHEDULED, soon(6))
    await zoho.faults(zoho_error(403, "NOT_ALLOWED", "not rescheduled"))

    await notify(redis, NEVER_RESCHEDULED)
    await work(redis_url, zoho)

    (letter,) = await DeadLetters(redis).all()
    assert letter.context["changed"]["Appointment_Start_Time"] == {"old": before, "new": _zoho(soon(6))}


async def test_redis_failing_at_the_start_of_a_job_is_a_retry_not_a_failure() -> None:
    # Otherwise arq would record the job as failed for good (if Redis is back by then): the change lost.
    from arq import Retry

    from workers.actions.dispatch import Actions
    from workers.fetch import CrmClients
    from workers.jobs import RetryPolicy, WorkerDeps, process_change
    from workers.ledger import Ledger
    from workers.queue import connect_queue
    from workers.rules.model import RuleSet

    dead = connect_queue("redis://127.0.0.1:1/0")
    deps = WorkerDeps(
        redis=dead,
        rules=RuleSet(),
        crm=CrmClients(),
        actions=Actions(crm=CrmClients(), ledger=Ledger(dead)),
        deadletters=DeadLetters(dead),
        policy=RetryPolicy(max_tries=4, base_s=0.01, cap_s=0.05),
        work_timeout_s=5,
        lock_timeout_s=15,
    )
    event = {
        "source": "zoho",
        "module": "Appointments__s",
        "record_id": "1",
        "operation": "update",
        "notified_at_ms": 1,
    }

    with pytest.raises(Retry):
        await process_change({"deps": deps, "job_try": 1}, event | {"notified_at_ms": 1})
    await dead.aclose()


async def test_a_burst_of_notifications_for_one_appointment_costs_one_fetch(
    redis: ArqRedis, redis_url: str, zoho: Zoho
) -> None:
    await notify(redis, NEVER_RESCHEDULED, "insert")
    await work(redis_url, zoho)
    fetches = await zoho.count("GET /crm/v7/Appointments__s/{id}")
    await zoho.reschedule(NEVER_RESCHEDULED, soon(6))
    first = await notify(redis, NEVER_RESCHEDULED)
    await notify(redis, NEVER_RESCHEDULED)  # the same change announced again: coalesced while the job waits
    await notify(redis, NEVER_RESCHEDULED)
    await work(redis_url, zoho)

    assert await zoho.count("GET /crm/v7/Appointments__s/{id}") == fetches + 1
    assert len(await zoho.history(NEVER_RESCHEDULED)) == 1
    assert (await result(redis, first))["status"] == "processed"
