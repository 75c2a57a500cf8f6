"""End to end: reschedule appointments in the sandbox, which calls the receiver; time callback to history row."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench.stack import Stack
from bench.stats import summary_ms
from tests.processes import wait_until_idle

HISTORY_PATH = "/crm/v7/Appointments_Rescheduled_History__s"
# The driver's connections to the sandbox: a reschedule's connection is busy until the sandbox has sent its
# callback (Starlette runs the background task before the next request on that connection).
MAX_CONNECTIONS = 256
SATURATION_CONCURRENCY = 32
_BASE = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)


def _at(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def start_time(n: int) -> str:
    """A distinct start time for the n-th reschedule of the whole run (minutes apart)."""
    return (_BASE + timedelta(minutes=n)).isoformat(timespec="seconds")


def callbacks_sent(deliveries: Sequence[Mapping[str, Any]]) -> dict[str, tuple[float, float]]:
    """Each rescheduled record's first update callback: record id -> (when the change queued it, when the sandbox
    sent it), epoch s. A callback the receiver did not answer counts too (its row may exist; callback_errors says)."""
    sent: dict[str, tuple[float, float]] = {}
    for entry in deliveries:
        body = entry["body"]
        if body.get("operation") != "update":
            continue
        pair = (_at(entry.get("queued_at") or entry["sent_at"]), _at(entry["sent_at"]))
        for record in body["ids"]:
            sent.setdefault(str(record), pair)
    return sent


def rows_written(requests: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Each record's first history row written (a 2xx POST in the sandbox's request log): id -> when (epoch s)."""
    rows: dict[str, float] = {}
    for entry in requests:
        if entry["method"] != "POST" or entry["path"] != HISTORY_PATH or not 200 <= entry["status"] < 300:
            continue
        for row in entry["body"]["data"]:
            rows.setdefault(str(row["Appointment_Name"]["id"]), _at(entry["at"]))
    return rows


def callback_errors(deliveries: Sequence[Mapping[str, Any]]) -> int:
    return sum(1 for e in deliveries if e["status_code"] is None or not 200 <= e["status_code"] < 300)


def outcome(
    sent: Mapping[str, tuple[float, float]],
    rows: Mapping[str, float],
    offered_until: float | None = None,
    offered: int | None = None,
) -> dict[str, Any]:
    """Latency from the change (the callback queued in the sandbox) to the row, with the sandbox's wait before
    sending beside it; throughput; and (for a paced run) the backlog when offering ended. `offered` is the driver's
    count of reschedules (default: the callbacks logged); a reschedule without a row is missing."""
    queued = {r: q for r, (q, _) in sent.items()}
    done = [rows[r] - queued[r] for r in queued if r in rows]
    count = len(sent) if offered is None else offered
    result: dict[str, Any] = {"offered": count, "rows": len(done), "missing_rows": count - len(done)}
    if not sent or not done:
        return result | summary_ms([]) | {f"wait_{k}": v for k, v in summary_ms([]).items()}
    first, last_queued = min(queued.values()), max(queued.values())
    last_row = max(rows[r] for r in queued if r in rows)
    result |= summary_ms([d * 1000 for d in done])
    result |= {f"wait_{k}": v for k, v in summary_ms([(s - q) * 1000 for q, s in sent.values()]).items()}
    result["offered_per_s"] = round((len(queued) - 1) / max(last_queued - first, 1e-3), 1)
    result["rows_per_s"] = round(len(done) / max(last_row - first, 1e-3), 1)
    first_row = min(rows[r] for r in queued if r in rows)
    result["drain_rows_per_s"] = round((len(done) - 1) / max(last_row - first_row, 1e-3), 1)
    result["span_s"] = round(last_row - first, 2)
    end = last_queued if offered_until is None else offered_until
    # Made by the end and not yet written, whether its callback was sent, still waiting in the sandbox, or lost.
    made = count - sum(1 for q in queued.values() if q > end)
    result["backlog_at_end"] = made - sum(1 for r in queued if r in rows and rows[r] <= end)
    return result


def kept_up(result: Mapping[str, Any], rate: float) -> bool:
    """A paced run kept up when the changes were made at 95 % of the asked rate or more, every callback was
    answered 2xx, every row was written, and no more than half a second's worth of reschedules were waiting for
    their row when offering ended."""
    return bool(
        result.get("offered_per_s", 0) >= 0.95 * rate
        and result.get("callback_errors", 1) == 0
        and result.get("missing_rows", 1) == 0
        and result.get("backlog_at_end", 10**9) <= rate * 0.5
    )


