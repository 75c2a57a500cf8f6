"""Zoho notification callbacks: build the bodies (pure) and POST them with an injected httpx client.

Body format: Zoho's v7 enable/update-info pages (docs/zoho-crm.md, "Notifications (watch channels)"). One
callback per channel per API call carries every record of that module and operation the channel wants. Inserts
carry `"affected_fields": []` as in Zoho's create sample and no `affected_values`. Delivery is attempted once:
Zoho documents no retries (UNCONFIRMED), so a failed delivery is only logged. At most MAX_SENDING callbacks are
in flight at once; the others wait their turn in the sandbox (as Zoho's own queue would), not in the HTTP
client's connection pool, whose 10 s pool timeout would otherwise drop them all when thousands of changes come
faster than the receiver answers (bench/: 2,000 reschedules offered at once).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import orjson

from sandbox.zoho.time import epoch_ms
from sandbox.zoho.watch import Channel, resource_uri
from sandbox.zoho.writes import Operation, RecordChange

# Callbacks sent at once (well below the HTTP client's pool of 100 connections).
MAX_SENDING = 32


@dataclass(frozen=True)
class Delivery:
    """One callback to send."""

    channel_id: str
    url: str
    body: dict[str, Any]


def query_params(url: str) -> dict[str, str]:
    """The notify_url's query string as Zoho echoes it in `query_params`."""
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def callback_body(
    channel: Channel, module: str, operation: Operation, changes: Sequence[RecordChange], now: datetime
) -> dict[str, Any]:
    """The JSON Zoho POSTs to a channel's notify_url, keys in the order of Zoho's samples."""
    body: dict[str, Any] = {"server_time": epoch_ms(now)}
    if channel.return_affected_field_values and operation != "insert":
        body["affected_values"] = [{"record_id": change.record_id, "values": change.values} for change in changes]
    body.update(
        {
            "query_params": query_params(channel.notify_url),
            "module": module,
            "resource_uri": resource_uri(module),
            "ids": [change.record_id for change in changes],
            "affected_fields": []
            if operation == "insert"
            else [{change.record_id: list(change.fields)} for change in changes],
            "operation": operation,
            "channel_id": channel.channel_id,
            "token": channel.token,
        }
    )
    return body


def plan_deliveries(changes: Sequence[RecordChange], channels: Sequence[Channel], now: datetime) -> list[Delivery]:
    """Group the changes by (module, operation) and address each group to every channel that wants it."""
    groups: dict[tuple[str, Operation], list[RecordChange]] = {}
    for change in changes:
        groups.setdefault((change.module, change.operation), []).append(change)
    deliveries: list[Delivery] = []
    for (module, operation), group in groups.items():
        for channel in channels:
            wanted = [change for change in group if channel.wants(module, operation, change.fields)]
            if wanted:
                body = callback_body(channel, module, operation, wanted, now)
                deliveries.append(Delivery(channel.channel_id, channel.notify_url, body))
    return deliveries


class Notifier:
    """Sends deliveries one after the other, at most MAX_SENDING at once overall, and keeps a log of every attempt
    (`queued_at`: when the change was made and the callback queued; `sent_at`: when it was sent, after any wait
    for its turn)."""

    def __init__(self, client: Callable[[], httpx.AsyncClient], clock: Callable[[], datetime]) -> None:
        self._client = client
        self._clock = clock
        self.log: list[dict[str, Any]] = []
        self._turns: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None

    def _sending(self) -> asyncio.Semaphore:
        """The semaphore of the running event loop (a runtime may outlive one loop, e.g. in tests)."""
        loop = asyncio.get_running_loop()
        if self._turns is None or self._turns[0] is not loop:
            self._turns = (loop, asyncio.Semaphore(MAX_SENDING))
        return self._turns[1]

    async def deliver(self, deliveries: Sequence[Delivery]) -> None:
        queued_at = self._clock().isoformat()
        for delivery in deliveries:
            async with self._sending():
                await self._send(delivery, queued_at)

    async def _send(self, delivery: Delivery, queued_at: str) -> None:
        entry: dict[str, Any] = {
            "seq": len(self.log) + 1,
            "channel_id": delivery.channel_id,
            "url": delivery.url,
            "body": delivery.body,
            "queued_at": queued_at,
            "sent_at": self._clock().isoformat(),
            "status_code": None,
            "error": None,
        }
        started = time.perf_counter()
        try:
            response = await self._client().post(
                delivery.url, content=orjson.dumps(delivery.body), headers={"Content-Type": "application/json"}
            )
            entry["status_code"] = response.status_code
        except httpx.HTTPError as exc:
            entry["error"] = f"{type(exc).__name__}: {exc}"
        entry["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
        self.log.append(entry)
