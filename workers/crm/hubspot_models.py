"""HubSpot CRM API response shapes and their translation into Records and our errors. Pure.

Shapes: docs/hubspot.md, "Appointments, notes and associations API" (objects, propertiesWithHistory) and
"Rate limits and errors" (429 bodies).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import orjson

from workers.crm.responses import body_of
from workers.errors import (
    CrmAuthError,
    CrmNotFoundError,
    CrmRateLimitedError,
    CrmRejectedError,
    CrmTransientError,
)
from workers.record import HistoryEntry, Modified, Record, parse_datetime

APPOINTMENTS = "appointments"
LAST_MODIFIED = "hs_lastmodifieddate"
START, END = "hs_appointment_start", "hs_appointment_end"
# Rate-limit waits when HubSpot gives no Retry-After (it documents none for REST 429s: UNCONFIRMED).
TEN_SECONDLY_WAIT_S = 10.0
SECONDLY_WAIT_S = 1.0
DAILY_WAIT_S = 3600.0  # the daily quota resets at midnight in the account's time zone; look again hourly


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def rate_limit_wait_s(response: httpx.Response, body: Any) -> float:
    """How long a 429 asks us to wait: Retry-After if given, else by the policy HubSpot names."""
    retry_after = _seconds(response.headers.get("retry-after"))
    if retry_after is not None:
        return retry_after
    policy = body.get("policyName") if isinstance(body, dict) else None
    message = str(body.get("message", "")) if isinstance(body, dict) else ""
    if policy == "DAILY":
        return DAILY_WAIT_S
    if "secondly limit" in message:
        return SECONDLY_WAIT_S
    interval_ms = _seconds(response.headers.get("x-hubspot-ratelimit-interval-milliseconds"))
    return interval_ms / 1000 if interval_ms else TEN_SECONDLY_WAIT_S


def raise_for_hubspot(response: httpx.Response) -> Any:
    """Return the JSON body of a successful answer (207 included: callers read its errors), else raise."""
    status = response.status_code
    if status == 429:
        body = _quiet_body(response)
        policy = body.get("policyName", "RATE_LIMIT") if isinstance(body, dict) else "RATE_LIMIT"
        raise CrmRateLimitedError(
            f"HubSpot rate limit ({policy})", code=str(policy), retry_after_s=rate_limit_wait_s(response, body)
        )
    if status in (423, 477) or status >= 500:
        # 423: "Locks will last for 2 seconds"; 477: migration in progress, with a Retry-After.
        wait = _seconds(response.headers.get("retry-after")) or (2.0 if status == 423 else None)
        raise CrmTransientError(f"HubSpot answered HTTP {status}", code=f"HTTP_{status}", retry_after_s=wait)
    body = body_of(response)
    if status < 400:
        return body
    category = str(body.get("category") or f"HTTP_{status}") if isinstance(body, dict) else f"HTTP_{status}"
    message = str(body.get("message") or f"HTTP {status}") if isinstance(body, dict) else f"HTTP {status}"
    details = body.get("errors") if isinstance(body, dict) else None
    if status in (401, 403):
        raise CrmAuthError(message, code=category, details=details, quoted=True)
    if status == 404:
        raise CrmNotFoundError(message, code=category, details=details, quoted=True)
    raise CrmRejectedError(message, code=category, details=details, quoted=True)


def property_names(body: Any) -> frozenset[str]:
    """The names in a GET /crm/properties/2026-03/{type} answer (`{"results": [{"name": ...}, ...]}`)."""
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list):
        raise CrmTransientError("property list without a `results` list", code="BAD_RESPONSE")
    return frozenset(item["name"] for item in results if isinstance(item, dict) and isinstance(item.get("name"), str))


def _quiet_body(response: httpx.Response) -> Any:
    try:
        return orjson.loads(response.content) if response.content else {}
    except orjson.JSONDecodeError:
        return {}


def _history(raw: Any) -> tuple[HistoryEntry, ...]:
    entries: list[tuple[int, HistoryEntry]] = []
    for position, item in enumerate(raw if isinstance(raw, list) else []):
        at = parse_datetime(item.get("timestamp")) if isinstance(item, dict) else None
        if at is None:
            continue
        user = item.get("updatedByUserId")
        entry = HistoryEntry(
            value=item.get("value"),
            timestamp=at,
            source_type=item.get("sourceType"),
            source_id=None if item.get("sourceId") is None else str(item.get("sourceId")),
            user_id=None if user is None else str(user),
        )
        entries.append((position, entry))
    # HubSpot does not document the order: sort by time, oldest first. Two changes in the same millisecond
    # keep HubSpot's own order reversed, since it has been seen listing the newest first.
    ordered = sorted(entries, key=lambda pair: (pair[1].timestamp, -pair[0]))
    return tuple(entry for _, entry in ordered)


def appointment_record(obj: Any) -> Record:
    """A Record from one HubSpot object (GET or an item of a batch read)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("properties"), dict) or "id" not in obj:
        raise CrmTransientError("appointment is not a HubSpot object", code="BAD_RESPONSE")
    fields: dict[str, Any] = obj["properties"]
    modified = parse_datetime(obj.get("updatedAt")) or parse_datetime(fields.get("hs_lastmodifieddate"))
    if modified is None:
        raise CrmTransientError("appointment has no valid updatedAt", code="BAD_RESPONSE")
    raw_history = obj.get("propertiesWithHistory")
    history = {name: _history(raw) for name, raw in raw_history.items()} if isinstance(raw_history, dict) else {}
    return Record(
        source="hubspot", module=APPOINTMENTS, id=str(obj["id"]), modified_time=modified, fields=fields, history=history
    )


