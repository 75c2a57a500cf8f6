"""CRM transport: HTTP failures and unreadable answers of any CRM become our errors, keeping their cause. Pure.

Both clients (and Zoho's token requests) send through `send`, so a timeout or a broken connection means
the same CrmTransientError whichever CRM it came from.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from workers.errors import CrmTransientError


async def send(http: httpx.AsyncClient, method: str, url: str, *, what: str, **kwargs: Any) -> httpx.Response:
    """`http.request(method, url, **kwargs)`; a timeout or transport failure raises CrmTransientError.

    `what` names the call in the error (e.g. "GET /Appointments__s/1") without the host or any secret.
    """
    try:
        return await http.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise CrmTransientError(f"{what}: timed out", code="TIMEOUT") from exc
    except httpx.HTTPError as exc:
        raise CrmTransientError(f"{what}: {type(exc).__name__}", code="CONNECTION") from exc


def body_of(response: httpx.Response) -> Any:
    """The JSON body, {} for an empty one (204), or CrmTransientError for anything unreadable."""
    if not response.content:
        return {}
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise CrmTransientError(f"unreadable body (HTTP {response.status_code})", code="BAD_RESPONSE") from exc
