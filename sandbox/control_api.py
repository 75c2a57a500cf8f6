"""The `/_sandbox/` control API (no auth, never faulted): reset, seed records, faults, logs, token expiry.

POST   /_sandbox/reset            back to seed data (Zoho and HubSpot); faults, logs, tokens, channels and
                                  HubSpot limits and webhook deliveries as configured
POST   /_sandbox/appointments     create an appointment from loose JSON fields (insert callback sent)
PATCH  /_sandbox/appointments/{id}  change an appointment's fields (e.g. reschedule it) as PUT
                                  /crm/v7/Appointments__s/{id} does, without a token: same checks, same
                                  answer, update callback sent
GET    /_sandbox/faults           the rules with their fired/remaining counts
POST   /_sandbox/faults           replace the rules (a list of rules, or one rule object)
DELETE /_sandbox/faults           remove every rule
GET    /_sandbox/requests         counters and the log of /crm/ (Zoho and HubSpot) and /oauth/ requests
DELETE /_sandbox/requests         clear that log
GET    /_sandbox/notifications    every callback delivery attempt (body, queued_at, sent_at, status code or error)
DELETE /_sandbox/notifications    clear that log
POST   /_sandbox/tokens/expire    expire every issued access token now
POST   /_sandbox/channels/{id}/expire   move a watch channel's expiry to now + {"in_s": N} (default 0: it
                                  has expired, and is gone as Zoho deletes expired channels)
GET    /_sandbox/history          every Appointments_Rescheduled_History__s row
GET    /_sandbox/notes            every Zoho note (Notes module), oldest first
GET    /_sandbox/webhooks         whether each CRM sends its notifications: {"zoho": bool, "hubspot": bool}
POST   /_sandbox/webhooks         switch them: {"enabled": bool, "crm": "zoho" | "hubspot" (default both)}
GET    /_sandbox/fields           the custom fields of each CRM's field list: {source: {module: [field]}}
POST   /_sandbox/fields/{source}/{module}   add custom fields to that module's field list (until the next
                                  reset): one {"name", "type", "label"} object or a list of them, type and label
                                  optional (sandbox.custom_fields); answers the module's custom fields
DELETE /_sandbox/fields/{source}/{module}   remove that module's custom fields
*      /_sandbox/hubspot/...      HubSpot's control endpoints, see sandbox.hubspot.control
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.custom_fields import CustomField, custom_field
from sandbox.faults import FaultRule
from sandbox.responses import json_response
from sandbox.runtime import SandboxRuntime
from sandbox.zoho.responses import write_response
from sandbox.zoho.time import format_datetime

_RULES = TypeAdapter(list[FaultRule])


async def _json(request: Request) -> Any:
    try:
        return orjson.loads(await request.body() or b"null")
    except orjson.JSONDecodeError:
        return None


class ControlHandlers:
    """Endpoint functions bound to one runtime."""

    def __init__(self, runtime: SandboxRuntime) -> None:
        self.runtime = runtime

    async def reset(self, request: Request) -> Response:
        self.runtime.reset()
        return json_response({"status": "reset"})

    async def create_appointment(self, request: Request) -> Response:
        fields = await _json(request)
        if not isinstance(fields, dict):
            return json_response({"error": "expected a JSON object of appointment fields"}, 400)
        try:
            record, change = self.runtime.store.create_appointment(fields, self.runtime.now())
        except ValueError as exc:
            return json_response({"error": str(exc)}, 400)
        deliveries = self.runtime.deliveries_for([change])
        background = BackgroundTask(self.runtime.notifier.deliver, deliveries) if deliveries else None
        return json_response({"data": [record]}, 201, background)

    async def change_appointment(self, request: Request) -> Response:
        fields = await _json(request)
        if not isinstance(fields, dict):
            return json_response({"error": "expected a JSON object of appointment fields"}, 400)
        record_id = request.path_params["record_id"]
        outcome = self.runtime.store.update_appointments([fields], self.runtime.now(), path_id=record_id)
        deliveries = self.runtime.deliveries_for(outcome.changes)
        background = BackgroundTask(self.runtime.notifier.deliver, deliveries) if deliveries else None
        return write_response(outcome, 200, background)

    async def faults(self, request: Request) -> Response:
        if request.method == "POST":
            raw = await _json(request)
            try:
                rules = _RULES.validate_python(raw if isinstance(raw, list) else [raw])
            except ValidationError as exc:
                errors = exc.errors(include_url=False, include_context=False, include_input=False)
                return json_response({"error": "invalid fault rules", "detail": errors}, 422)
            self.runtime.faults.set_rules(rules)
        elif request.method == "DELETE":
            self.runtime.faults.set_rules([])
        return json_response({"rules": self.runtime.faults.snapshot()})

    async def requests(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.runtime.requests.clear()
        return json_response(self.runtime.requests.snapshot())

    async def notifications(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.runtime.notifier.log.clear()
        return json_response({"count": len(self.runtime.notifier.log), "deliveries": self.runtime.notifier.log})

    async def expire_tokens(self, request: Request) -> Response:
        return json_response({"expired": self.runtime.tokens.expire_all(self.runtime.now())})

    async def expire_channel(self, request: Request) -> Response:
        body = await _json(request)
        in_s = body.get("in_s", 0) if isinstance(body, dict) else 0 if body is None else None
        if not isinstance(in_s, int | float) or isinstance(in_s, bool) or in_s < 0:
            return json_response({"error": 'expected no body, or {"in_s": seconds from now, 0 or more}'}, 400)
        now = self.runtime.now()
        channel_id = request.path_params["channel_id"]
        channel = self.runtime.channels.age(channel_id, now + timedelta(seconds=in_s), now)
        if channel is None:
            return json_response({"error": f"no active channel {channel_id}"}, 404)
        expiry = format_datetime(channel.expires_at, self.runtime.config.tz)
        return json_response({"channel_id": channel_id, "channel_expiry": expiry, "active": channel.active(now)})

    async def webhooks(self, request: Request) -> Response:
        if request.method == "POST":
            body = await _json(request)
            enabled = body.get("enabled") if isinstance(body, dict) else None
            crm = body.get("crm") if isinstance(body, dict) else None
            if not isinstance(enabled, bool) or crm not in (None, "zoho", "hubspot"):
                message = 'expected {"enabled": true|false} and optionally "crm": "zoho" or "hubspot"'
                return json_response({"error": message}, 400)
            return json_response(self.runtime.set_webhooks(enabled, crm))
        return json_response(self.runtime.webhooks_state())

    async def fields(self, request: Request) -> Response:
        return json_response(self.runtime.custom_fields.snapshot())

    async def module_fields(self, request: Request) -> Response:
        source, module = request.path_params["source"], request.path_params["module"]
        if request.method == "DELETE":
            self.runtime.custom_fields.clear(source, module)
        else:
            raw = await _json(request)
            try:
                added: list[CustomField] = [
                    custom_field(source, module, item) for item in (raw if isinstance(raw, list) else [raw])
                ]
            except ValueError as exc:
                return json_response({"error": str(exc)}, 400)
            self.runtime.custom_fields.add(source, module, added)
        shown = self.runtime.custom_fields.snapshot().get(source, {}).get(module, [])
        return json_response({"source": source, "module": module, "custom_fields": shown})

    async def history(self, request: Request) -> Response:
        rows = self.runtime.store.all_history()
        return json_response({"count": len(rows), "data": rows})

    async def notes(self, request: Request) -> Response:
        notes = self.runtime.store.all_notes()
        return json_response({"count": len(notes), "data": notes})


def control_routes(runtime: SandboxRuntime) -> list[Route]:
    """The routes mounted at /_sandbox."""
    handlers = ControlHandlers(runtime)
    return [
        Route("/reset", handlers.reset, methods=["POST"]),
        Route("/appointments", handlers.create_appointment, methods=["POST"]),
        Route("/appointments/{record_id}", handlers.change_appointment, methods=["PATCH"]),
        Route("/faults", handlers.faults, methods=["GET", "POST", "DELETE"]),
        Route("/requests", handlers.requests, methods=["GET", "DELETE"]),
        Route("/notifications", handlers.notifications, methods=["GET", "DELETE"]),
        Route("/tokens/expire", handlers.expire_tokens, methods=["POST"]),
        Route("/history", handlers.history, methods=["GET"]),
        Route("/notes", handlers.notes, methods=["GET"]),
        Route("/channels/{channel_id}/expire", handlers.expire_channel, methods=["POST"]),
        Route("/webhooks", handlers.webhooks, methods=["GET", "POST"]),
        Route("/fields", handlers.fields, methods=["GET"]),
        Route("/fields/{source}/{module}", handlers.module_fields, methods=["POST", "DELETE"]),
    ]
