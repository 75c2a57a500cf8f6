"""POST /crm/objects/2026-03/{type}/search: filters, one sort, properties, limit and `after` paging. Pure.

As HubSpot's search (docs/hubspot.md, "Search"): `filterGroups` (OR of groups, AND of filters inside one;
at most 5 groups of at most 6 filters), operators EQ, NEQ, LT, LTE, GT, GTE, BETWEEN (value, highValue), IN,
NOT_IN (values), HAS_PROPERTY, NOT_HAS_PROPERTY; datetime properties compare as instants (epoch milliseconds
or ISO 8601), numbers as numbers, other properties as text. At most one sort; without one, objects come in
id order. `limit` defaults to 10, at most 200. `after` is an offset into the result as it is now, so an
object modified while a client pages can leave the result or move, and shift the later pages by one (HubSpot
documents no snapshot; UNCONFIRMED). At most 10,000 results can be paged: `after` at or beyond 10,000 is a
400, and `paging.next` stops there; `total` counts every match. Archived objects are not searched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sandbox.hubspot.catalogue import ObjectType
from sandbox.hubspot.errors import HubSpotApiError, validation_error
from sandbox.hubspot.records import HubRecord
from sandbox.hubspot.time import parse_datetime

MAX_LIMIT = 200
DEFAULT_LIMIT = 10
MAX_RESULTS = 10_000
MAX_GROUPS = 5
MAX_FILTERS_PER_GROUP = 6
MAX_QUERY_CHARS = 3000
RANGE_OPERATORS = frozenset({"EQ", "NEQ", "LT", "LTE", "GT", "GTE"})
OPERATORS = RANGE_OPERATORS | {"BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY"}


@dataclass(frozen=True)
class Filter:
    property_name: str
    operator: str
    value: Any = None
    high_value: Any = None
    values: tuple[Any, ...] = ()


@dataclass(frozen=True)
class SearchRequest:
    groups: tuple[tuple[Filter, ...], ...]
    sort_by: str | None
    descending: bool
    properties: tuple[str, ...]
    limit: int
    after: int


def _fail(message: str) -> HubSpotApiError:
    return validation_error(message)


def _filter(raw: Any) -> Filter:
    if not isinstance(raw, dict) or not isinstance(raw.get("propertyName"), str):
        raise _fail("each filter needs a propertyName and an operator")
    operator = raw.get("operator")
    if operator not in OPERATORS:
        raise _fail(f"Unknown operator {operator!r}")
    values = raw.get("values")
    if operator in ("IN", "NOT_IN") and not isinstance(values, list):
        raise _fail(f"operator {operator} needs `values`")
    if operator == "BETWEEN" and (raw.get("value") is None or raw.get("highValue") is None):
        raise _fail("operator BETWEEN needs `value` and `highValue`")
    if operator in RANGE_OPERATORS and raw.get("value") is None:
        raise _fail(f"operator {operator} needs `value`")
    return Filter(raw["propertyName"], operator, raw.get("value"), raw.get("highValue"), tuple(values or ()))


def _groups(raw: Any) -> tuple[tuple[Filter, ...], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > MAX_GROUPS:
        raise _fail(f"filterGroups: a list of at most {MAX_GROUPS} groups")
    groups = []
    for group in raw:
        filters = group.get("filters") if isinstance(group, dict) else None
        if not isinstance(filters, list) or len(filters) > MAX_FILTERS_PER_GROUP:
            raise _fail(f"each filter group holds `filters`, at most {MAX_FILTERS_PER_GROUP}")
        groups.append(tuple(_filter(item) for item in filters))
    return tuple(groups)


def _sort(raw: Any) -> tuple[str | None, bool]:
    if not raw:
        return None, False
    if not isinstance(raw, list) or len(raw) > 1:
        raise _fail("sorts: at most one sort")
    item = raw[0]
    if isinstance(item, str):
        return item, False
    if not isinstance(item, dict) or not isinstance(item.get("propertyName"), str):
        raise _fail("a sort needs a propertyName")
    direction = item.get("direction", "ASCENDING")
    if direction not in ("ASCENDING", "DESCENDING"):
        raise _fail("sort direction: ASCENDING or DESCENDING")
    return item["propertyName"], direction == "DESCENDING"


def _count(raw: Any, name: str, default: int) -> int:
    if raw is None:
        return default
    text = str(raw) if isinstance(raw, int | str) and not isinstance(raw, bool) else ""
    if not text.isdigit():
        raise _fail(f"{name} must be a non-negative integer")
    return int(text)


def parse_search(body: Any) -> SearchRequest:
    """A validated search request, or the VALIDATION_ERROR HubSpot answers (400)."""
    if not isinstance(body, dict):
        raise _fail("Invalid input JSON: expected a search request object")
    if len(str(body.get("query") or "")) > MAX_QUERY_CHARS:
        raise _fail(f"query: at most {MAX_QUERY_CHARS} characters")
    limit = _count(body.get("limit"), "limit", DEFAULT_LIMIT)
    if limit > MAX_LIMIT:
        raise _fail(f"limit: at most {MAX_LIMIT}")
    after = _count(body.get("after"), "after", 0)
    if after >= MAX_RESULTS:
        raise _fail(f"after: the search API pages through at most {MAX_RESULTS} results")
    properties = body.get("properties") or []
    if not isinstance(properties, list) or not all(isinstance(name, str) for name in properties):
        raise _fail("properties: a list of property names")
    sort_by, descending = _sort(body.get("sorts"))
    return SearchRequest(_groups(body.get("filterGroups")), sort_by, descending, tuple(properties), limit, after)


def _comparable(object_type: ObjectType, name: str, value: Any) -> Any:
    """A value as the property's type compares it: an instant, a number or text (None: not comparable)."""
    kind = object_type.properties[name].kind if object_type.defines(name) else "string"
    if value is None or value == "":
        return None
    if kind == "datetime":
        return parse_datetime(value)
    if kind == "number":
        try:
            return float(value)
        except (TypeError, ValueError):
            return None
    return str(value)


