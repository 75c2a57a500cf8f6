"""Background delivery of HubSpot webhook batches: the batching window, signed POSTs, retries and the log.

Events raised within `batch_window_s` of the first pending one are sent together, cut into batches of at most
100 (docs/hubspot.md, "Webhook batches"), each batch its own background task; at most 10 requests are in flight
at once (HubSpot's default concurrency limit, same section), so batches may arrive in any order. A batch whose
POST fails (non-2xx answer, connection error, or no answer within `timeout_s`, 5 s as HubSpot documents) is sent
again after each of `retry_delays_s` in turn (at most 10 retries, as HubSpot's), every event's attemptNumber
raised by one and timestamp and signatures made afresh. HubSpot retries 4xx too (current docs; older docs said
otherwise, UNCONFIRMED which is live). A redelivery (the control API's duplicate) sends a logged body again byte
for byte, re-signed, once, without retries. Nothing here blocks an API answer; `reset` and `aclose` cancel
whatever is pending or in flight, and attempts of a cancelled generation are not logged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import orjson

from sandbox.hubspot.events import attempt_body, batches
from sandbox.hubspot.signing import signed_headers
from sandbox.hubspot.time import epoch_ms, format_iso

USER_AGENT = (
    "HubSpot Connect 2.0 (http://dev.hubspot.com/) (namespace: webhooks-nio-http-client) - "
    "WebhooksExecutorDaemon-executor"
)
MAX_CONCURRENT_REQUESTS = 10


@dataclass(frozen=True)
class WebhookSettings:
    url: str | None
    client_secret: str
    batch_window_s: float
    retry_delays_s: tuple[float, ...]
    timeout_s: float


class WebhookSender:
    """Queues events, sends them in batches in the background, and logs every attempt."""

    def __init__(
        self,
        settings: WebhookSettings,
        client: Callable[[], httpx.AsyncClient],
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self._client = client
        self._clock = clock
        self.log: list[dict[str, Any]] = []
        self._sent: dict[int, bytes] = {}
        self._pending: list[dict[str, Any]] = []
        self._flush: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._batch_count = 0
        self._generation = 0
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_REQUESTS)

    def enqueue(self, events: Sequence[dict[str, Any]]) -> None:
        """Add events to the open batching window (opening one if needed). Needs a running event loop."""
        if self.settings.url is None or not events:
            return
        self._pending.extend(events)
        if self._flush is None:
            self._flush = self._spawn(self._flush_after_window())

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _flush_after_window(self) -> None:
        await asyncio.sleep(self.settings.batch_window_s)
        events, self._pending, self._flush = self._pending, [], None
        for batch in batches(events):
            self._batch_count += 1
            self._spawn(self._deliver(batch, self._batch_count))

    async def _deliver(self, events: list[dict[str, Any]], batch: int) -> None:
        delays = self.settings.retry_delays_s
        for attempt in range(len(delays) + 1):
            if attempt:
                await asyncio.sleep(delays[attempt - 1])
            entry = await self._send(orjson.dumps(attempt_body(events, attempt)), batch, attempt)
            if _delivered(entry):
                return

    async def _send(self, body: bytes, batch: int, attempt: int, redelivery_of: int | None = None) -> dict[str, Any]:
        url = self.settings.url
        assert url is not None
        generation = self._generation
        async with self._slots:
            now = self._clock()
            headers = {
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                "X-HubSpot-Timeout-Millis": str(int(self.settings.timeout_s * 1000)),
                **signed_headers(self.settings.client_secret, url, body, epoch_ms(now)),
            }
            entry: dict[str, Any] = {
                "batch": batch,
                "attempt": attempt,
                "redelivery_of": redelivery_of,
                "url": url,
                "headers": headers,
                "body": orjson.loads(body),
                "sent_at": format_iso(now),
                "status_code": None,
                "error": None,
            }
            started = time.perf_counter()
            await self._post(url, body, headers, entry)
            entry["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
        if generation == self._generation:
            entry = {"seq": len(self.log) + 1, **entry}
            self.log.append(entry)
            self._sent[entry["seq"]] = body
        return entry

    async def _post(self, url: str, body: bytes, headers: dict[str, str], entry: dict[str, Any]) -> None:
        timeout = self.settings.timeout_s
        try:
            async with asyncio.timeout(timeout):
                response = await self._client().post(url, content=body, headers=headers, timeout=timeout)
            entry["status_code"] = response.status_code
        except TimeoutError:
            entry["error"] = f"TimeoutError: no answer within {timeout} s"
        except httpx.HTTPError as exc:
            entry["error"] = f"{type(exc).__name__}: {exc}"

    async def redeliver(self, seq: int) -> dict[str, Any] | None:
        """Send the body of log entry `seq` again exactly, freshly signed, once; the new entry (None if unknown)."""
        body = self._sent.get(seq)
        if body is None:
            return None
        original = self.log[seq - 1]
        return await self._send(body, original["batch"], original["attempt"], redelivery_of=seq)

    async def drain(self) -> None:
        """Wait until the open window is flushed and every delivery, retries included, has finished."""
        while True:
            running = [task for task in self._tasks if not task.done()]
            if not running:
                return
            await asyncio.gather(*running, return_exceptions=True)

    def clear_log(self) -> None:
        self.log = []
        self._sent = {}

    def reset(self) -> None:
        """Cancel pending and in-flight deliveries; empty the log; batch numbers start again."""
        self._generation += 1
        for task in self._tasks:
            task.cancel()
        self._pending = []
        self._flush = None
        self._batch_count = 0
        self.clear_log()

    async def aclose(self) -> None:
        self.reset()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _delivered(entry: dict[str, Any]) -> bool:
    status = entry["status_code"]
    return status is not None and 200 <= status < 300
