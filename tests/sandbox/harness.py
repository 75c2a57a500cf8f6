"""Test harness: a sandbox app in-process, a controllable clock, and a mock receiver for its callbacks."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections.abc import Callable
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

HUBSPOT_WEBHOOK_URL = "https://receiver.test/webhooks/hubspot"
HUBSPOT_TOKEN = "sandbox-hubspot-token"
HUBSPOT_SECRET = "sandbox-hubspot-client-secret"
# Fast HubSpot settings for tests: a short batching window and ten near-instant retries.
HUBSPOT_FAST = {
    "hubspot_webhook_url": HUBSPOT_WEBHOOK_URL,
    "hubspot_batch_window_ms": 5,
    "hubspot_retry_delays_s": (0.001,) * 10,
}
HS_SCHEDULED = "51204030001"
HS_RESCHEDULED = "51204030002"
HS_CANCELED = "51204030003"
HS_COMPLETED = "51204030004"
ANA, BEN = 71230001, 71230002
HS_APPOINTMENTS = "/crm/objects/2026-03/appointments"
HS_NOTES = "/crm/objects/2026-03/notes"
NOTE_TO_APPOINTMENT = 1207


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
    """One sandbox, a client for it, and what it sent out.

    Zoho callbacks land in `callbacks` (answered with `callback_status`); HubSpot webhook requests land in
    `webhooks`, answered in turn by `webhook_answers` (a status, or an exception to raise) and then 200, each
    after `webhook_delay_s` and after `on_webhook` saw the request.
    """

    def __init__(self, config: SandboxConfig, clock: FakeClock) -> None:
        self.clock = clock
        self.callbacks: list[httpx.Request] = []
        self.callback_status = 200
        self.callback_error: Exception | None = None
        self.webhooks: list[httpx.Request] = []
        self.webhook_answers: list[int | Exception] = []
        self.webhook_delay_s = 0.0
        self.on_webhook: Callable[[httpx.Request], None] | None = None
        self.hubspot_url = config.hubspot_webhook_url
        self.outgoing = httpx.AsyncClient(transport=httpx.MockTransport(self._receive))
        self.app: Starlette = create_app(config, http=self.outgoing, clock=clock)
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://sandbox")
        self._token: str | None = None

    async def _receive(self, request: httpx.Request) -> httpx.Response:
        if self.hubspot_url is not None and str(request.url) == self.hubspot_url:
            return await self._webhook(request)
        self.callbacks.append(request)
        if self.callback_error is not None:
            raise self.callback_error
        return httpx.Response(self.callback_status)

    async def _webhook(self, request: httpx.Request) -> httpx.Response:
        self.webhooks.append(request)
        if self.on_webhook is not None:
            self.on_webhook(request)
        answer = self.webhook_answers.pop(0) if self.webhook_answers else 200
        if self.webhook_delay_s:
            await asyncio.sleep(self.webhook_delay_s)
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer)

    def webhook_bodies(self) -> list[list[dict[str, Any]]]:
        return [orjson.loads(request.content) for request in self.webhooks]

    def webhook_events(self) -> list[dict[str, Any]]:
        return [event for body in self.webhook_bodies() for event in body]

    async def settle(self) -> None:
        """Wait until every HubSpot webhook delivery (retries included) has finished."""
        await self.app.state.runtime.hubspot.webhooks.drain()

    async def hs(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A HubSpot API call with the private-app token."""
        headers = {"Authorization": f"Bearer {HUBSPOT_TOKEN}", **kwargs.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def hs_appointment(self, object_id: str, **params: str) -> dict[str, Any]:
        response = await self.hs("GET", f"{HS_APPOINTMENTS}/{object_id}", params=params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

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
        await self.app.state.runtime.aclose()
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


def v3_signature(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """HubSpot's v3 signature, written from the validation guide (independent of the sandbox's code)."""
    message = method.encode() + uri.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def v1_signature(secret: str, body: bytes) -> str:
    """HubSpot's v1 signature: hex SHA-256 of the secret followed by the body."""
    return hashlib.sha256(secret.encode() + body).hexdigest()


def assert_signed(request: httpx.Request, secret: str = HUBSPOT_SECRET) -> None:
    """The request carries valid v3 and v1 signatures over its exact bytes."""
    timestamp = request.headers["X-HubSpot-Request-Timestamp"]
    expected_v3 = v3_signature(secret, "POST", str(request.url), request.content, timestamp)
    assert hmac.compare_digest(request.headers["X-HubSpot-Signature-v3"], expected_v3)
    assert request.headers["X-HubSpot-Signature"] == v1_signature(secret, request.content)
    assert request.headers["X-HubSpot-Signature-Version"] == "v1"
