"""Zoho watch channels (/crm/v7/actions/watch): request items, listed channels and per-item answers. Pure.

Shapes: docs/zoho-crm.md, "Notifications (watch channels)". GET lists a channel once per module it watches
(204 when there are none); enable (POST) and update (PATCH) answer one {"code","details","message","status"}
entry per channel sent, in order, with the granted `channel_expiry` in `details.events[]`; a mixed answer is
HTTP 207. DELETE answers one entry per channel and module, naming the channel in `details.channel_id`.
A listed channel carries its `token`: it is kept as a SecretStr and never shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import SecretStr

from workers.crm.zoho_models import as_zoho_time
from workers.errors import CrmRejectedError, CrmTransientError
from workers.record import parse_datetime

WATCH = "actions/watch"
# Zoho's OpenAPI (v8) allows at most 50 channels per request.
MAX_CHANNELS_PER_CALL = 50


@dataclass(frozen=True)
class ChannelSpec:
    """A channel as crmflow wants it; `item(expiry)` is its full request body entry (POST, PATCH)."""

    channel_id: str
    events: tuple[str, ...]
    notify_url: str
    token: SecretStr
    return_affected_field_values: bool = True
    notify_on_related_action: bool = False

    def item(self, expiry: datetime) -> dict[str, Any]:
        """Every key crmflow owns, always all of them: a PATCH that leaves out events or token wipes them."""
        return {
            "channel_id": self.channel_id,
            "events": list(self.events),
            "notify_url": self.notify_url,
            "token": self.token.get_secret_value(),
            "channel_expiry": as_zoho_time(expiry),
            "return_affected_field_values": self.return_affected_field_values,
            "notify_on_related_action": self.notify_on_related_action,
        }


@dataclass(frozen=True)
class WatchChannel:
    """A channel as Zoho lists it (its entries for each module merged)."""

    channel_id: str
    events: tuple[str, ...]
    notify_url: str | None
    expires_at: datetime | None
    token: SecretStr | None
    return_affected_field_values: bool | None
    notify_on_related_action: bool | None
    has_condition: bool = False


@dataclass(frozen=True)
class Granted:
    """A channel Zoho enabled or updated, with the expiry it granted (the earliest over its modules)."""

    channel_id: str
    expires_at: datetime


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def parse_channels(body: Any) -> dict[str, WatchChannel]:
    """The channels of a GET /actions/watch answer, by channel_id ({} for 204)."""
    entries = body.get("watch") if isinstance(body, dict) else None
    if entries is None:
        return {}
    if not isinstance(entries, list):
        raise CrmTransientError("watch list is not an array", code="BAD_RESPONSE")
    channels: dict[str, WatchChannel] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("channel_id") is None:
            raise CrmTransientError("watch list entry without channel_id", code="BAD_RESPONSE")
        channel_id = str(entry["channel_id"])
        events = tuple(str(event) for event in entry.get("events") or [])
        expiry = parse_datetime(entry.get("channel_expiry"))
        token = entry.get("token")
        seen = channels.get(channel_id)
        if seen is not None:
            events = (*seen.events, *events)
            if seen.expires_at is not None and (expiry is None or seen.expires_at < expiry):
                expiry = seen.expires_at
        channels[channel_id] = WatchChannel(
            channel_id=channel_id,
            events=tuple(dict.fromkeys(events)),
            notify_url=entry.get("notify_url") if isinstance(entry.get("notify_url"), str) else None,
            expires_at=expiry,
            token=SecretStr(token) if isinstance(token, str) else None,
            return_affected_field_values=_flag(entry.get("return_affected_field_values")),
            notify_on_related_action=_flag(entry.get("notify_on_related_action")),
            has_condition=bool(entry.get("notification_condition")),
        )
    return channels


def _item_error(entry: Mapping[str, Any]) -> CrmRejectedError:
    code = str(entry.get("code") or "REJECTED")
    message = str(entry.get("message") or "refused")
    details = entry.get("details")
    field = details.get("api_name") if isinstance(details, dict) else None
    return CrmRejectedError(f"{message} ({field})" if field else message, code=code, details=details)


def _entries(body: Any) -> list[Any]:
    entries = body.get("watch") if isinstance(body, dict) else None
    if not isinstance(entries, list):
        raise CrmTransientError("watch answer has no watch array", code="BAD_RESPONSE")
    return entries


def parse_write(body: Any, channel_ids: list[str]) -> dict[str, Granted | CrmRejectedError | CrmTransientError]:
    """Per channel sent (in order), what an enable or update answer says: granted, or the error Zoho gave."""
    entries = _entries(body)
    results: dict[str, Granted | CrmRejectedError | CrmTransientError] = {}
    for index, channel_id in enumerate(channel_ids):
        entry = entries[index] if index < len(entries) else None
        if not isinstance(entry, dict):
            results[channel_id] = CrmTransientError("no answer for this channel", code="BAD_RESPONSE")
        elif entry.get("status") != "success":
            results[channel_id] = _item_error(entry)
        else:
            results[channel_id] = _granted(entry, channel_id)
    return results


def _granted(entry: Mapping[str, Any], channel_id: str) -> Granted | CrmTransientError:
    details = entry.get("details")
    events = details.get("events") if isinstance(details, dict) else None
    expiries = [parse_datetime(event.get("channel_expiry")) for event in events or [] if isinstance(event, dict)]
    known = [expiry for expiry in expiries if expiry is not None]
    if not known:
        return CrmTransientError("Zoho's answer has no channel_expiry", code="BAD_RESPONSE")
    return Granted(channel_id, min(known))


def parse_disable(body: Any, channel_ids: list[str]) -> dict[str, CrmRejectedError | None]:
    """Per channel asked, None when Zoho disabled it, else the error it gave (entries name their channel)."""
    results: dict[str, CrmRejectedError | None] = {}
    for entry in _entries(body):
        details = entry.get("details") if isinstance(entry, dict) else None
        channel_id = str(details.get("channel_id")) if isinstance(details, dict) else None
        if channel_id not in channel_ids or not isinstance(entry, dict):
            continue
        if entry.get("status") == "success":
            results.setdefault(channel_id, None)
        else:
            results[channel_id] = _item_error(entry)
    for channel_id in channel_ids:
        results.setdefault(channel_id, CrmRejectedError("Zoho's answer does not name this channel", code="UNKNOWN"))
    return results
