"""`crmflow demo`: Redis, sandbox, receiver and a worker on loopback; one reschedule, shown end to end."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import uvicorn
from arq.jobs import Job
from starlette.applications import Starlette

from crmflow.embedded_redis import EmbeddedRedis, free_port, redis_reachable, with_database
from receiver.app import create_app as create_receiver
from receiver.config import ReceiverConfig
from receiver.enqueue import connect_queue
from sandbox.app import create_app as create_sandbox
from sandbox.config import SandboxConfig
from workers.config import WorkerConfig
from workers.contract import loads
from workers.main import build_worker
from workers.rules.load import load_rules

NOTIFY_TOKEN = "demo-notify-token"
# On a Redis that is already running, the demo keeps to this logical database, so that its jobs never meet
# the workers of a real deployment on that server (they use database 0 unless REDIS_URL says otherwise).
DEMO_DATABASE = 15
WAIT_S = 15.0


def _json(data: Any) -> str:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()


async def _until(check: Callable[[], Awaitable[Any]], what: str) -> Any:
    """Poll `check` until it returns something truthy, or fail after WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.005)
    raise TimeoutError(f"the demo waited {WAIT_S:.0f}s for {what}")


@asynccontextmanager
async def _serve(app: Starlette, port: int) -> AsyncIterator[str]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    await _until(lambda: asyncio.sleep(0, server.started or task.done()), f"a server on port {port}")
    if task.done():
        task.result()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


class Demo:
    """The demo's steps, each printing what a reader should see."""

    def __init__(self, out: Callable[[str], None], sandbox: httpx.AsyncClient, receiver_url: str) -> None:
        self.out = out
        self.sandbox = sandbox
        self.receiver_url = receiver_url
        self.token = ""

    async def delivery(self, record_id: str, operation: str) -> dict[str, Any]:
        """The sandbox's callback about `record_id`, once the receiver has answered it."""

        async def find() -> dict[str, Any] | None:
            log = (await self.sandbox.get("/_sandbox/notifications")).json()["deliveries"]
            for entry in log:
                if record_id in entry["body"]["ids"] and entry["body"]["operation"] == operation:
                    return entry if entry["status_code"] is not None or entry["error"] else None
            return None

        entry: dict[str, Any] = await _until(find, f"Zoho's {operation} notification")
        if entry["status_code"] != 200:
            raise RuntimeError(f"the receiver refused the notification: {entry}")
        return entry

    async def create(self, record_id: str, start: datetime) -> None:
        body = {"id": record_id, "Appointment_Name": "Demo - Boiler Service", "Appointment_Start_Time": _zoho(start)}
        response = await self.sandbox.post("/_sandbox/appointments", json=body)
        response.raise_for_status()
        self.out(f"1. Created appointment {record_id} starting {_zoho(start)} in the Zoho sandbox.")

    async def reschedule(self, record_id: str, start: datetime) -> None:
        form = SandboxConfig().refresh_form()
        self.token = (await self.sandbox.post("/oauth/v2/token", data=form)).json()["access_token"]
        change = {
            "id": record_id,
            "Appointment_Start_Time": _zoho(start),
            "Reschedule_Reason": "By Customer",
            "Reschedule_Note": "Customer asked for the afternoon",
        }
        response = await self.sandbox.put(
            "/crm/v7/Appointments__s",
            json={"data": [change]},
            headers={"Authorization": f"Zoho-oauthtoken {self.token}"},
        )
        response.raise_for_status()
        self.out(f"2. Rescheduled it to {_zoho(start)} through Zoho's API (PUT /crm/v7/Appointments__s).")

    async def history(self, record_id: str) -> list[dict[str, Any]]:
        rows = (await self.sandbox.get("/_sandbox/history")).json()["data"]
        return [row for row in rows if row["Appointment_Name"]["id"] == record_id]


async def _job(redis_url: str, job_id: str) -> dict[str, Any]:
    redis = connect_queue(redis_url)
    try:

        async def finished() -> Any:
            return await Job(job_id, redis, _deserializer=loads).result_info()

        info = await _until(finished, f"job {job_id}")
        return {
            "job_id": job_id,
            "function": info.function,
            "try": info.job_try,
            "enqueued": info.enqueue_time.isoformat(timespec="milliseconds"),
            "finished": info.finish_time.isoformat(timespec="milliseconds"),
            "result": info.result,
        }
    finally:
        await redis.aclose()


