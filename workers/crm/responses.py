"""CRM transport: HTTP failures and unreadable answers of any CRM become our errors, keeping their cause. Pure.

Both clients (and Zoho's token requests) send through `send`, so a timeout or a broken connection means
the same CrmTransientError whichever CRM it came from, and every call passes the client's `Gate` (the
shared limiter and call counter of workers/crm/limits.py) when it has one.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import orjson

from workers.errors import CrmTransientError
from workers.job_notes import note_crm_call
from workers.metrics import count_crm_request, crm_status


class Gate(Protocol):
    """What every CRM call passes through: `call` waits for the CRM's limits, sends, then counts the call."""

    async def call(
        self, method: str, path: str, request: Callable[[], Awaitable[httpx.Response]], *, json: Any = None
    ) -> httpx.Response: ...


@dataclass(frozen=True)
class Call:
    """Names a CRM call for the metrics: the CRM and one operation of metrics.CRM_OPERATIONS (no id, no URL)."""

    source: str
    operation: str


async def send(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    what: str,
    call: Call,
    gate: Gate | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """`http.request(method, url, **kwargs)` through `gate`; a timeout or transport failure raises CrmTransientError.

    `what` names the call in the error (e.g. "GET /Appointments__s/1") without the host or any secret. The
    gate sees the method, the URL's path with its query (the limits of some calls depend on it) and the body.
    Each request sent is counted and timed under `call` (crmflow_crm_requests_total and
    crmflow_crm_request_duration_seconds); waiting for the gate is not part of its time.
    """

    async def request() -> httpx.Response:
        started = time.perf_counter()
        status: int | None = None
        code: str | None = None
        try:
            response = await http.request(method, url, **kwargs)
            status = response.status_code
            return response
        except httpx.TimeoutException as exc:
            code = "TIMEOUT"
            raise CrmTransientError(f"{what}: timed out", code=code) from exc
        except httpx.HTTPError as exc:
            code = "CONNECTION"
            raise CrmTransientError(f"{what}: {type(exc).__name__}", code=code) from exc
        finally:
            took_s = time.perf_counter() - started
            note_crm_call(took_s)  # the running job's CRM time (its event log entry)
            count_crm_request(call.source, call.operation, crm_status(status, code), took_s)

    if gate is None:
        return await request()
    target = httpx.URL(url, params=kwargs.get("params"))
    return await gate.call(method.upper(), target.raw_path.decode("ascii"), request, json=kwargs.get("json"))


def body_of(response: httpx.Response) -> Any:
    """The JSON body, {} for an empty one (204), or CrmTransientError for anything unreadable."""
    if not response.content:
        return {}
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise CrmTransientError(f"unreadable body (HTTP {response.status_code})", code="BAD_RESPONSE") from exc
