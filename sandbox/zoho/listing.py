"""The list-endpoint query rules (fields, page, per_page, sort, page_token) and pagination, as Zoho's GET records. Pure.

Paging (docs/zoho-crm.md, "Listing appointments"): `page` 1..10 of up to 200 records reach the first 2,000
(DISCRETE_PAGINATION_LIMIT_EXCEEDED beyond); every page that has more records after it carries a
`next_page_token` in `info`. A token names the record after that page, is bound to the other parameters
(fields, per_page, sort_by, sort_order: TOKEN_BOUND_DATA_MISMATCH when they change), expires 24 hours after it
was issued (EXPIRED_VALUE) and reaches at most 100,000 records (PAGINATION_LIMIT_EXCEEDED). Zoho's page is
contradictory on whether `page=10` must accompany a token: by default `page` with `page_token` is
AMBIGUITY_DURING_PROCESSING, as its error list says; `token_with_page` models the other reading (the token
must come with page=10, REQUIRED_PARAM_MISSING without it). Tokens point at a position in the current order,
not at a frozen result: a record modified while a client pages moves, as it may in Zoho (UNCONFIRMED).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sandbox.zoho.errors import (
    ambiguity,
    discrete_pagination_limit,
    expired_page_token,
    fields_limit_exceeded,
    invalid_param,
    pagination_limit,
    required_param_missing,
    token_bound_mismatch,
)

MAX_FIELDS = 50
MAX_PER_PAGE = 200
DISCRETE_LIMIT = 2000
TOKEN_LIMIT = 100_000
TOKEN_LIFETIME = timedelta(hours=24)
# The page a token must come with when `token_with_page` is on ("pass the page token ... with param page=10").
TOKEN_PAGE = DISCRETE_LIMIT // MAX_PER_PAGE


@dataclass(frozen=True)
class ListQuery:
    """A validated list request. `fields` is None when every field is wanted."""

    fields: tuple[str, ...] | None
    page: int = 1
    per_page: int = MAX_PER_PAGE
    sort_by: str = "id"
    sort_order: str = "desc"
    page_token: str | None = None

    def bound(self) -> tuple[Any, ...]:
        """The parameters a page token is bound to."""
        return (self.fields, self.per_page, self.sort_by, self.sort_order)


@dataclass(frozen=True)
class PageToken:
    """What a next_page_token stands for: the position after a page, for one set of parameters."""

    bound: tuple[Any, ...]
    offset: int
    issued_at: datetime


@dataclass
class PageTokens:
    """The tokens issued so far (the sandbox has one API user, so every token is that user's)."""

    issued: dict[str, PageToken] = field(default_factory=dict)

    def issue(self, bound: tuple[Any, ...], offset: int, now: datetime) -> str:
        token = secrets.token_hex(24)
        self.issued[token] = PageToken(bound, offset, now)
        return token

    def resolve(self, query: ListQuery, now: datetime) -> int:
        """The offset `query.page_token` names, or the ZohoApiError Zoho answers for it."""
        found = self.issued.get(query.page_token or "")
        if found is None:
            raise invalid_param("page_token")
        if now - found.issued_at >= TOKEN_LIFETIME:
            raise expired_page_token()
        if found.bound != query.bound():
            raise token_bound_mismatch()
        if found.offset >= TOKEN_LIMIT:
            raise pagination_limit(TOKEN_LIMIT)
        return found.offset

    def clear(self) -> None:
        self.issued.clear()


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


def _check_token_page(params: Mapping[str, str], *, token_with_page: bool) -> None:
    if not token_with_page:
        if "page" in params:
            raise ambiguity("page", "page_token")
        return
    if "page" not in params:
        raise required_param_missing("page")
    if params["page"] != str(TOKEN_PAGE):
        raise token_bound_mismatch()


def parse_list_query(
    params: Mapping[str, str],
    *,
    fields_required: bool,
    sortable: Sequence[str] = ("id",),
    tokens: bool = False,
    token_with_page: bool = False,
) -> ListQuery:
    """Validate list parameters, raising the ZohoApiError Zoho would answer with.

    per_page above 200 is lowered to 200 (Zoho documents 200 as the maximum, not as an error). Lists that
    issue no page tokens (`tokens` false) refuse any page_token as invalid. With a token, `page` is
    ambiguous, unless `token_with_page`, which requires page=10 with it (see the module's docstring).
    """
    token = params.get("page_token")
    if token is not None:
        _check_token_page(params, token_with_page=token_with_page and tokens)
        if not tokens or not token:
            raise invalid_param("page_token")
    fields = parse_fields(params.get("fields"), required=fields_required and token is None)
    page = 1 if token is not None else _positive_int(params, "page", 1)
    per_page = min(_positive_int(params, "per_page", MAX_PER_PAGE), MAX_PER_PAGE)
    if page * per_page > DISCRETE_LIMIT:
        raise discrete_pagination_limit(DISCRETE_LIMIT)
    sort_by = _choice(params, "sort_by", sortable, "id")
    sort_order = _choice(params, "sort_order", ("asc", "desc"), "desc")
    return ListQuery(fields, page, per_page, sort_by, sort_order, token)


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
    records: Sequence[Mapping[str, Any]],
    query: ListQuery,
    *,
    tokens: PageTokens | None = None,
    now: datetime | None = None,
) -> tuple[list[Mapping[str, Any]], dict[str, Any]]:
    """Sort, cut out the requested page and build `info` (empty list: the caller answers 204).

    With `tokens` (and `now`), a page_token is resolved to its position and a page followed by more records
    carries a next_page_token; `info["page_token_expiry"]` is then the token's expiry (a datetime, rendered
    by the caller).
    """
    ordered = sorted(records, key=lambda record: _sort_key(record, query.sort_by), reverse=query.sort_order == "desc")
    if query.page_token is not None:
        if tokens is None or now is None:
            raise invalid_param("page_token")
        start = tokens.resolve(query, now)
    else:
        start = (query.page - 1) * query.per_page
    chunk = ordered[start : start + query.per_page]
    more = start + len(chunk) < len(ordered)
    next_token = expiry = None
    if more and tokens is not None and now is not None:
        next_token = tokens.issue(query.bound(), start + len(chunk), now)
        expiry = now + TOKEN_LIFETIME
    info = {
        "per_page": query.per_page,
        "next_page_token": next_token,
        "count": len(chunk),
        "page": query.page if query.page_token is None else start // query.per_page + 1,
        "sort_by": query.sort_by,
        "previous_page_token": query.page_token,
        "page_token_expiry": expiry,
        "sort_order": query.sort_order,
        "more_records": more,
    }
    return chunk, info
