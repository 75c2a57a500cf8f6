"""Notification channels of `/crm/v7/actions/watch`: body validation, expiry, event matching. Pure.

Rules (Zoho v7 notification pages; docs/zoho-crm.md, "Notifications (watch channels)"): `channel_id`, `events`,
`notify_url` are mandatory; events are `{module}.{create|edit|delete|all}`; `token` is at most 50 characters; a
missing `channel_expiry`, or one more than a week ahead, silently becomes one hour from now;
`notify_on_related_action` defaults to true. POST upserts by channel_id. PUT replaces an existing channel. PATCH
merges into an existing one but, as integrators report, `events` must be sent again and an omitted `token`
becomes null. Only the sandbox's two modules can be watched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from sandbox.zoho.errors import RecordError, mandatory_not_found, record_invalid, record_not_object
from sandbox.zoho.time import format_datetime, parse_datetime
from sandbox.zoho.watch_conditions import NotificationCondition, condition_allows, parse_conditions
from sandbox.zoho.writes import Operation

MODULE_IDS = {
    "Appointments__s": "5545974000000091001",
    "Appointments_Rescheduled_History__s": "5545974000000091007",
}
VERBS = ("create", "edit", "delete", "all")
OPERATION_VERBS: dict[Operation, str] = {"insert": "create", "update": "edit", "delete": "delete"}
DEFAULT_EXPIRY = timedelta(hours=1)
MAX_EXPIRY = timedelta(days=7)
MAX_TOKEN_LENGTH = 50
MAX_EVENTS = 50
MAX_CHANNELS_PER_CALL = 50
SUBSCRIBED = "Successfully subscribed for actions-watch of the given module"
UNSUBSCRIBED = "Successfully un-subscribed from actions-watch"


def resource_uri(module: str) -> str:
    """Zoho shows a v2 URI in watch answers and callbacks whatever version was called."""
    return f"https://www.zohoapis.com/crm/v2/{module}"


@dataclass(frozen=True)
class Channel:
    """One subscription."""

    channel_id: str
    events: tuple[str, ...]
    notify_url: str
    token: str | None
    expires_at: datetime
    return_affected_field_values: bool = False
    notify_on_related_action: bool = True
    conditions: tuple[NotificationCondition, ...] = ()
    raw_conditions: Any = None

    def modules(self) -> list[str]:
        return list(dict.fromkeys(event.split(".", 1)[0] for event in self.events))

    def active(self, now: datetime) -> bool:
        return now < self.expires_at

    def wants(self, module: str, operation: Operation, changed: tuple[str, ...]) -> bool:
        """Subscribed to this module and operation, and (for edits) the notification condition holds."""
        if f"{module}.{OPERATION_VERBS[operation]}" not in self.events and f"{module}.all" not in self.events:
            return False
        return operation != "update" or condition_allows(self.conditions, module, changed)

    def subscription(self, module: str, tz: timezone) -> dict[str, Any]:
        """One `details.events` entry of an enable/update answer."""
        return {
            "channel_expiry": format_datetime(self.expires_at, tz),
            "resource_uri": resource_uri(module),
            "resource_id": MODULE_IDS[module],
            "resource_name": module,
            "channel_id": self.channel_id,
        }

    def describe(self, module: str, tz: timezone) -> dict[str, Any]:
        """One entry of GET /actions/watch (Zoho lists a channel once per module)."""
        return {
            "notify_on_related_action": self.notify_on_related_action,
            "channel_expiry": format_datetime(self.expires_at, tz),
            "return_affected_field_values": self.return_affected_field_values,
            "resource_uri": resource_uri(module),
            "resource_id": MODULE_IDS[module],
            "notify_url": self.notify_url,
            "resource_name": module,
            "fields": None,
            "notification_condition": self.raw_conditions,
            "channel_id": self.channel_id,
            "events": [event for event in self.events if event.startswith(f"{module}.")],
            "token": self.token,
        }


class _Reject(Exception):
    def __init__(self, error: RecordError) -> None:
        super().__init__(error.code)
        self.error = error


def _channel_id(value: Any, index: int) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return str(value)
    if isinstance(value, str) and value.isdigit():
        return value
    raise _Reject(record_invalid(index, "channel_id", key="watch", expected_data_type="long"))


def _events(value: Any, index: int) -> tuple[str, ...]:
    bad = _Reject(record_invalid(index, "events", key="watch"))
    if not isinstance(value, list) or not value or len(value) > MAX_EVENTS:
        raise bad
    for event in value:
        module, _, verb = event.partition(".") if isinstance(event, str) else ("", "", "")
        if module not in MODULE_IDS or verb not in VERBS:
            raise bad
    return tuple(dict.fromkeys(value))


def _notify_url(value: Any, index: int) -> str:
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise _Reject(record_invalid(index, "notify_url", key="watch"))
    return str(value)


def _token(value: Any, index: int) -> str | None:
    if value is not None and not isinstance(value, str):
        raise _Reject(record_invalid(index, "token", key="watch", expected_data_type="text"))
    if value is not None and len(value) > MAX_TOKEN_LENGTH:
        raise _Reject(record_invalid(index, "token", key="watch", maximum_length=MAX_TOKEN_LENGTH))
    return value


def _expiry(value: Any, index: int, now: datetime) -> datetime:
    if value is None:
        return now + DEFAULT_EXPIRY
    expiry = parse_datetime(value)
    if expiry is None:
        raise _Reject(record_invalid(index, "channel_expiry", key="watch", expected_data_type="datetime"))
    if expiry <= now:
        raise _Reject(record_invalid(index, "channel_expiry", key="watch"))
    return now + DEFAULT_EXPIRY if expiry - now > MAX_EXPIRY else expiry


def _flag(item: dict[str, Any], name: str, index: int, default: bool) -> bool:
    value = item.get(name, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _Reject(record_invalid(index, name, key="watch", expected_data_type="boolean"))
    return value


def _build(item: dict[str, Any], index: int, now: datetime) -> Channel:
    for name in ("channel_id", "events", "notify_url"):
        if item.get(name) is None:
            raise _Reject(mandatory_not_found(index, name, key="watch"))
    conditions = parse_conditions(item.get("notification_condition"), index, MODULE_IDS)
    if isinstance(conditions, RecordError):
        raise _Reject(conditions)
    return Channel(
        channel_id=_channel_id(item["channel_id"], index),
        events=_events(item["events"], index),
        notify_url=_notify_url(item["notify_url"], index),
        token=_token(item.get("token"), index),
        expires_at=_expiry(item.get("channel_expiry"), index, now),
        return_affected_field_values=_flag(item, "return_affected_field_values", index, False),
        notify_on_related_action=_flag(item, "notify_on_related_action", index, True),
        conditions=conditions,
        raw_conditions=item.get("notification_condition"),
    )


def _as_item(channel: Channel) -> dict[str, Any]:
    """The stored channel as a request item, for PATCH merges (expiry and token are not carried over)."""
    return {
        "channel_id": channel.channel_id,
        "notify_url": channel.notify_url,
        "return_affected_field_values": channel.return_affected_field_values,
        "notify_on_related_action": channel.notify_on_related_action,
        "notification_condition": channel.raw_conditions,
    }


Merge = Callable[[dict[str, Any], Channel | None, int], dict[str, Any]]


def _upsert(item: dict[str, Any], existing: Channel | None, index: int) -> dict[str, Any]:
    return item


def _replace(item: dict[str, Any], existing: Channel | None, index: int) -> dict[str, Any]:
    if existing is None:
        raise _Reject(record_invalid(index, "channel_id", key="watch"))
    return item


def _patch(item: dict[str, Any], existing: Channel | None, index: int) -> dict[str, Any]:
    if existing is None:
        raise _Reject(record_invalid(index, "channel_id", key="watch"))
    if item.get("events") is None:
        raise _Reject(mandatory_not_found(index, "events", key="watch"))
    return {**_as_item(existing), **item}


class ChannelRegistry:
    """The org's channels, by channel_id."""

    def __init__(self) -> None:
        self._channels: dict[str, Channel] = {}

    def reset(self, default: Channel | None) -> None:
        self._channels = {} if default is None else {default.channel_id: default}

    def enable(self, items: list[Any], now: datetime) -> list[Channel | RecordError]:
        """POST: create or overwrite each channel."""
        return self._write(items, now, _upsert)

    def replace(self, items: list[Any], now: datetime) -> list[Channel | RecordError]:
        """PUT: replace existing channels with exactly what is sent."""
        return self._write(items, now, _replace)

    def patch(self, items: list[Any], now: datetime) -> list[Channel | RecordError]:
        """PATCH: merge what is sent into existing channels."""
        return self._write(items, now, _patch)

    def _write(self, items: list[Any], now: datetime, merge: Merge) -> list[Channel | RecordError]:
        results: list[Channel | RecordError] = []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                results.append(record_not_object(index, key="watch"))
                continue
            existing = self._find(item.get("channel_id"))
            try:
                live = existing if existing is not None and existing.active(now) else None
                channel = _build(merge(item, live, index), index, now)
            except _Reject as rejected:
                results.append(rejected.error)
                continue
            self._channels[channel.channel_id] = channel
            results.append(channel)
        return results

    def _find(self, channel_id: Any) -> Channel | None:
        return self._channels.get(str(channel_id)) if channel_id is not None else None

    def disable(self, channel_ids: list[str], now: datetime) -> list[Channel | RecordError]:
        """DELETE ?channel_ids=: remove each channel; unknown or expired ids are per-item INVALID_DATA."""
        results: list[Channel | RecordError] = []
        for channel_id in channel_ids:
            channel = self._channels.get(channel_id)
            if channel is None or not channel.active(now):
                details = {"api_name": "channel_ids", "channel_id": channel_id}
                results.append(RecordError(400, "INVALID_DATA", "invalid data", details))
                continue
            del self._channels[channel_id]
            results.append(channel)
        return results

    def active(self, now: datetime) -> list[Channel]:
        return [channel for channel in self._channels.values() if channel.active(now)]

    def age(self, channel_id: str, expires_at: datetime, now: datetime) -> Channel | None:
        """Move an active channel's expiry to `expires_at` (a test control: at or before `now` it has expired,
        and is gone as Zoho deletes expired channels); None when no such channel is active."""
        channel = self._channels.get(channel_id)
        if channel is None or not channel.active(now):
            return None
        aged = replace(channel, expires_at=expires_at)
        self._channels[channel_id] = aged
        return aged
