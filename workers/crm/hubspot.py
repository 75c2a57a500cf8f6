"""CRM (HubSpot): the calls crmflow makes to HubSpot's CRM API (2026-03), over an injected httpx.AsyncClient."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx
from pydantic import SecretStr

from workers.crm.hubspot_models import (
    APPOINTMENTS,
    END,
    START,
    SearchPage,
    appointment_record,
    association_type_id,
    batch_records,
    modified_window_search,
    note_ids,
    property_names,
    raise_for_hubspot,
    search_page,
)
from workers.crm.responses import Call, Gate, send
from workers.record import Record

OBJECTS = "/crm/objects/2026-03"
PROPERTY_DEFINITIONS = "/crm/properties/2026-03"
PROPERTIES = ("hs_appointment_name", START, END, "hs_appointment_status", "hubspot_owner_id", "hs_lastmodifieddate")
HISTORY = (START, END)
BATCH_LIMIT = 100  # "Object API batch endpoints are limited to 100 inputs per request."
BATCH_WITH_HISTORY_LIMIT = 50  # "...for property histories is 50"
NOTE_FIELDS = ("hs_note_body", "hs_timestamp")
SEARCH_LIMIT = 200  # the search endpoint's maximum per page


def _chunks(items: Sequence[str], size: int) -> list[Sequence[str]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


class HubSpotClient:
    """HubSpot with a private-app token: read and update appointments, write notes associated with them."""

    def __init__(self, http: httpx.AsyncClient, *, api_base: str, token: SecretStr, gate: Gate | None = None) -> None:
        self._http = http
        self._base = api_base.rstrip("/")
        self._token = token
        # The account's shared limiter and call counter (workers/crm/limits.py); None: neither.
        self._gate = gate
        self._note_type: int | None = None

    async def get_appointment(self, record_id: str, properties: Collection[str] = ()) -> Record:
        """GET one appointment (its usual properties and `properties`) with the history of its start and end."""
        wanted = sorted(set(PROPERTIES) | set(properties))
        params = {"properties": ",".join(wanted), "propertiesWithHistory": ",".join(HISTORY)}
        return appointment_record(
            await self._call("get_record", "GET", f"{OBJECTS}/{APPOINTMENTS}/{record_id}", params=params)
        )

    async def update_appointment(self, record_id: str, properties: Mapping[str, str]) -> str:
        """PATCH the appointment's `properties` ("" clears one); its id once HubSpot has applied them.

        An unknown or read-only property, or a value HubSpot refuses, is a 400 (CrmRejectedError); an
        archived or unknown appointment a 404 (CrmNotFoundError).
        """
        body = {"properties": dict(properties)}
        answer = await self._call("update_record", "PATCH", f"{OBJECTS}/{APPOINTMENTS}/{record_id}", json=body)
        return str(answer.get("id", record_id)) if isinstance(answer, dict) else record_id

    async def property_names(self, object_type: str) -> frozenset[str]:
        """GET /crm/properties/2026-03/{objectType}: the names of the type's properties, custom ones included."""
        return property_names(await self._call("get_properties", "GET", f"{PROPERTY_DEFINITIONS}/{object_type}"))

    async def get_appointments(self, record_ids: Sequence[str]) -> tuple[list[Record], list[str]]:
        """Batch read (50 ids a request, HubSpot's limit with history); the records and the ids not found."""
        records: list[Record] = []
        missing: list[str] = []
        for chunk in _chunks(list(dict.fromkeys(record_ids)), BATCH_WITH_HISTORY_LIMIT):
            body = {"inputs": [{"id": i} for i in chunk], "properties": PROPERTIES, "propertiesWithHistory": HISTORY}
            found, lost = batch_records(
                await self._call("batch_read_records", "POST", f"{OBJECTS}/{APPOINTMENTS}/batch/read", json=body)
            )
            records.extend(found)
            missing.extend(lost)
        return records, missing

    async def search_modified(
        self, since: datetime, until: datetime, *, after: str | None = None, limit: int = SEARCH_LIMIT
    ) -> SearchPage:
        """POST appointments/search: those with hs_lastmodifieddate in [since, until], oldest first, one page.

        The search endpoints have their own limit, five requests a second per account (docs/hubspot.md,
        "Search"); pacing is the caller's (workers/sweep_paging.py).
        """
        body = modified_window_search(since, until, limit=limit, after=after)
        return search_page(await self._call("search_modified", "POST", f"{OBJECTS}/{APPOINTMENTS}/search", json=body))

    async def note_association_type(self) -> int:
        """The note → appointment association type, looked up once (HubSpot documents no constant for it)."""
        if self._note_type is None:
            body = await self._call(
                "get_association_labels", "GET", "/crm/associations/2026-03/notes/appointments/labels"
            )
            self._note_type = association_type_id(body)
        return self._note_type

    async def create_note(self, appointment_id: str, properties: Mapping[str, str]) -> str:
        """Create a note already associated with the appointment (one request, so never an orphan note)."""
        association = {
            "associationCategory": "HUBSPOT_DEFINED",
            "associationTypeId": await self.note_association_type(),
        }
        body = {
            "properties": dict(properties),
            "associations": [{"to": {"id": appointment_id}, "types": [association]}],
        }
        created = await self._call("create_note", "POST", f"{OBJECTS}/notes", json=body)
        return str(created["id"])

    async def notes_of(self, appointment_id: str) -> list[Mapping[str, Any]]:
        """The notes associated with an appointment, with their body and timestamp."""
        ids: list[str] = []
        after: str | None = None
        while True:
            params = {"limit": "500", **({"after": after} if after else {})}
            page = await self._call(
                "list_note_associations",
                "GET",
                f"{OBJECTS}/{APPOINTMENTS}/{appointment_id}/associations/notes",
                params=params,
            )
            ids.extend(note_ids(page))
            after = ((page.get("paging") or {}).get("next") or {}).get("after") if isinstance(page, dict) else None
            if not after:
                break
        notes: list[Mapping[str, Any]] = []
        for chunk in _chunks(ids, BATCH_LIMIT):
            body = {"inputs": [{"id": i} for i in chunk], "properties": NOTE_FIELDS}
            answer = await self._call("batch_read_notes", "POST", f"{OBJECTS}/notes/batch/read", json=body)
            notes.extend(answer.get("results", []) if isinstance(answer, dict) else [])
        return notes

    async def _call(
        self, operation: str, method: str, path: str, *, params: dict[str, str] | None = None, json: Any = None
    ) -> Any:
        headers = {"Authorization": f"Bearer {self._token.get_secret_value()}"}
        url = self._base + path
        what = f"{method} {path}"
        response = await send(
            self._http,
            method,
            url,
            what=what,
            call=Call("hubspot", operation),
            gate=self._gate,
            params=params,
            json=json,
            headers=headers,
        )
        return raise_for_hubspot(response)
