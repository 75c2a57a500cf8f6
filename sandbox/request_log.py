"""The log of API requests the sandbox received, with counters tests use to count CRM reads and writes."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

_NUMERIC_SEGMENT = re.compile(r"/\d+(?=/|$)")


def endpoint_of(method: str, path: str) -> str:
    """`PUT /crm/v7/Appointments__s/{id}`: the request with numeric ids folded, for counting.

    HubSpot paths fold the same way (`PATCH /crm/objects/2026-03/appointments/{id}`); "2026-03", "0-421" stay.
    """
    return f"{method} {_NUMERIC_SEGMENT.sub('/{id}', path)}"


def _is_write(method: str, path: str) -> bool:
    return path.startswith("/crm/") and method not in ("GET", "HEAD") and not path.endswith("/batch/read")


class RequestLog:
    """Every request to /crm/ (Zoho and HubSpot) and /oauth/ in arrival order (control-API calls are not logged)."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def record(self, entry: dict[str, Any]) -> None:
        self.entries.append({"seq": len(self.entries) + 1, **entry})

    def clear(self) -> None:
        self.entries = []

    def snapshot(self) -> dict[str, Any]:
        """Totals, CRM writes, per-endpoint and per-status counts, and the log.

        CRM writes are the non-GET /crm/ calls other than HubSpot's POST .../batch/read (a read).
        """
        by_endpoint = Counter(endpoint_of(entry["method"], entry["path"]) for entry in self.entries)
        by_status = Counter(str(entry["status"]) for entry in self.entries)
        writes = sum(1 for entry in self.entries if _is_write(entry["method"], entry["path"]))
        return {
            "total": len(self.entries),
            "crm_writes": writes,
            "by_endpoint": dict(by_endpoint),
            "by_status": dict(by_status),
            "requests": self.entries,
        }
