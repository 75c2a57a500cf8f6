"""Notify delivery: one signed POST of a JSON body to a rule's URL, through an injected httpx.AsyncClient.

Bounded in every way a stranger's endpoint could hold a worker: the whole attempt has a deadline
(`timeout_s`, on top of the client's connect/read/write/pool timeouts), at most `max_response_bytes` of the
answer are read (streamed, then the connection is dropped), and redirects are never followed. The answer
decides what happens next (workers/jobs.py does the retrying):

    2xx                                   delivered
    5xx, 429 (its Retry-After), 408,
    timeout, no connection                NotifyUnavailableError: retried with backoff, then a dead letter
    3xx (not followed), any other 4xx     NotifyRejectedError: a dead letter at once

Messages name the endpoint's host, never its URL: a URL such as a Slack incoming webhook's is a secret.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

import httpx

from workers.errors import NotifyRejectedError, NotifyUnavailableError
from workers.metrics import count_notify_request
from workers.notify.signing import webhook_headers

# What a webhook endpoint is given to answer, and how much of its answer is read.
TIMEOUT_S = 10.0
MAX_RESPONSE_BYTES = 65_536
# Of a refusal's answer, this much is kept in the dead letter's message.
QUOTED_CHARS = 200
# The longest wait a 429's Retry-After may ask for: the endpoint is an outside server, not a CRM, so a wait of
# years (or a bogus date) must not park the job, and with it every later change of the record, that long.
MAX_RETRY_AFTER_S = 300.0


@dataclass(frozen=True)
class DeliveryLimits:
    """How long one attempt may take in all, and how much of the endpoint's answer is read."""

    timeout_s: float = TIMEOUT_S
    max_response_bytes: int = MAX_RESPONSE_BYTES


@dataclass(frozen=True)
class Delivered:
    """A 2xx answer: its status, and how much of its body was read (`truncated`: the cap stopped the reading)."""

    status: int
    read_bytes: int
    truncated: bool


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: httpx.Headers
    head: bytes
    truncated: bool


async def deliver(
    http: httpx.AsyncClient,
    url: str,
    body: bytes,
    *,
    msg_id: str,
    key: bytes | None,
    now: datetime,
    limits: DeliveryLimits = DeliveryLimits(),
) -> Delivered:
    """POST `body` (JSON) to `url` with the Standard Webhooks headers of an attempt made `now` (signed with `key`).

    Raises NotifyUnavailableError (retry) or NotifyRejectedError (final) as the module docstring says.
    """
    host = _host(url)
    headers = {
        "content-type": "application/json",
        # An uncompressed answer: the cap then bounds what is read and what is kept alike.
        "accept-encoding": "identity",
        **webhook_headers(msg_id, int(now.timestamp()), body, key),
    }
    started = time.perf_counter()
    status = "connection_error"
    try:
        answer = await _post(http, url, body, headers, limits)
        status = f"{answer.status // 100}xx"
    except TimeoutError as exc:
        status = "timeout"
        raise NotifyUnavailableError(f"{host} did not answer within {limits.timeout_s:g} s", code="TIMEOUT") from exc
    except httpx.TimeoutException as exc:
        status = "timeout"
        raise NotifyUnavailableError(f"{host}: timed out ({type(exc).__name__})", code="TIMEOUT") from exc
    except (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.InvalidURL) as exc:
        status = "not_sent"
        raise NotifyRejectedError(
            f"the URL for {host} cannot be requested ({type(exc).__name__})", code="BAD_URL"
        ) from exc
    except httpx.HTTPError as exc:
        raise NotifyUnavailableError(f"{host}: no answer ({type(exc).__name__})", code="CONNECTION") from exc
    finally:
        count_notify_request(status, time.perf_counter() - started)
    return _outcome(host, answer, now)


async def _post(
    http: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], limits: DeliveryLimits
) -> _Answer:
    # The client's own timeouts bound each step (connect, write, each read); this deadline bounds them all,
    # however slowly an endpoint trickles its answer.
    async with asyncio.timeout(limits.timeout_s):
        request = http.build_request("POST", url, content=body, headers=headers, timeout=limits.timeout_s)
        response = await http.send(request, stream=True, follow_redirects=False)
        try:
            head, truncated = await _read_capped(response, limits.max_response_bytes)
        finally:
            await response.aclose()
    return _Answer(response.status_code, response.headers, head, truncated)


async def _read_capped(response: httpx.Response, cap: int) -> tuple[bytes, bool]:
    """At most `cap` bytes of the body as sent (no decoding), and whether more was on its way."""
    head = bytearray()
    async for chunk in response.aiter_raw():
        head += chunk
        if len(head) > cap:
            return bytes(head[:cap]), True
    return bytes(head), False


def _outcome(host: str, answer: _Answer, now: datetime) -> Delivered:
    status = answer.status
    if 200 <= status < 300:
        return Delivered(status, len(answer.head), answer.truncated)
    said = _quoted(answer)
    if status == 429:
        wait_s = retry_after_s(answer.headers.get("retry-after"), now)
        raise NotifyUnavailableError(
            f"{host} answered 429 (too many requests){said}", code="HTTP_429", retry_after_s=wait_s, quoted=bool(said)
        )
    if status == 408 or status >= 500:
        raise NotifyUnavailableError(f"{host} answered {status}{said}", code=f"HTTP_{status}", quoted=bool(said))
    if 300 <= status < 400:
        target = _host(answer.headers.get("location", ""))
        raise NotifyRejectedError(
            f"{host} answered {status}, a redirect (to {target or 'nowhere said'}); crmflow does not follow "
            "redirects: put the final URL in the rule",
            code=f"HTTP_{status}",
        )
    raise NotifyRejectedError(f"{host} answered {status}{said}", code=f"HTTP_{status}", quoted=bool(said))


def retry_after_s(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds from `now` (delta-seconds or an HTTP date, RFC 9110), at most MAX_RETRY_AFTER_S; None if
    absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_S)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return min(max((when - now).total_seconds(), 0.0), MAX_RETRY_AFTER_S)


def _quoted(answer: _Answer) -> str:
    """The start of a refusal's answer, for the dead letter (which may hold outside words); "" when there is none."""
    if not answer.head or answer.headers.get("content-encoding", "identity") != "identity":
        return ""
    text = answer.head.decode("utf-8", "replace").strip()
    if not text:
        return ""
    cut = "…" if len(text) > QUOTED_CHARS or answer.truncated else ""
    return f": {text[:QUOTED_CHARS]}{cut}"


def _host(url: str) -> str:
    """The host (and port, if any) of `url`, or "" when it names none."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return ""
    return f"{parsed.host}:{parsed.port}" if parsed.port else parsed.host
