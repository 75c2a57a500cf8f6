"""The demo's HubSpot story: a user reschedules an appointment, HubSpot's signed batch comes in, a note results."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx

from sandbox.demo.support import as_json, finished_job, fresh_id, until

USER = "71230003"  # the sandbox portal's Chloe Dubois


class HubSpotStory:
    """Steps against the sandbox's HubSpot side, each printing what a reader should see."""

    def __init__(self, out: Callable[[str], None], sandbox: httpx.AsyncClient) -> None:
        self.out = out
        self.sandbox = sandbox

    async def delivery(self, record_id: str, *, creation: bool) -> dict[str, Any]:
        """The first batch the receiver accepted for the appointment, with or without its creation event."""

        async def find() -> dict[str, Any] | None:
            for entry in (await self.sandbox.get("/_sandbox/hubspot/webhooks")).json()["deliveries"]:
                kinds = {e["subscriptionType"] for e in entry["body"] if str(e["objectId"]) == record_id}
                if kinds and ("object.creation" in kinds) == creation and entry["status_code"] == 200:
                    accepted: dict[str, Any] = entry
                    return accepted
            return None

        found: dict[str, Any] = await until(find, "HubSpot's " + ("creation" if creation else "change") + " batch")
        return found

    async def notes(self, record_id: str) -> list[dict[str, Any]]:
        notes = (await self.sandbox.get("/_sandbox/hubspot/notes")).json()["notes"]
        return [note for note in notes if record_id in str(note.get("associations"))]

    @staticmethod
    def job_id(record_id: str, operation: str, batch: list[dict[str, Any]]) -> str:
        latest = max(e["occurredAt"] for e in batch if str(e["objectId"]) == record_id)
        return f"hubspot:appointments:{record_id}:{operation}:{latest}"

    async def run(self, redis_url: str, day: datetime) -> None:
        record_id = fresh_id("5120499", 8)
        start, end = day, day + timedelta(hours=1)
        properties = {"hs_appointment_name": "Demo - Annual checkup", "hs_appointment_start": start.isoformat()}
        body = {"id": record_id, "properties": properties | {"hs_appointment_end": end.isoformat()}, "user_id": USER}
        (await self.sandbox.post("/_sandbox/hubspot/appointments", json=body)).raise_for_status()
        self.out(f"\n4. HubSpot: created appointment {record_id} starting {start.isoformat()}.")
        created = await self.delivery(record_id, creation=True)
        await finished_job(redis_url, self.job_id(record_id, "insert", created["body"]))
        started = time.perf_counter()
        moved = {"properties": {"hs_appointment_start": day.replace(hour=16).isoformat()}, "user_id": USER}
        (await self.sandbox.patch(f"/_sandbox/hubspot/appointments/{record_id}", json=moved)).raise_for_status()
        self.out(f"5. HubSpot: user {USER} rescheduled it to {day.replace(hour=16).isoformat()} in HubSpot.")
        notes = await until(lambda: self.notes(record_id), "the note")
        elapsed_ms = (time.perf_counter() - started) * 1000
        batch = await self.delivery(record_id, creation=False)
        signed = {k: v for k, v in batch["headers"].items() if k.lower().startswith("x-hubspot")}
        self.out(
            "\nThe signed batch HubSpot sent to the receiver:\n" + as_json({"headers": signed, "body": batch["body"]})
        )
        job = await finished_job(redis_url, self.job_id(record_id, "update", batch["body"]))
        self.out("\nThe job the receiver queued and a worker ran:\n" + as_json(job))
        self.out("\nThe note crmflow created on the appointment:\n" + as_json(notes[0]))
        self.out(f"\nHubSpot reschedule to note: {elapsed_ms:.0f} ms.")
        again = (await self.sandbox.post(f"/_sandbox/hubspot/webhooks/{batch['seq']}/redeliver")).json()
        await asyncio.sleep(0.5)
        count = len(await self.notes(record_id))
        self.out(
            f"6. HubSpot: redelivered the same batch: receiver answered {again['status_code']}; notes now: {count}."
        )
        if count != 1:
            raise RuntimeError(f"expected exactly one note, found {count}")
