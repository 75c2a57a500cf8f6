"""bench/e2e.py: callbacks matched to history rows, latency, throughput and backlog, from the sandbox's logs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bench.e2e import (
    HISTORY_PATH,
    callback_errors,
    callbacks_sent,
    calls_per_reschedule,
    kept_up,
    outcome,
    rows_written,
    start_time,
)

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def callback(
    record: str, seconds: float, operation: str = "update", status: int | None = 200, waited: float = 0.0
) -> dict[str, Any]:
    """A logged callback, queued by its change `waited` seconds before it was sent at `seconds`."""
    return {
        "body": {"operation": operation, "ids": [record]},
        "queued_at": at(seconds - waited),
        "sent_at": at(seconds),
        "status_code": status,
    }


def row(record: str, seconds: float, status: int = 201, path: str = HISTORY_PATH) -> dict[str, Any]:
    body = {"data": [{"Appointment_Name": {"name": "Bench", "id": record}}]}
    return {"method": "POST", "path": path, "status": status, "body": body, "at": at(seconds)}


def at_once(times: dict[str, float]) -> dict[str, tuple[float, float]]:
    """Callbacks sent the moment their change queued them."""
    return {record: (t, t) for record, t in times.items()}


def test_update_callbacks_and_written_rows_are_matched_by_record() -> None:
    deliveries = [callback("1", 0.0), callback("2", 0.1), callback("3", 0.2, "insert"), callback("4", 0.3, status=None)]
    requests = [
        row("1", 0.05),
        row("2", 0.4),
        row("2", 0.9),  # a second row for the same record: the first counts
        row("5", 0.5, status=429),
        {"method": "GET", "path": "/crm/v7/Appointments__s/1", "status": 200, "body": None, "at": at(0.01)},
    ]
    sent, rows = callbacks_sent(deliveries), rows_written(requests)
    assert sent.keys() == {"1", "2", "4"}  # the unanswered callback is offered too (and has no row)
    assert rows.keys() == {"1", "2"}

    result = outcome(sent, rows)

    assert result["offered"] == 3 and result["rows"] == 2 and result["missing_rows"] == 1
    assert result["p50_ms"] == 175.0
    assert result["max_ms"] == 300.0
    assert result["rows_per_s"] == 5.0  # 2 rows from the first change (0.0) to the last row (0.4)
    assert result["offered_per_s"] == 6.7  # (3 - 1) changes over 0.3 s: review finding 13
    assert callback_errors(deliveries) == 1


def test_latency_runs_from_the_change_and_the_sandbox_wait_is_beside_it() -> None:
    """Review finding 6: a callback that waited its turn in the sandbox waited in the latency too."""
    deliveries = [callback("1", 1.0, waited=0.9), callback("2", 1.0, waited=0.0)]
    t0 = T0.timestamp()
    result = outcome(callbacks_sent(deliveries), {"1": t0 + 1.1, "2": t0 + 1.1})
    assert result["max_ms"] == 1000.0 and result["p50_ms"] == 550.0
    assert result["wait_max_ms"] == 900.0 and result["wait_p50_ms"] == 450.0
    old_log = [callback("1", 1.0) | {"queued_at": None}]  # no queued_at: from when it was sent
    assert outcome(callbacks_sent(old_log), {"1": t0 + 1.1})["max_ms"] == 100.0


def test_unanswered_callbacks_and_unlogged_reschedules_are_missing_and_the_run_did_not_keep_up() -> None:
    """Review finding 4: offered is the driver's count; a callback with no answer fails the run."""
    sent = at_once({str(n): n * 0.01 for n in range(100)})
    rows = {str(n): n * 0.01 + 0.02 for n in range(100)}
    result = outcome(sent, rows, offered=100) | {"callback_errors": 0}
    assert result["missing_rows"] == 0 and kept_up(result, 100)
    assert not kept_up(result | {"callback_errors": 1}, 100)
    fewer = outcome(sent, rows, offered=103) | {"callback_errors": 0}  # three callbacks never logged
    assert fewer["offered"] == 103 and fewer["missing_rows"] == 3 and not kept_up(fewer, 100)
    no_row = outcome(sent, {k: v for k, v in rows.items() if k != "7"}, offered=100) | {"callback_errors": 1}
    assert no_row["missing_rows"] == 1 and not kept_up(no_row, 100)


def test_unsent_callbacks_count_in_the_backlog() -> None:
    """Changes made before offering ended whose callback still waited in the sandbox are backlog too."""
    sent = {str(n): (n * 0.01, 5.0) for n in range(100)}  # every callback sent at 5 s, long after its change
    rows = {str(n): 5.1 for n in range(100)}
    assert outcome(sent, rows, offered_until=1.0, offered=100)["backlog_at_end"] == 100


def test_a_run_that_fell_behind_has_a_backlog_and_did_not_keep_up() -> None:
    sent = at_once({str(n): n * 0.01 for n in range(100)})  # 100/s for a second
    rows = {str(n): 2.0 + n * 0.02 for n in range(100)}  # every row after the last callback
    result = outcome(sent, rows) | {"callback_errors": 0}
    assert result["backlog_at_end"] == 100
    assert not kept_up(result, 100)


def test_a_run_that_kept_up() -> None:
    sent = at_once({str(n): n * 0.01 for n in range(100)})
    rows = {str(n): n * 0.01 + 0.045 for n in range(100)}
    result = outcome(sent, rows) | {"callback_errors": 0}
    assert result["backlog_at_end"] == 5
    assert kept_up(result, 100)
    missing = outcome(sent, {k: v for k, v in rows.items() if k != "0"}) | {"callback_errors": 0}
    assert not kept_up(missing, 100)  # a row missing
    assert not kept_up(result, 110)  # the changes were made at 100/s, not the 110/s asked
    assert not kept_up({k: v for k, v in result.items() if k != "callback_errors"}, 100)  # errors not counted


def test_no_rows_yields_no_latency() -> None:
    result = outcome(at_once({"1": 0.0}), {})
    assert result["missing_rows"] == 1 and result["p99_ms"] is None


def test_each_reschedule_gets_another_start_time() -> None:
    assert len({start_time(n) for n in range(1000)}) == 1000


def test_crm_calls_are_counted_per_reschedule() -> None:
    by_endpoint = {"POST /crm/v7/Appointments_Rescheduled_History__s": 100, "GET /crm/v7/Appointments__s/{id}": 200}
    assert calls_per_reschedule(by_endpoint, 100) == {
        "GET /crm/v7/Appointments__s/{id}": 2.0,
        "POST /crm/v7/Appointments_Rescheduled_History__s": 1.0,
    }


def test_the_driver_goes_round_its_pool_distinct_within_a_run() -> None:
    from bench.e2e import Driver

    driver = Driver(stack=None, pool=["a", "b", "c", "d", "e"])  # type: ignore[arg-type]
    assert driver.take(3) == ["a", "b", "c"]
    assert driver.take(3) == ["d", "e", "a"]
    assert driver.take(5) == ["b", "c", "d", "e", "a"]
    with pytest.raises(ValueError, match="pool"):
        driver.take(6)
