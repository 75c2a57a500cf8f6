"""Reading CRM answers: the JSON body of any CRM response, or the transient error an unreadable one means. Pure."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from workers.errors import CrmTransientError


def body_of(response: httpx.Response) -> Any:
    """The JSON body, {} for an empty one (204), or CrmTransientError for anything unreadable."""
    if not response.content:
        return {}
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise CrmTransientError(f"unreadable body (HTTP {response.status_code})", code="BAD_RESPONSE") from None
