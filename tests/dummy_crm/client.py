"""The dummy CRM's client and a stateful fake of its API for httpx.MockTransport."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from workers.crm.responses import Call, body_of, send
from workers.errors import CrmNotFoundError, CrmTransientError
from workers.record import Record

BASE = "http://dummy-crm"


class DummyClient:
    """GET /widgets/{id}; GET and POST /widgets/{id}/notes."""

    def __init__(self, http: httpx.AsyncClient, *, base_url: str = BASE) -> None:
        self._http = http
        self._base = base_url

    async def _call(self, operation: str, method: str, path: str, **kwargs: Any) -> Any:
        what, call = f"{method} {path}", Call("dummy", operation)
        response = await send(self._http, method, self._base + path, what=what, call=call, **kwargs)
        if response.status_code == 404:
            raise CrmNotFoundError(path)
        if response.status_code >= 400:
            raise CrmTransientError(f"HTTP {response.status_code}", code=f"HTTP_{response.status_code}")
        return body_of(response)

    async def get_widget(self, widget_id: str) -> Record:
        body = await self._call("get_record", "GET", f"/widgets/{widget_id}")
        modified = datetime.fromisoformat(body["modified"])
        return Record(source="dummy", module="widgets", id=widget_id, modified_time=modified, fields=body["fields"])

    async def notes_of(self, widget_id: str) -> list[dict[str, Any]]:
        notes: list[dict[str, Any]] = await self._call("list_notes", "GET", f"/widgets/{widget_id}/notes")
        return notes

    async def add_note(self, widget_id: str, text: str) -> str:
        created = await self._call("create_note", "POST", f"/widgets/{widget_id}/notes", json={"text": text})
        return str(created["id"])


@dataclass
class FakeDummyCrm:
    """The dummy CRM's state: widgets (fields and modified time) and their notes; a request log."""

    widgets: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def put(self, widget_id: str, modified: datetime, **fields: Any) -> None:
        self.widgets[widget_id] = {"modified": modified.astimezone(UTC).isoformat(), "fields": fields}

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(f"{request.method} {request.url.path}")
        parts = request.url.path.strip("/").split("/")
        if len(parts) < 2 or parts[0] != "widgets" or parts[1] not in self.widgets:
            return httpx.Response(404, json={"error": "not found"})
        widget_id = parts[1]
        if len(parts) == 2 and request.method == "GET":
            return httpx.Response(200, json=self.widgets[widget_id])
        notes = self.notes.setdefault(widget_id, [])
        if parts[2:] == ["notes"] and request.method == "GET":
            return httpx.Response(200, json=notes)
        if parts[2:] == ["notes"] and request.method == "POST":
            note = {"id": f"note-{len(notes) + 1}", "text": orjson.loads(request.content)["text"]}
            notes.append(note)
            return httpx.Response(201, json={"id": note["id"]})
        return httpx.Response(405)