async def run_demo(*, redis_url: str, rules_path: str, out: Callable[[str], None] = print) -> None:
    """Start everything on loopback, reschedule one appointment, print the notification, job and history row."""
    async with AsyncExitStack() as stack:
        demo_url = with_database(redis_url, DEMO_DATABASE)
        if redis_reachable(demo_url):
            out(f"Redis     {demo_url} (already running; database {DEMO_DATABASE}, apart from crmflow's own queue)")
            redis_url = demo_url
        else:
            server = stack.enter_context(EmbeddedRedis())
            out(f"Redis     {server.url} (private redis-server: nothing answered at {redis_url})")
            redis_url = server.url
        receiver_port, sandbox_port = free_port(), free_port()
        receiver_url = f"http://127.0.0.1:{receiver_port}"
        sandbox_config = SandboxConfig(notify_url=f"{receiver_url}/webhooks/zoho", notify_token=NOTIFY_TOKEN)
        sandbox_url = await stack.enter_async_context(_serve(create_sandbox(sandbox_config), sandbox_port))
        out(f"Sandbox   {sandbox_url} (Zoho accounts server and CRM API emulator)")
        receiver_config = ReceiverConfig.model_validate(
            {"REDIS_URL": redis_url, "ZOHO_NOTIFY_TOKEN": NOTIFY_TOKEN, "ZOHO_CHANNEL_IDS": sandbox_config.channel_id}
        )
        await stack.enter_async_context(_serve(create_receiver(receiver_config), receiver_port))
        out(f"Receiver  {receiver_url}/webhooks/zoho")
        worker = build_worker(
            _worker_config(redis_url, sandbox_url, sandbox_config), load_rules(rules_path), handle_signals=False
        )
        worker_task = asyncio.create_task(worker.main())
        stack.push_async_callback(_stop_worker, worker, worker_task)
        out(f"Worker    arq, rules from {rules_path}\n")
        sandbox = await stack.enter_async_context(httpx.AsyncClient(base_url=sandbox_url, timeout=10))
        await _story(Demo(out, sandbox, receiver_url), redis_url)
    out("\nStopped everything the demo started.")


async def _story(demo: Demo, redis_url: str) -> None:
    # A fresh id each run, so state kept in Redis by earlier runs never meets this appointment.
    record_id = f"55459740{time.time_ns() // 1000 % 10**11:011d}"
    day = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
    await demo.create(record_id, day.replace(hour=9))
    created = await demo.delivery(record_id, "insert")
    await _job(redis_url, f"zoho:Appointments__s:{record_id}:insert:{created['body']['server_time']}")
    started = time.perf_counter()
    await demo.reschedule(record_id, day.replace(hour=14))
    rows = await _until(lambda: demo.history(record_id), "the history row")
    elapsed_ms = (time.perf_counter() - started) * 1000
    delivery = await demo.delivery(record_id, "update")
    job = await _job(redis_url, f"zoho:Appointments__s:{record_id}:update:{delivery['body']['server_time']}")
    demo.out("\nThe notification Zoho sent to the receiver:\n" + _json(delivery["body"]))
    demo.out("\nThe job the receiver queued and a worker ran:\n" + _json(job))
    demo.out("\nThe history row crmflow wrote (Appointments_Rescheduled_History__s):\n" + _json(rows[0]))
    demo.out(f"\nReschedule to history row: {elapsed_ms:.0f} ms.")
    again = await demo.sandbox.post(f"{demo.receiver_url}/webhooks/zoho", json=delivery["body"])
    await asyncio.sleep(0.5)
    count = len(await demo.history(record_id))
    demo.out(f"3. Redelivered the same notification: receiver answered {again.json()}; history rows now: {count}.")
    if count != 1:
        raise RuntimeError(f"expected exactly one history row, found {count}")


def _worker_config(redis_url: str, sandbox_url: str, sandbox: SandboxConfig) -> WorkerConfig:
    return WorkerConfig.model_validate(
        {
            "REDIS_URL": redis_url,
            "ZOHO_API_DOMAIN": sandbox_url,
            "ZOHO_ACCOUNTS_URL": sandbox_url,
            "ZOHO_CLIENT_ID": sandbox.client_id,
            "ZOHO_CLIENT_SECRET": sandbox.client_secret,
            "ZOHO_REFRESH_TOKEN": sandbox.refresh_token,
        }
    )


async def _stop_worker(worker: Any, task: asyncio.Task[None]) -> None:
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task
    await worker.close()


def _zoho(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")