def batch_records(body: Any) -> tuple[list[Record], list[str]]:
    """The records of a batch read answer, and the ids HubSpot reported missing (in a 207)."""
    results = body.get("results", []) if isinstance(body, dict) else []
    missing: list[str] = []
    for error in body.get("errors", []) if isinstance(body, dict) else []:
        ids = (error.get("context") or {}).get("ids", []) if isinstance(error, dict) else []
        missing.extend(str(i) for i in ids)
    return [appointment_record(obj) for obj in results], missing


def inferred_previous(record: Record, since: datetime | None = None) -> dict[str, Any]:
    """What a first-seen appointment's own history says its start was before the latest change; with `since`
    (a sweep's window start), the start in effect at `since` (or at creation, for a record created after it),
    so that every move since then is logged, and none when the latest move is older than `since`."""
    entries = record.history.get(START, ())
    current = parse_datetime(record.fields.get(START))
    if not entries or parse_datetime(entries[-1].value) != current:
        return {}
    if since is None:
        return {START: entries[-2].value} if len(entries) >= 2 else {}
    if entries[-1].timestamp < since:
        return {}
    before = [entry for entry in entries if entry.timestamp <= since]
    base = before[-1] if before else entries[0]
    return {START: base.value} if parse_datetime(base.value) != current else {}


def association_type_id(body: Any) -> int:
    """The unlabelled HUBSPOT_DEFINED association type in a labels answer (the default association)."""
    results = body.get("results", []) if isinstance(body, dict) else []
    for item in results:
        if isinstance(item, dict) and item.get("category") == "HUBSPOT_DEFINED" and not item.get("label"):
            return int(item["typeId"])
    raise CrmRejectedError("HubSpot lists no default note-to-appointment association", code="NO_ASSOCIATION_TYPE")


def note_ids(body: Any) -> list[str]:
    """Ids of the notes in an appointment → notes associations answer."""
    results = body.get("results", []) if isinstance(body, dict) else []
    return [str(item.get("toObjectId", item.get("id"))) for item in results if isinstance(item, dict)]


def as_hubspot_time(moment: datetime) -> str:
    """Epoch milliseconds as text, which HubSpot takes for hs_timestamp."""
    return str(int(moment.timestamp() * 1000))


def properties_of(obj: Any) -> Mapping[str, Any]:
    return obj.get("properties", {}) if isinstance(obj, dict) else {}


@dataclass(frozen=True)
class SearchPage:
    """One page of a search (docs/hubspot.md, "Search"): records in HubSpot's order, the total, the next `after`."""

    records: tuple[Modified, ...]
    total: int
    next_after: str | None


def search_page(body: Any) -> SearchPage:
    """The records of a search answer with their hs_lastmodifieddate (else updatedAt); BAD_RESPONSE for one
    that has neither, since the sweep could not place it in its window."""
    results = body.get("results") if isinstance(body, dict) else None
    records: list[Modified] = []
    for obj in results if isinstance(results, list) else []:
        if not isinstance(obj, dict) or "id" not in obj:
            raise CrmTransientError("a search result is not a HubSpot object", code="BAD_RESPONSE")
        modified = parse_datetime(properties_of(obj).get(LAST_MODIFIED)) or parse_datetime(obj.get("updatedAt"))
        if modified is None:
            raise CrmTransientError("a search result has no valid hs_lastmodifieddate", code="BAD_RESPONSE")
        records.append(Modified(str(obj["id"]), modified))
    paging = body.get("paging") if isinstance(body, dict) else None
    after = ((paging or {}).get("next") or {}).get("after") if isinstance(paging, dict) else None
    total = body.get("total") if isinstance(body, dict) else None
    return SearchPage(
        records=tuple(records),
        total=total if isinstance(total, int) else len(records),
        next_after=str(after) if after not in (None, "") else None,
    )


def modified_window_search(since: datetime, until: datetime, *, limit: int, after: str | None) -> dict[str, Any]:
    """The search body for appointments with hs_lastmodifieddate in [since, until] (epoch ms), oldest first."""
    filters = [
        {"propertyName": LAST_MODIFIED, "operator": "GTE", "value": as_hubspot_time(since)},
        {"propertyName": LAST_MODIFIED, "operator": "LTE", "value": as_hubspot_time(until)},
    ]
    body: dict[str, Any] = {
        "filterGroups": [{"filters": filters}],
        "sorts": [{"propertyName": LAST_MODIFIED, "direction": "ASCENDING"}],
        "properties": [LAST_MODIFIED],
        "limit": limit,
    }
    if after is not None:
        body["after"] = after
    return body
