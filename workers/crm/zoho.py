"""CRM (Zoho): the calls crmflow makes to Zoho CRM's v7 API, over an injected httpx.AsyncClient."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx

from workers.crm.responses import Call, Gate, send
from workers.crm.zoho_auth import ZohoTokens
from workers.crm.zoho_models import (
    APPOINTMENTS,
    HISTORY,
    NOTES,
    ModifiedListing,
    appointment_record,
    created_id,
    field_names,
    history_rows,
    modified_listing,
    note_parent,
    note_rows,
    raise_for_zoho,
)
from workers.crm.zoho_watch_models import (
    MAX_CHANNELS_PER_CALL,
    WATCH,
    ChannelSpec,
    Granted,
    WatchChannel,
    parse_channels,
    parse_disable,
    parse_write,
)
from workers.errors import CrmAuthError, CrmNotFoundError, CrmRejectedError, CrmTransientError
from workers.record import Record

# A 401 a new access token cannot cure: the grant itself lacks the scope.
NOT_FIXED_BY_REFRESH = frozenset({"OAUTH_SCOPE_MISMATCH"})
HISTORY_FIELDS = "Appointment_Name,Rescheduled_From,Rescheduled_To,Rescheduled_Time,Rescheduled_By"
LIST_PER_PAGE = 200  # Zoho's maximum per page
# Zoho's page on GET Appointments__s says both that `page` cannot go with `page_token` and that the token is
# passed "with param page=10" (docs/zoho-crm.md, "Listing appointments"). The client sends the token alone;
# when Zoho answers one of these codes it tries once more with page=10 and keeps to what worked, and the
# other way round on AMBIGUITY_DURING_PROCESSING.
TOKEN_NEEDS_PAGE = frozenset({"REQUIRED_PARAM_MISSING", "TOKEN_BOUND_DATA_MISMATCH"})
TOKEN_PAGE = "10"
NOTE_FIELDS = "Note_Title,Note_Content"  # `fields` is mandatory on GET Notes since v3
# A note lookup reads at most this many pages of 200 (oldest first): 2,000 notes on one appointment.
MAX_NOTE_PAGES = 10


class ZohoClient:
    """Zoho CRM v7: fetch and update appointments, read and write their rescheduled history and their notes."""

    def __init__(
        self, http: httpx.AsyncClient, *, api_domain: str, tokens: ZohoTokens, gate: Gate | None = None
    ) -> None:
        self._http = http
        self._base = f"{api_domain.rstrip('/')}/crm/v7"
        self._tokens = tokens
        self._token_with_page = False
        # The org's shared limiter and call counter (workers/crm/limits.py); None: neither.
        self._gate = gate

    async def get_appointment(self, record_id: str) -> Record:
        """GET /Appointments__s/{id}."""
        body = await self._call("get_record", "GET", f"/{APPOINTMENTS}/{record_id}")
        return appointment_record(body, record_id)

    async def update_appointment(self, record_id: str, fields: Mapping[str, Any]) -> str:
        """PUT /Appointments__s/{id} with `{"data": [fields]}`; the record's id once Zoho reports it updated.

        Zoho answers per record: a refusal (INVALID_DATA, DEPENDENT_FIELD_MISSING, NOT_ALLOWED, ...) is
        CrmRejectedError; an id Zoho no longer knows (a deleted appointment) is CrmNotFoundError.
        """
        path = f"/{APPOINTMENTS}/{record_id}"
        try:
            body = await self._call("update_record", "PUT", path, json={"data": [dict(fields)]})
        except CrmRejectedError as exc:
            if exc.code == "INVALID_DATA" and isinstance(exc.details, dict) and "resource_path_index" in exc.details:
                raise CrmNotFoundError(exc.message, code=exc.code, details=exc.details, quoted=True) from exc
            raise
        return created_id(body)

    async def add_note(self, appointment_id: str, title: str, content: str) -> str:
        """POST one note to /Notes with the appointment as its parent record; the new note's id."""
        note = {"Note_Title": title, "Note_Content": content, "Parent_Id": note_parent(appointment_id)}
        return created_id(await self._call("create_note", "POST", f"/{NOTES}", json={"data": [note]}))

    async def notes_of(self, appointment_id: str) -> list[Mapping[str, Any]]:
        """GET /Appointments__s/{id}/Notes, page by page (oldest first, at most MAX_NOTE_PAGES pages)."""
        notes: list[Mapping[str, Any]] = []
        for page in range(1, MAX_NOTE_PAGES + 1):
            params = {"fields": NOTE_FIELDS, "per_page": str(LIST_PER_PAGE), "page": str(page)}
            body = await self._call("list_notes", "GET", f"/{APPOINTMENTS}/{appointment_id}/{NOTES}", params=params)
            rows, more = note_rows(body)
            notes.extend(rows)
            if not more:
                break
        return notes

    async def field_names(self, module: str) -> frozenset[str]:
        """GET /settings/fields?module=...: the API names of the module's fields, custom ones included (scope
        ZohoCRM.settings.fields.READ)."""
        return field_names(await self._call("get_fields", "GET", "/settings/fields", params={"module": module}))

    async def list_reschedule_history(self, appointment_id: str) -> list[Mapping[str, Any]]:
        """GET /Appointments__s/{id}/Appointments_Rescheduled_History__s (Zoho keeps the latest 20)."""
        body = await self._call(
            "list_history", "GET", f"/{APPOINTMENTS}/{appointment_id}/{HISTORY}", params={"fields": HISTORY_FIELDS}
        )
        return history_rows(body)

    async def add_reschedule_history(self, row: Mapping[str, Any]) -> str:
        """POST one row to /Appointments_Rescheduled_History__s; return the new row's id."""
        body = await self._call("create_history", "POST", f"/{HISTORY}", json={"data": [dict(row)]})
        return created_id(body)

    async def list_modified(
        self, *, page: int | None = None, page_token: str | None = None, per_page: int = LIST_PER_PAGE
    ) -> ModifiedListing:
        """GET /Appointments__s?fields=id,Modified_Time sorted by Modified_Time, newest first: one page, by
        `page` (1 to 10) or by a `page_token` from an earlier page's next_page_token."""
        params = {
            "fields": "id,Modified_Time",
            "sort_by": "Modified_Time",
            "sort_order": "desc",
            "per_page": str(per_page),
        }
        if page_token is None:
            return modified_listing(
                await self._call("list_modified", "GET", f"/{APPOINTMENTS}", params={**params, "page": str(page or 1)})
            )
        try:
            return await self._list_by_token(params, page_token, with_page=self._token_with_page)
        except CrmRejectedError as exc:
            other_reading = (
                exc.code == "AMBIGUITY_DURING_PROCESSING" if self._token_with_page else exc.code in TOKEN_NEEDS_PAGE
            )
            if not other_reading:
                raise
        listing = await self._list_by_token(params, page_token, with_page=not self._token_with_page)
        self._token_with_page = not self._token_with_page
        return listing

    async def _list_by_token(self, params: dict[str, str], token: str, *, with_page: bool) -> ModifiedListing:
        query = {**params, "page_token": token, **({"page": TOKEN_PAGE} if with_page else {})}
        return modified_listing(await self._call("list_modified", "GET", f"/{APPOINTMENTS}", params=query))

    # Watch channels (docs/zoho-crm.md, "Notifications (watch channels)"; scope ZohoCRM.notifications.ALL).

    async def list_channels(self) -> dict[str, WatchChannel]:
        """GET /actions/watch: the org's channels by channel_id (none for 204)."""
        return parse_channels(await self._call("list_channels", "GET", f"/{WATCH}"))

    async def enable_channels(
        self, specs: list[ChannelSpec], expiry: datetime
    ) -> dict[str, Granted | CrmRejectedError | CrmTransientError]:
        """POST /actions/watch with each channel's full body; per channel, the expiry granted or Zoho's error."""
        return await self._write_channels("POST", specs, expiry)

    async def update_channels(
        self, specs: list[ChannelSpec], expiry: datetime
    ) -> dict[str, Granted | CrmRejectedError | CrmTransientError]:
        """PATCH /actions/watch with each channel's full body (events and token included, or Zoho wipes them)."""
        return await self._write_channels("PATCH", specs, expiry)

    async def disable_channels(self, channel_ids: list[str]) -> dict[str, CrmRejectedError | None]:
        """DELETE /actions/watch?channel_ids=...; per channel, None when disabled, else Zoho's error."""
        params = {"channel_ids": ",".join(channel_ids)}
        return parse_disable(
            await self._call("disable_channels", "DELETE", f"/{WATCH}", params=params, per_item="watch"), channel_ids
        )

    async def _write_channels(
        self, method: str, specs: list[ChannelSpec], expiry: datetime
    ) -> dict[str, Granted | CrmRejectedError | CrmTransientError]:
        results: dict[str, Granted | CrmRejectedError | CrmTransientError] = {}
        operation = "enable_channels" if method == "POST" else "update_channels"
        for start in range(0, len(specs), MAX_CHANNELS_PER_CALL):
            chunk = specs[start : start + MAX_CHANNELS_PER_CALL]
            body = {"watch": [spec.item(expiry) for spec in chunk]}
            answer = await self._call(operation, method, f"/{WATCH}", json=body, per_item="watch")
            results.update(parse_write(answer, [spec.channel_id for spec in chunk]))
        return results

    async def _call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: Any = None,
        per_item: str | None = None,
    ) -> Any:
        token = await self._tokens.get()
        response = await self._send(operation, method, path, token, params=params, json=json)
        if response.status_code == 401:
            try:
                raise_for_zoho(response)
            except CrmAuthError as exc:
                if exc.code in NOT_FIXED_BY_REFRESH:
                    raise
            # Expired, revoked, or pushed out by newer tokens (INVALID_TOKEN, INVALID_OAUTHTOKEN, ...):
            # refresh once (unless another worker already has) and try again.
            token = await self._tokens.refresh(stale=token)
            response = await self._send(operation, method, path, token, params=params, json=json)
        return raise_for_zoho(response, per_item=per_item)

    async def _send(
        self, operation: str, method: str, path: str, token: str, *, params: dict[str, str] | None, json: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Zoho-oauthtoken {token}"}
        url, what = self._base + path, f"{method} {path}"
        return await send(
            self._http,
            method,
            url,
            what=what,
            call=Call("zoho", operation),
            gate=self._gate,
            params=params,
            json=json,
            headers=headers,
        )