_COMPARE: Mapping[str, Callable[[Any, Any], bool]] = {
    "EQ": lambda a, b: bool(a == b),
    "NEQ": lambda a, b: bool(a != b),
    "LT": lambda a, b: bool(a < b),
    "LTE": lambda a, b: bool(a <= b),
    "GT": lambda a, b: bool(a > b),
    "GTE": lambda a, b: bool(a >= b),
}


def _matches(record: HubRecord, condition: Filter) -> bool:
    object_type, name = record.object_type, condition.property_name
    actual = _comparable(object_type, name, record.value(name))
    if condition.operator == "HAS_PROPERTY":
        return actual is not None
    if condition.operator == "NOT_HAS_PROPERTY":
        return actual is None
    if condition.operator in ("IN", "NOT_IN"):
        wanted = {_comparable(object_type, name, value) for value in condition.values}
        return (actual in wanted) == (condition.operator == "IN") and actual is not None
    if actual is None:
        return condition.operator == "NEQ"
    low = _comparable(object_type, name, condition.value)
    if low is None or type(low) is not type(actual):
        raise _fail(f"{condition.value!r} is not a valid value for {name}")
    if condition.operator == "BETWEEN":
        high = _comparable(object_type, name, condition.high_value)
        if high is None or type(high) is not type(actual):
            raise _fail(f"{condition.high_value!r} is not a valid value for {name}")
        return bool(low <= actual <= high)
    return _COMPARE[condition.operator](actual, low)


def _sort_key(record: HubRecord, name: str | None) -> tuple[Any, ...]:
    if name is None:
        return (0, int(record.id))
    value = _comparable(record.object_type, name, record.value(name))
    # Missing values last; equal values in id order.
    if value is None:
        return (1, 0, int(record.id))
    ordered = value.timestamp() if isinstance(value, datetime) else value
    return (0, ordered, int(record.id))


def search(records: list[HubRecord], request: SearchRequest) -> dict[str, Any]:
    """The answer to a search over `records` (live objects of one type): {total, results, paging?}."""
    found = [
        record
        for record in records
        if not record.archived
        and (not request.groups or any(all(_matches(record, item) for item in group) for group in request.groups))
    ]
    missing_last = sorted(found, key=lambda record: _sort_key(record, request.sort_by))
    if request.descending:
        present = [record for record in missing_last if _sort_key(record, request.sort_by)[0] == 0]
        missing = [record for record in missing_last if _sort_key(record, request.sort_by)[0] == 1]
        missing_last = [*reversed(present), *missing]
    end = min(request.after + request.limit, len(missing_last), MAX_RESULTS)
    page = missing_last[request.after : end]
    body: dict[str, Any] = {
        "total": len(found),
        "results": [record.render(list(request.properties) or None) for record in page],
    }
    if end < min(len(found), MAX_RESULTS):
        body["paging"] = {"next": {"after": str(end)}}
    return body
