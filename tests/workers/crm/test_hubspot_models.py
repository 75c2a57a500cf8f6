"""HubSpot answers → Records, errors and waits."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from workers.crm.hubspot_models import (
    appointment_record,
    association_type_id,
    batch_records,
    inferred_previous,
    raise_for_hubspot,
)
from workers.errors import (
    CrmAuthError,
    CrmError,
    CrmNotFoundError,
    CrmRateLimitedError,
    CrmRejectedError,
    CrmTransientError,
)
from workers.record import Record


def err(status: int, category: str) -> httpx.Response:
    return httpx.Response(status, json={"status": "error", "category": category, "message": "m"})


TEN_SECONDLY = {
    "status": "error",
    "message": "You have reached your ten_secondly_rolling limit.",
    "errorType": "RATE_LIMIT",
    "correlationId": "c",
    "policyName": "TEN_SECONDLY_ROLLING",
    "groupName": "publicapi:private-app-api-calls-ten-secondly:62515",
}
DAILY = {
    "status": "error",
    "message": "You have reached your daily limit.",
    "errorType": "RATE_LIMIT",
    "policyName": "DAILY",
}


@pytest.mark.parametrize(
    ("response", "wait"),
    [
        (httpx.Response(429, json=TEN_SECONDLY, headers={"X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}), 10.0),
        (httpx.Response(429, json=TEN_SECONDLY), 10.0),
        (httpx.Response(429, json=DAILY), 3600.0),
        (httpx.Response(429, json={"status": "error", "message": "You have reached your secondly limit."}), 1.0),
        (httpx.Response(429, json=TEN_SECONDLY, headers={"Retry-After": "3"}), 3.0),
        (httpx.Response(429, content=b"<html>"), 10.0),
    ],
    ids=["ten-secondly", "ten-secondly-no-header", "daily", "search-secondly", "retry-after", "unreadable"],
)
def test_429_waits(response: httpx.Response, wait: float) -> None:
    with pytest.raises(CrmRateLimitedError) as raised:
        raise_for_hubspot(response)

    assert raised.value.retry_after_s == wait


@pytest.mark.parametrize(
    ("response", "error", "code"),
    [
        (httpx.Response(423), CrmTransientError, "HTTP_423"),
        (httpx.Response(502, content=b"<html>"), CrmTransientError, "HTTP_502"),
        (
            err(401, "INVALID_AUTHENTICATION"),
            CrmAuthError,
            "INVALID_AUTHENTICATION",
        ),
        (err(403, "MISSING_SCOPES"), CrmAuthError, "MISSING_SCOPES"),
        (
            err(404, "OBJECT_NOT_FOUND"),
            CrmNotFoundError,
            "OBJECT_NOT_FOUND",
        ),
        (
            err(400, "VALIDATION_ERROR"),
            CrmRejectedError,
            "VALIDATION_ERROR",
        ),
        (httpx.Response(200, content=b"not json"), CrmTransientError, "BAD_RESPONSE"),
    ],
)
def test_errors(response: httpx.Response, error: type[CrmError], code: str) -> None:
    with pytest.raises(error) as raised:
        raise_for_hubspot(response)

    assert raised.value.code == code


def test_423_waits_two_seconds() -> None:
    with pytest.raises(CrmTransientError) as raised:
        raise_for_hubspot(httpx.Response(423))

    assert raised.value.retry_after_s == 2.0


def appointment(**extra: Any) -> dict[str, Any]:
    return {
        "id": "30118",
        "properties": {"hs_appointment_start": "2026-12-01T14:00:00.000Z", "hs_appointment_name": "Checkup"},
        "updatedAt": "2026-11-21T10:00:00.000Z",
        "archived": False,
    } | extra


def test_history_is_sorted_by_timestamp_not_position() -> None:
    history = {
        "hs_appointment_start": [
            {
                "value": "2026-12-01T14:00:00.000Z",
                "timestamp": "2026-11-21T10:00:00.000Z",
                "sourceType": "CRM_UI",
                "updatedByUserId": 7,
            },
            {"value": "2026-11-30T09:00:00.000Z", "timestamp": "2026-11-20T08:00:00.000Z", "sourceType": "CRM_UI"},
            {
                "value": "2026-11-29T09:00:00.000Z",
                "timestamp": "2026-11-20T09:00:00.000Z",
                "sourceType": "INTEGRATION",
                "sourceId": 54321,
            },
        ]
    }

    record = appointment_record(appointment(propertiesWithHistory=history))

    assert [e.value for e in record.history["hs_appointment_start"]] == [
        "2026-11-30T09:00:00.000Z",
        "2026-11-29T09:00:00.000Z",
        "2026-12-01T14:00:00.000Z",
    ]
    assert record.history["hs_appointment_start"][-1].user_id == "7"
    assert record.history["hs_appointment_start"][1].source_id == "54321"
    assert record.modified_time == datetime(2026, 11, 21, 10, tzinfo=UTC)
    assert inferred_previous(record) == {"hs_appointment_start": "2026-11-29T09:00:00.000Z"}


def test_nothing_inferred_without_history() -> None:
    assert inferred_previous(appointment_record(appointment())) == {}


def test_batch_read_207_lists_missing_ids() -> None:
    body = {
        "status": "COMPLETE",
        "results": [appointment()],
        "numErrors": 1,
        "errors": [{"status": "error", "category": "OBJECT_NOT_FOUND", "context": {"ids": ["404", "405"]}}],
    }

    records, missing = batch_records(body)

    assert [r.id for r in records] == ["30118"]
    assert missing == ["404", "405"]


def test_default_association_type_is_the_unlabelled_hubspot_defined_one() -> None:
    body = {
        "results": [
            {"category": "USER_DEFINED", "typeId": 5, "label": None},
            {"category": "HUBSPOT_DEFINED", "typeId": 9, "label": "Primary"},
            {"category": "HUBSPOT_DEFINED", "typeId": 1207, "label": None},
        ]
    }

    assert association_type_id(body) == 1207
    with pytest.raises(CrmRejectedError):
        association_type_id({"results": []})


def test_changes_in_the_same_millisecond_keep_hubspots_newest_first_order_reversed() -> None:
    # Two reschedules within one millisecond: sorted by time alone they would keep HubSpot's newest-first
    # listing, and the history would end on the older value.
    same = "2026-11-21T10:00:00.000Z"
    history = {
        "hs_appointment_start": [
            {"value": "2026-12-03T09:00:00.000Z", "timestamp": same},
            {"value": "2026-12-02T09:00:00.000Z", "timestamp": same},
            {"value": "2026-12-01T09:00:00.000Z", "timestamp": "2026-11-20T10:00:00.000Z"},
        ]
    }

    record = appointment_record(appointment(propertiesWithHistory=history))

    assert [e.value[:10] for e in record.history["hs_appointment_start"]] == ["2026-12-01", "2026-12-02", "2026-12-03"]


def test_a_search_page_and_the_search_for_a_window() -> None:
    from workers.crm.hubspot_models import modified_window_search, search_page
    from workers.errors import CrmTransientError

    since, until = datetime(2026, 11, 30, 6, tzinfo=UTC), datetime(2026, 11, 30, 7, tzinfo=UTC)
    body = {
        "total": 3,
        "results": [
            {"id": "5", "properties": {"hs_lastmodifieddate": "2026-11-30T06:10:00.000Z"}},
            {"id": "6", "properties": {}, "updatedAt": "2026-11-30T06:20:00.000Z"},
        ],
        "paging": {"next": {"after": "2"}},
    }

    page = search_page(body)
    request = modified_window_search(since, until, limit=200, after="2")

    assert [(r.record_id, r.modified_time.minute) for r in page.records] == [("5", 10), ("6", 20)]
    assert (page.total, page.next_after) == (3, "2")
    assert search_page({"total": 0, "results": []}).next_after is None
    assert request["filterGroups"][0]["filters"] == [
        {"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": str(int(since.timestamp() * 1000))},
        {"propertyName": "hs_lastmodifieddate", "operator": "LTE", "value": str(int(until.timestamp() * 1000))},
    ]
    assert request["sorts"] == [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}]
    assert (request["limit"], request["after"]) == (200, "2")
    with pytest.raises(CrmTransientError):
        search_page({"results": [{"id": "7", "properties": {}}]})


def moved(*steps: tuple[str, str]) -> Record:
    """An appointment whose start history is `steps` (value, timestamp), oldest first; its start the last."""
    history = {
        "hs_appointment_start": [
            {"value": value, "timestamp": at, "sourceType": "CRM_UI"} for value, at in reversed(steps)
        ]
    }
    return appointment_record(
        appointment(propertiesWithHistory=history, properties={"hs_appointment_start": steps[-1][0]})
    )


def test_a_sweep_infers_the_start_in_effect_when_its_window_began() -> None:
    a, b, c = "2026-12-01T09:00:00.000Z", "2026-12-02T09:00:00.000Z", "2026-12-03T09:00:00.000Z"
    record = moved((a, "2026-11-20T08:00:00.000Z"), (b, "2026-11-21T08:00:00.000Z"), (c, "2026-11-22T08:00:00.000Z"))

    # Every move since the window began is this change: from the start in effect then.
    assert inferred_previous(record, datetime(2026, 11, 20, 12, tzinfo=UTC)) == {"hs_appointment_start": a}
    assert inferred_previous(record, datetime(2026, 11, 21, 12, tzinfo=UTC)) == {"hs_appointment_start": b}
    # Created after the window began: from the start it was created with.
    assert inferred_previous(record, datetime(2026, 11, 1, tzinfo=UTC)) == {"hs_appointment_start": a}
    # The latest move is older than the window: nothing the sweep found.
    assert inferred_previous(record, datetime(2026, 11, 23, tzinfo=UTC)) == {}
    # Created within the window and never moved: nothing either.
    assert inferred_previous(moved((a, "2026-11-20T08:00:00.000Z")), datetime(2026, 11, 1, tzinfo=UTC)) == {}
