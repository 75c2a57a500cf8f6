"""The `/_sandbox/hubspot/` control endpoints (no auth, never faulted, not logged as API requests).

POST   /_sandbox/hubspot/appointments              create an appointment as a UI user (sends object.creation)
PATCH  /_sandbox/hubspot/appointments/{id}         change properties as a UI user (CRM_UI history, events)
DELETE /_sandbox/hubspot/appointments/{id}         archive an appointment as a UI user (object.deletion)
GET    /_sandbox/hubspot/webhooks                  every webhook delivery attempt (body, headers, outcome)
DELETE /_sandbox/hubspot/webhooks                  clear that log
POST   /_sandbox/hubspot/webhooks/{seq}/redeliver  send attempt `seq`'s body again exactly, freshly signed
GET    /_sandbox/hubspot/notes                     every note with all properties and its appointment ids
GET    /_sandbox/hubspot/subscriptions             the portal's webhook subscriptions

Bodies of the appointment endpoints: `{"properties": {...}, "user_id": <user id>, "id": "<new id>"}`, all
optional. `user_id` (default 71230001, Ana Lima) is who acts: history entries get sourceType CRM_UI,
sourceId "userId:<id>" and updatedByUserId, events changeSource CRM_UI. Creation is loose: name, start
(tomorrow 10:00 UTC), end (an hour later), status SCHEDULED and owner (the acting user when an owner) have
defaults. Property values are checked as on the API (400 with HubSpot's error body under "detail").
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.hubspot.catalogue import APPOINTMENTS, NOTES
from sandbox.hubspot.custom_properties import custom_subscriptions
from sandbox.hubspot.errors import HubSpotApiError
from sandbox.hubspot.events import SUBSCRIPTIONS
from sandbox.hubspot.records import Source
from sandbox.hubspot.runtime import HubSpotRuntime
from sandbox.hubspot.seed import ANA
from sandbox.hubspot.time import format_iso
from sandbox.responses import json_response


class ControlError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("error"))
        self.status = status
        self.body = body


async def _object(request: Request) -> dict[str, Any]:
    try:
        body = await request.json() if await request.body() else {}
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ControlError(400, {"error": "expected a JSON object"})
    return body


def _user_source(body: dict[str, Any]) -> Source:
    raw = body.get("user_id", ANA.id)
    if isinstance(raw, str) and raw.isdigit():
        raw = int(raw)
    if not isinstance(raw, int) or isinstance(raw, bool) or raw <= 0:
        raise ControlError(400, {"error": f"user_id must be a positive numeric user id, got {raw!r}"})
    return Source.ui(raw)


def _properties(body: dict[str, Any]) -> dict[str, Any]:
    properties = body.get("properties", {})
    if not isinstance(properties, dict):
        raise ControlError(400, {"error": "properties must be an object"})
    return properties


class HubSpotControl:
    """Endpoint functions bound to one HubSpot runtime."""

    def __init__(self, hubspot: HubSpotRuntime) -> None:
        self.hubspot = hubspot

    async def _run(self, request: Request) -> Response:
        try:
            return await self._dispatch(request)
        except ControlError as error:
            return json_response(error.body, error.status)
        except HubSpotApiError as error:
            return json_response({"error": error.message, "detail": error.body()}, error.status)

    async def _dispatch(self, request: Request) -> Response:
        if request.method == "POST":
            return await self._create(request)
        body = await _object(request)
        source = _user_source(body)
        appointment_id = request.path_params["appointment_id"]
        now = self.hubspot.now()
        if request.method == "DELETE":
            self.hubspot.publish(self.hubspot.store.archive(APPOINTMENTS, appointment_id, source, now))
            return Response(status_code=204)
        record, _, changes = self.hubspot.store.update(APPOINTMENTS, appointment_id, _properties(body), source, now)
        self.hubspot.publish(changes)
        return json_response(record.render(everything=True, custom=self.hubspot.custom_properties(APPOINTMENTS)))

    async def _create(self, request: Request) -> Response:
        body = await _object(request)
        source = _user_source(body)
        now = self.hubspot.now()
        start = (now + timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
        defaults = {
            "hs_appointment_name": "New Appointment",
            "hs_appointment_start": format_iso(start),
            "hs_appointment_end": format_iso(start + timedelta(hours=1)),
            "hs_appointment_status": "SCHEDULED",
        }
        if str(source.user_id) in self.hubspot.store.owner_ids:
            defaults["hubspot_owner_id"] = str(source.user_id)
        record_id = body.get("id")
        if record_id is not None and not isinstance(record_id, str):
            record_id = str(record_id)
        record, changes = self.hubspot.store.create(
            APPOINTMENTS, {**defaults, **_properties(body)}, source, now, record_id=record_id
        )
        self.hubspot.publish(changes)
        return json_response(record.render(everything=True, custom=self.hubspot.custom_properties(APPOINTMENTS)), 201)

    async def appointments(self, request: Request) -> Response:
        return await self._run(request)

    async def webhooks(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.hubspot.webhooks.clear_log()
        log = self.hubspot.webhooks.log
        return json_response({"count": len(log), "deliveries": log})

    async def redeliver(self, request: Request) -> Response:
        seq = int(request.path_params["seq"])
        entry = await self.hubspot.webhooks.redeliver(seq)
        if entry is None:
            return json_response({"error": f"no delivery with seq {seq}"}, 404)
        return json_response(entry)

    async def notes(self, request: Request) -> Response:
        store = self.hubspot.store
        notes = [
            {
                **note.render(everything=True),
                "associations": {"appointments": store.associations.related((NOTES.type_id, note.id), APPOINTMENTS)},
            }
            for note in store.all(NOTES)
        ]
        return json_response({"count": len(notes), "notes": notes})

    async def subscriptions(self, request: Request) -> Response:
        custom = custom_subscriptions(self.hubspot.custom_fields.of("hubspot", APPOINTMENTS.name))
        return json_response({"results": [subscription.snapshot() for subscription in (*SUBSCRIPTIONS, *custom)]})


def hubspot_control_routes(hubspot: HubSpotRuntime) -> list[Route]:
    """The routes mounted at /_sandbox/hubspot."""
    control = HubSpotControl(hubspot)
    return [
        Route("/appointments", control.appointments, methods=["POST"]),
        Route("/appointments/{appointment_id}", control.appointments, methods=["PATCH", "DELETE"]),
        Route("/webhooks", control.webhooks, methods=["GET", "DELETE"]),
        Route("/webhooks/{seq:int}/redeliver", control.redeliver, methods=["POST"]),
        Route("/notes", control.notes, methods=["GET"]),
        Route("/subscriptions", control.subscriptions, methods=["GET"]),
    ]
