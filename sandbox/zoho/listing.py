"""The list-endpoint query rules (fields, page, per_page, sort) and pagination, as Zoho's GET records. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sandbox.zoho.errors import (
    ambiguity,
    discrete_pagination_limit,
    fields_limit_exceeded,
    invalid_param,
    required_param_missing,
)

MAX_FIELDS = 50
MAX_PER_PAGE = 200
DISCRETE_LIMIT = 2000


@dataclass(frozen=True)
class ListQuery:
    """A validated list request. `fields` is None when every field is wanted."""

    fields: tuple[str, ...] | None
    page: int = 1
    per_page: int = MAX_PER_PAGE
    sort_by: str = "id"
    sort_order: str = "desc"


@dataclass(frozen=True)
class ListPage:
    """One page of records, already rendered, plus Zoho's `info` block."""

    records: list[dict[str, Any]]
    info: dict[str, Any]

    def body(self) -> dict[str, Any]:
        return {"data": self.records, "info": self.info}


def parse_fields(raw: str | None, *, required: bool) -> tuple[str, ...] | None:
    """Comma-separated API names (spaces around them tolerated, as Zoho's own samples have them)."""
    names = tuple(dict.fromkeys(name.strip() for name in (raw or "").split(",") if name.strip()))
    if not names:
        if required:
            raise required_param_missing("fields")
        return None
    if len(names) > MAX_FIELDS:
        raise fields_limit_exceeded(MAX_FIELDS)
    return names


def _positive_int(params: Mapping[str, str], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise invalid_param(name)
    return int(raw)


def _choice(params: Mapping[str, str], name: str, allowed: Sequence[str], default: str) -> str:
    value = params.get(name, default)
    if value not in allowed:
        raise invalid_param(name)
    return value


def parse_list_query(
    params: Mapping[str, str], *, fields_required: bool, sortable: Sequence[str] = ("id",)
) -> ListQuery:
    """Validate list parameters, raising the ZohoApiError Zoho would answer with.

    per_page above 200 is lowered to 200 (Zoho documents 200 as the maximum, not as an error). The sandbox
    never issues page tokens, so any page_token is invalid; page together with page_token is ambiguous.
    """
    if "page_token" in params:
        if "page" in params:
            raise ambiguity("page", "page_token")
        raise invalid_param("page_token")
    fields = parse_fields(params.get("fields"), required=fields_required)
    page = _positive_int(params, "page", 1)
    per_page = min(_positive_int(params, "per_page", MAX_PER_PAGE), MAX_PER_PAGE)
    if page * per_page > DISCRETE_LIMIT:
        raise discrete_pagination_limit(DISCRETE_LIMIT)
    sort_by = _choice(params, "sort_by", sortable, "id")
    sort_order = _choice(params, "sort_order", ("asc", "desc"), "desc")
    return ListQuery(fields, page, per_page, sort_by, sort_order)


def _sort_key(record: Mapping[str, Any], field: str) -> tuple[int, Any]:
    value = record.get(field)
    if value is None:
        return (1, 0)
    if field == "id":
        return (0, int(value))
    if isinstance(value, datetime):
        return (0, value.timestamp())
    return (0, value)


def select_page(
    records: Sequence[Mapping[str, Any]], query: ListQuery
) -> tuple[list[Mapping[str, Any]], dict[str, Any]]:
    """Sort, cut out the requested page and build `info` (empty list: the caller answers 204)."""
    ordered = sorted(records, key=lambda record: _sort_key(record, query.sort_by), reverse=query.sort_order == "desc")
    start = (query.page - 1) * query.per_page
    chunk = ordered[start : start + query.per_page]
    info = {
        "per_page": query.per_page,
        "next_page_token": None,
        "count": len(chunk),
        "page": query.page,
        "sort_by": query.sort_by,
        "previous_page_token": None,
        "page_token_expiry": None,
        "sort_order": query.sort_order,
        "more_records": start + len(chunk) < len(ordered),
    }
    return chunk, info
