"""`crmflow demo`: Redis, sandbox, receiver and a worker on loopback; a Zoho and a HubSpot reschedule, end to end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import uvicorn
from starlette.applications import Starlette

from crmflow.embedded_redis import EmbeddedRedis, free_port, redis_reachable, with_database
from receiver.app import create_app as create_receiver
from receiver.config import ReceiverConfig
from sandbox.app import create_app as create_sandbox
from sandbox.config import SandboxConfig
from sandbox.demo import notify
from sandbox.demo.cleanup import removing_created_keys
from sandbox.demo.hubspot import HubSpotStory
from sandbox.demo.support import until
from sandbox.demo.zoho import ZohoStory
from sandbox.notify_endpoint import NotifyEndpoint
from workers.config import WorkerConfig
from workers.main import build_worker
from workers.rules.load import load_rules

NOTIFY_TOKEN = "demo-notify-token"
# On a Redis that is already running, the demo keeps to this logical database, so that its jobs never meet
# the workers of a real deployment on that server (they use database 0 unless REDIS_URL says otherwise).
DEMO_DATABASE = 15


class _Server(uvicorn.Server):
    """uvicorn's server, leaving signals to the demo: Ctrl-C stops the whole demo, which then cleans up."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@asynccontextmanager
async def _serve(app: Starlette, port: int) -> AsyncIterator[str]:
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    await until(lambda: asyncio.sleep(0, server.started or task.done()), f"a server on port {port}")
    if task.done():
        task.result()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def run_demo(*, redis_url: str, rules_path: str, out: Callable[[str], None] = print) -> None:
    """Start everything on loopback, reschedule one appointment, print the notification, job, history row and the
    notify delivery that a rule of the demo's own sent to a webhook endpoint on loopback.

    On a Redis that is already running, the keys the demo created are removed at the end, however it ends
    (cleanup.py); a private redis-server goes with everything in it.
    """
    rules = load_rules(rules_path)
    async with AsyncExitStack() as stack:
        demo_url = with_database(redis_url, DEMO_DATABASE)
        if redis_reachable(demo_url):
            shown = _without_password(demo_url)
            out(f"Redis     {shown} (already running; database {DEMO_DATABASE}, apart from crmflow's own queue)")
            redis_url = await stack.enter_async_context(removing_created_keys(demo_url, out))
        else:
            server = stack.enter_context(EmbeddedRedis())
            out(f"Redis     {server.url} (private redis-server: nothing answered at {_without_password(redis_url)})")
            redis_url = server.url
        receiver_port, sandbox_port = free_port(), free_port()
        receiver_url = f"http://127.0.0.1:{receiver_port}"
        sandbox_config = SandboxConfig(
            notify_url=f"{receiver_url}/webhooks/zoho",
            notify_token=NOTIFY_TOKEN,
            hubspot_webhook_url=f"{receiver_url}/webhooks/hubspot",
        )
        sandbox_url = await stack.enter_async_context(_serve(create_sandbox(sandbox_config), sandbox_port))
        out(f"Sandbox   {sandbox_url} (Zoho and HubSpot emulator)")
        receiver_config = ReceiverConfig.model_validate(
            {
                "REDIS_URL": redis_url,
                "ZOHO_NOTIFY_TOKEN": NOTIFY_TOKEN,
                "ZOHO_CHANNEL_IDS": sandbox_config.channel_id,
                "HUBSPOT_CLIENT_SECRET": sandbox_config.hubspot_client_secret,
                "PUBLIC_BASE_URL": receiver_url,
            }
        )
        await stack.enter_async_context(_serve(create_receiver(receiver_config), receiver_port))
        out(f"Receiver  {receiver_url}/webhooks/zoho and {receiver_url}/webhooks/hubspot")
        secret = notify.demo_secret()
        endpoint = stack.enter_context(NotifyEndpoint(secret))
        out(f"Webhook   {endpoint.url}{notify.PATH} (a notify endpoint checking Standard Webhooks signatures)")
        worker = build_worker(
            _worker_config(redis_url, sandbox_url, sandbox_config),
            notify.with_notify(rules, endpoint.url),
            handle_signals=False,
            environ={notify.SECRET_ENV: secret},
        )
        worker_task = asyncio.create_task(worker.main())
        stack.push_async_callback(_stop_worker, worker, worker_task)
        out(f"Worker    arq, rules from {rules_path} and the demo's {notify.RULE} (notify)\n")
        sandbox = await stack.enter_async_context(httpx.AsyncClient(base_url=sandbox_url, timeout=10))
        day = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0) + timedelta(days=2)
        await ZohoStory(out, sandbox, receiver_url, endpoint).run(redis_url, day)
        await HubSpotStory(out, sandbox).run(redis_url, day)
    out("\nStopped everything the demo started.")
    out(where_to_look(receiver_url))


def where_to_look(receiver_url: str) -> str:
    """Where metrics and the console are when crmflow runs for real (docs/operations.md): the demo's last words."""
    return (
        "\nWhen crmflow runs for real, look here (docs/operations.md):\n"
        f"Metrics   GET /metrics on the receiver (during the demo: {receiver_url}/metrics), and on each worker's\n"
        "          WORKER_METRICS_PORT\n"
        "Console   CONSOLE_TOKEN=<a long random token> crmflow console, then http://127.0.0.1:8080/ (events, dead\n"
        "          letters, health; log in with the token)"
    )


def _worker_config(redis_url: str, sandbox_url: str, sandbox: SandboxConfig) -> WorkerConfig:
    return WorkerConfig.model_validate(
        {
            "REDIS_URL": redis_url,
            "ZOHO_API_DOMAIN": sandbox_url,
            "ZOHO_ACCOUNTS_URL": sandbox_url,
            "ZOHO_CLIENT_ID": sandbox.client_id,
            "ZOHO_CLIENT_SECRET": sandbox.client_secret,
            "ZOHO_REFRESH_TOKEN": sandbox.refresh_token,
            "HUBSPOT_API_BASE": sandbox_url,
            "HUBSPOT_ACCESS_TOKEN": sandbox.hubspot_access_token,
            # No periodic sweep: the demo shows notifications at work, and a first sweep would queue every
            # seed appointment modified in the last day besides the one the demo reschedules.
            "SWEEP_INTERVAL_S": 0,
        }
    )


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    return url if parts.password is None else url.replace(f":{parts.password}@", ":***@", 1)


async def _stop_worker(worker: Any, task: asyncio.Task[None]) -> None:
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task
    await worker.close()
