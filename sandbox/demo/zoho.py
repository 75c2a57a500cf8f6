"""The demo's Zoho story: create an appointment, reschedule it through Zoho's API, show the history row."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx

from sandbox.config import SandboxConfig
from sandbox.demo import notify
from sandbox.demo.support import as_json, finished_job, fresh_id, until
from sandbox.notify_endpoint import NotifyEndpoint


def _zoho(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


class ZohoStory:
    """Steps against the sandbox's Zoho side, each printing what a reader should see."""

    def __init__(
        self,
        out: Callable[[str], None],
        sandbox: httpx.AsyncClient,
        receiver_url: str,
        endpoint: NotifyEndpoint | None = None,
    ) -> None:
        """`endpoint`: the demo's notify endpoint, whose delivery is shown beside the history row (None: none)."""
        self.out = out
        self.sandbox = sandbox
        self.receiver_url = receiver_url
        self.endpoint = endpoint

    async def delivery(self, record_id: str, operation: str) -> dict[str, Any]:
        """The sandbox's callback about `record_id`, once the receiver has answered it."""

        async def find() -> dict[str, Any] | None:
            log = (await self.sandbox.get("/_sandbox/notifications")).json()["deliveries"]
            for entry in log:
                if record_id in entry["body"]["ids"] and entry["body"]["operation"] == operation:
                    return entry if entry["status_code"] is not None or entry["error"] else None
            return None

        entry: dict[str, Any] = await until(find, f"Zoho's {operation} notification")
        if entry["status_code"] != 200:
            raise RuntimeError(f"the receiver refused the notification: {entry}")
        return entry

    async def reschedule(self, record_id: str, start: datetime) -> None:
        token = (await self.sandbox.post("/oauth/v2/token", data=SandboxConfig().refresh_form())).json()
        change = {
            "id": record_id,
            "Appointment_Start_Time": _zoho(start),
            "Reschedule_Reason": "By Customer",
            "Reschedule_Note": "Customer asked for the afternoon",
        }
        response = await self.sandbox.put(
            "/crm/v7/Appointments__s",
            json={"data": [change]},
            headers={"Authorization": f"Zoho-oauthtoken {token['access_token']}"},
        )
        response.raise_for_status()

    async def history(self, record_id: str) -> list[dict[str, Any]]:
        rows = (await self.sandbox.get("/_sandbox/history")).json()["data"]
        return [row for row in rows if row["Appointment_Name"]["id"] == record_id]

    async def run(self, redis_url: str, day: datetime) -> None:
        record_id = fresh_id("55459740", 11)
        body = {"id": record_id, "Appointment_Name": "Demo - Boiler Service", "Appointment_Start_Time": _zoho(day)}
        (await self.sandbox.post("/_sandbox/appointments", json=body)).raise_for_status()
        self.out(f"1. Zoho: created appointment {record_id} starting {_zoho(day)}.")
        created = await self.delivery(record_id, "insert")
        await finished_job(redis_url, f"zoho:Appointments__s:{record_id}:insert:{created['body']['server_time']}")
        started = time.perf_counter()
        await self.reschedule(record_id, day.replace(hour=14))
        self.out(f"2. Zoho: rescheduled it to {_zoho(day.replace(hour=14))} through Zoho's API (PUT Appointments__s).")
        rows = await until(lambda: self.history(record_id), "the history row")
        elapsed_ms = (time.perf_counter() - started) * 1000
        delivery = await self.delivery(record_id, "update")
        job_id = f"zoho:Appointments__s:{record_id}:update:{delivery['body']['server_time']}"
        self.out("\nThe notification Zoho sent to the receiver:\n" + as_json(delivery["body"]))
        self.out("\nThe job the receiver queued and a worker ran:\n" + as_json(await finished_job(redis_url, job_id)))
        self.out("\nThe history row crmflow wrote (Appointments_Rescheduled_History__s):\n" + as_json(rows[0]))
        if self.endpoint is not None:
            notify.show(self.out, await notify.delivery(self.endpoint))
        self.out(f"\nZoho reschedule to history row: {elapsed_ms:.0f} ms.")
        again = await self.sandbox.post(f"{self.receiver_url}/webhooks/zoho", json=delivery["body"])
        await asyncio.sleep(0.5)
        count = len(await self.history(record_id))
        said = f"3. Zoho: redelivered the same notification: receiver answered {again.json()}; rows now: {count}."
        posts = len(self.endpoint.received(notify.PATH)) if self.endpoint is not None else None
        self.out(said if posts is None else f"{said} Notify deliveries now: {posts}.")
        if count != 1:
            raise RuntimeError(f"expected exactly one history row, found {count}")
        if posts not in (None, 1):
            raise RuntimeError(f"expected exactly one notify delivery, found {posts}")
