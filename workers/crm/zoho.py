"""CRM (Zoho): the calls crmflow makes to Zoho CRM's v7 API, over an injected httpx.AsyncClient."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from workers.crm.responses import Gate, send
from workers.crm.zoho_auth import ZohoTokens
from workers.crm.zoho_models import APPOINTMENTS, HISTORY, appointment_record, created_id, history_rows, raise_for_zoho
from workers.errors import CrmAuthError
from workers.record import Record

# A 401 a new access token cannot cure: the grant itself lacks the scope.
NOT_FIXED_BY_REFRESH = frozenset({"OAUTH_SCOPE_MISMATCH"})
HISTORY_FIELDS = "Appointment_Name,Rescheduled_From,Rescheduled_To,Rescheduled_Time,Rescheduled_By"


class ZohoClient:
    """Zoho CRM v7: fetch appointments, read and write their rescheduled history."""

    def __init__(
        self, http: httpx.AsyncClient, *, api_domain: str, tokens: ZohoTokens, gate: Gate | None = None
    ) -> None:
        self._http = http
        self._base = f"{api_domain.rstrip('/')}/crm/v7"
        self._tokens = tokens
        # The org's shared limiter and call counter (workers/crm/limits.py); None: neither.
        self._gate = gate

    async def get_appointment(self, record_id: str) -> Record:
        """GET /Appointments__s/{id}."""
        body = await self._call("GET", f"/{APPOINTMENTS}/{record_id}")
        return appointment_record(body, record_id)

    async def list_reschedule_history(self, appointment_id: str) -> list[Mapping[str, Any]]:
        """GET /Appointments__s/{id}/Appointments_Rescheduled_History__s (Zoho keeps the latest 20)."""
        body = await self._call("GET", f"/{APPOINTMENTS}/{appointment_id}/{HISTORY}", params={"fields": HISTORY_FIELDS})
        return history_rows(body)

    async def add_reschedule_history(self, row: Mapping[str, Any]) -> str:
        """POST one row to /Appointments_Rescheduled_History__s; return the new row's id."""
        body = await self._call("POST", f"/{HISTORY}", json={"data": [dict(row)]})
        return created_id(body)

    async def _call(self, method: str, path: str, *, params: dict[str, str] | None = None, json: Any = None) -> Any:
        token = await self._tokens.get()
        response = await self._send(method, path, token, params=params, json=json)
        if response.status_code == 401:
            try:
                raise_for_zoho(response)
            except CrmAuthError as exc:
                if exc.code in NOT_FIXED_BY_REFRESH:
                    raise
            # Expired, revoked, or pushed out by newer tokens (INVALID_TOKEN, INVALID_OAUTHTOKEN, ...):
            # refresh once (unless another worker already has) and try again.
            token = await self._tokens.refresh(stale=token)
            response = await self._send(method, path, token, params=params, json=json)
        return raise_for_zoho(response)

    async def _send(
        self, method: str, path: str, token: str, *, params: dict[str, str] | None, json: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Zoho-oauthtoken {token}"}
        url, what = self._base + path, f"{method} {path}"
        return await send(
            self._http, method, url, what=what, gate=self._gate, params=params, json=json, headers=headers
        )