@dataclass
class Driver:
    """Reschedules through the sandbox's control API (no token; one Zoho callback each)."""

    stack: Stack
    pool: list[str]
    made: int = 0
    retried: int = 0
    cursor: int = 0

    def take(self, count: int) -> list[str]:
        """The next `count` appointments of the pool, going round it: distinct within a run, and spread evenly over
        the pool across runs (the sandbox, like Zoho, refuses a 21st history row for one appointment)."""
        if count > len(self.pool):
            raise ValueError(f"a run of {count} reschedules needs a pool of as many appointments ({len(self.pool)})")
        chosen = [self.pool[(self.cursor + i) % len(self.pool)] for i in range(count)]
        self.cursor = (self.cursor + count) % len(self.pool)
        return chosen

    async def create_pool(self, count: int) -> None:
        async with httpx.AsyncClient(base_url=self.stack.sandbox_url, timeout=120) as client:
            gate = asyncio.Semaphore(16)

            async def one(n: int) -> str:
                async with gate:
                    body = {"Appointment_Name": f"Bench {n}", "Appointment_Start_Time": start_time(-n - 1)}
                    answer = await client.post("/_sandbox/appointments", json=body)
                    answer.raise_for_status()
                    return str(answer.json()["data"][0]["id"])

            self.pool = list(await asyncio.gather(*(one(n) for n in range(count))))

    async def _reschedule(self, client: httpx.AsyncClient, record: str) -> None:
        """One reschedule; sent again once if the connection failed (the same start time: a second
        PATCH that went through too changes nothing and sends no callback)."""
        self.made += 1
        change = {"Appointment_Start_Time": start_time(self.made)}
        try:
            answer = await client.patch(f"/_sandbox/appointments/{record}", json=change)
        except httpx.TransportError:
            self.retried += 1
            answer = await client.patch(f"/_sandbox/appointments/{record}", json=change)
        answer.raise_for_status()

    def _client(self) -> httpx.AsyncClient:
        # Idle connections are dropped before the sandbox's uvicorn would close them (its keep-alive is 5 s).
        limits = httpx.Limits(
            max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS, keepalive_expiry=2.0
        )
        return httpx.AsyncClient(base_url=self.stack.sandbox_url, timeout=120, limits=limits)

    async def as_fast_as_possible(self, count: int) -> None:
        async with self._client() as client:
            gate = asyncio.Semaphore(SATURATION_CONCURRENCY)

            async def one(record: str) -> None:
                async with gate:
                    await self._reschedule(client, record)

            await asyncio.gather(*(one(r) for r in self.take(count)))

    async def paced(self, rate: float, seconds: float) -> tuple[int, float]:
        """Open loop: reschedule n at start + n / rate whatever the earlier ones are doing; (count, end epoch)."""
        count = min(int(rate * seconds), len(self.pool))
        # At most MAX_CONNECTIONS in flight: more would wait in httpx's pool, whose bookkeeping grows with the
        # square of the waiting requests; when the sandbox cannot take them, the rate achieved says so.
        gate = asyncio.Semaphore(MAX_CONNECTIONS)

        async def one(record: str) -> None:
            try:
                await self._reschedule(client, record)
            finally:
                gate.release()

        async with self._client() as client:
            began = time.monotonic()
            tasks = []
            for n, record in enumerate(self.take(count)):
                delay = began + n / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await gate.acquire()
                tasks.append(asyncio.create_task(one(record)))
            ended = time.time()
            await asyncio.gather(*tasks)
        return count, ended


def fresh_logs(stack: Stack) -> None:
    stack.sandbox.delete("/_sandbox/notifications").raise_for_status()
    stack.sandbox.delete("/_sandbox/requests").raise_for_status()


def set_latency(stack: Stack, latency_ms: int) -> None:
    """Every CRM call (Zoho and HubSpot paths) answered after `latency_ms`; 0: no delay."""
    if latency_ms:
        rule = {"path_prefix": "/crm/", "delay_ms": latency_ms}
        stack.sandbox.post("/_sandbox/faults", json=[rule]).raise_for_status()
    else:
        stack.sandbox.delete("/_sandbox/faults").raise_for_status()


def callbacks_logged(stack: Stack) -> int:
    count: int = stack.sandbox.get("/_sandbox/notifications").json()["count"]
    return count


def wait_for_callbacks(stack: Stack, expected: int, stall_s: float = 60) -> None:
    """Wait until the sandbox has logged `expected` callback attempts; fail when none is added for `stall_s`."""
    seen, since = -1, time.monotonic()
    while (count := callbacks_logged(stack)) < expected:
        if count != seen:
            seen, since = count, time.monotonic()
        elif time.monotonic() - since > stall_s:
            raise AssertionError(f"the sandbox sent {count} of {expected} callbacks and no more for {stall_s} s")
        time.sleep(0.2)


def settle(stack: Stack, expected_callbacks: int, timeout_s: float = 600) -> None:
    """Wait until the sandbox has sent every callback and the workers have finished every job."""
    wait_for_callbacks(stack, expected_callbacks)
    try:
        wait_until_idle(stack.store, "the workers to finish", timeout_s=timeout_s, recheck_s=0.5)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{stack.log_tail()}") from None


def calls_per_reschedule(by_endpoint: Mapping[str, int], reschedules: int) -> dict[str, float]:
    """The CRM calls the workers made per reschedule, by endpoint (the sandbox's request log counters)."""
    return {endpoint: round(count / max(reschedules, 1), 2) for endpoint, count in sorted(by_endpoint.items())}


def collect(stack: Stack, offered_until: float | None = None, offered: int | None = None) -> dict[str, Any]:
    deliveries = stack.sandbox.get("/_sandbox/notifications").json()["deliveries"]
    log = stack.sandbox.get("/_sandbox/requests").json()
    result = outcome(callbacks_sent(deliveries), rows_written(log["requests"]), offered_until, offered)
    calls = calls_per_reschedule(log["by_endpoint"], result["offered"])
    return result | {"callback_errors": callback_errors(deliveries), "crm_calls_per_reschedule": calls}
