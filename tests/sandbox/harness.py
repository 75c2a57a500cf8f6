"""Test harness: a sandbox app in-process, a controllable clock, and a mock receiver for its callbacks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette

from sandbox.app import create_app
from sandbox.config import SandboxConfig

START = datetime(2026, 3, 2, 9, 15, 30, 250_000, tzinfo=UTC)
NOTIFY_URL = "http://receiver.test/webhooks/zoho?source=zoho&k=v"
TOKEN_FORM = SandboxConfig().refresh_form()
SCHEDULED = "5545974000002555001"
RESCHEDULED = "5545974000002555012"
CANCELLED = "5545974000002555023"
COMPLETED = "5545974000002555034"
API_USER = {"name": "Patricia Boyle", "id": "5545974000000393001"}
OTHER_USER = {"name": "Amelia Burrows", "id": "5545974000000393015"}
APPOINTMENTS = "/crm/v7/Appointments__s"
HISTORY = "/crm/v7/Appointments_Rescheduled_History__s"


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    def iso(self, **delta: float) -> str:
        """`now + delta` to the second, in Zoho's format."""
        return (self.now + timedelta(**delta)).replace(microsecond=0).isoformat()


class Harness:
    """One sandbox, a client for it, and the callbacks it sent (answered with `callback_status`)."""

    def __init__(self, config: SandboxConfig, clock: FakeClock) -> None:
        self.clock = clock
        self.callbacks: list[httpx.Request] = []
        self.callback_status = 200
        self.callback_error: Exception | None = None
        self.outgoing = httpx.AsyncClient(transport=httpx.MockTransport(self._receive))
        self.app: Starlette = create_app(config, http=self.outgoing, clock=clock)
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://sandbox")
        self._token: str | None = None

    def _receive(self, request: httpx.Request) -> httpx.Response:
        self.callbacks.append(request)
        if self.callback_error is not None:
            raise self.callback_error
        return httpx.Response(self.callback_status)

    def callback_bodies(self) -> list[dict[str, Any]]:
        return [orjson.loads(request.content) for request in self.callbacks]

    async def new_token(self) -> str:
        response = await self.client.post("/oauth/v2/token", data=TOKEN_FORM)
        token: str = response.json()["access_token"]
        return token

    async def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A CRM call with a valid access token (fetched once)."""
        if self._token is None:
            self._token = await self.new_token()
        headers = {"Authorization": f"Zoho-oauthtoken {self._token}", **kwargs.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kwargs)

    def drop_token(self) -> None:
        """Make the next `api` call fetch a fresh access token."""
        self._token = None

    async def appointment(self, record_id: str) -> dict[str, Any]:
        response = await self.api("GET", f"{APPOINTMENTS}/{record_id}")
        assert response.status_code == 200, response.text
        record: dict[str, Any] = response.json()["data"][0]
        return record

    async def reschedule(self, record_id: str, start: str, **fields: Any) -> httpx.Response:
        body = {"data": [{"id": record_id, "Appointment_Start_Time": start, **fields}]}
        return await self.api("PUT", APPOINTMENTS, json=body)

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.outgoing.aclose()


def history_row(appointment_id: str = RESCHEDULED, **overrides: Any) -> dict[str, Any]:
    """A valid history row for POST /Appointments_Rescheduled_History__s (times in the past)."""
    row: dict[str, Any] = {
        "Appointment_Name": {"name": "Boiler Service - Maria", "id": appointment_id},
        "Rescheduled_Time": "2026-03-01T11:00:46+05:30",
        "Rescheduled_By": dict(API_USER),
        "Rescheduled_From": "2026-03-03T11:00:00+00:00",
        "Rescheduled_To": "2026-03-04T14:00:00+00:00",
        "Reschedule_Note": "Customer unavailable",
        "Reschedule_Reason": "By Customer",
    }
    row.update(overrides)
    return row


def error(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """Zoho's error object."""
    return {"code": code, "details": details or {}, "message": message, "status": "error"}


def field(index: int, api_name: str, **extra: Any) -> dict[str, Any]:
    """Field-level error details."""
    return {**extra, "api_name": api_name, "json_path": f"$.data[{index}].{api_name}"}
