"""Zoho answers → bodies, Records and our errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from workers.crm.zoho_models import appointment_record, created_id, inferred_previous, raise_for_zoho
from workers.errors import (
    CrmAuthError,
    CrmError,
    CrmNotFoundError,
    CrmRateLimitedError,
    CrmRejectedError,
    CrmTransientError,
)
from workers.record import Record


def answer(status: int, body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers) if body is not None else httpx.Response(status)


@pytest.mark.parametrize(
    ("response", "error", "code"),
    [
        (answer(429, {"code": "TOO_MANY_REQUESTS"}), CrmRateLimitedError, "TOO_MANY_REQUESTS"),
        (answer(500, {"code": "INTERNAL_ERROR"}), CrmTransientError, "HTTP_500"),
        (answer(503), CrmTransientError, "HTTP_503"),
        (
            answer(401, {"code": "INVALID_TOKEN", "details": {}, "message": "invalid oauth token"}),
            CrmAuthError,
            "INVALID_TOKEN",
        ),
        (answer(401, {"code": "OAUTH_SCOPE_MISMATCH", "message": "scope"}), CrmAuthError, "OAUTH_SCOPE_MISMATCH"),
        (answer(404, {"code": "INVALID_URL_PATTERN", "message": "url"}), CrmNotFoundError, "INVALID_URL_PATTERN"),
        (answer(403, {"code": "NO_PERMISSION", "message": "no"}), CrmRejectedError, "NO_PERMISSION"),
        (
            answer(403, {"data": [{"code": "NOT_ALLOWED", "details": {}, "message": "x", "status": "error"}]}),
            CrmRejectedError,
            "NOT_ALLOWED",
        ),
        (
            answer(400, {"data": [{"code": "IN_REQUEST_LIMIT_EXCEEDED", "message": "20", "status": "error"}]}),
            CrmRejectedError,
            "IN_REQUEST_LIMIT_EXCEEDED",
        ),
        (
            answer(
                207, {"data": [{"code": "SUCCESS", "status": "success"}, {"code": "INVALID_DATA", "status": "error"}]}
            ),
            CrmRejectedError,
            "INVALID_DATA",
        ),
        (httpx.Response(200, content=b"<html>"), CrmTransientError, "BAD_RESPONSE"),
    ],
)
def test_answers_map_to_errors(response: httpx.Response, error: type[CrmError], code: str) -> None:
    with pytest.raises(error) as raised:
        raise_for_zoho(response)

    assert raised.value.code == code


def test_retry_after_is_kept_when_zoho_sends_one() -> None:
    with pytest.raises(CrmRateLimitedError) as raised:
        raise_for_zoho(answer(429, {}, {"Retry-After": "30"}))

    assert raised.value.retry_after_s == 30.0


def test_204_is_an_empty_body() -> None:
    assert raise_for_zoho(httpx.Response(204)) == {}


def test_appointment_record() -> None:
    body = {"data": [{"id": "9", "Modified_Time": "2026-11-21T14:30:00+05:30", "Status": "Scheduled"}]}

    record = appointment_record(body, "9")

    assert record.id == "9"
    assert record.modified_time == datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
    assert record.fields["Status"] == "Scheduled"


def test_appointment_without_modified_time_is_a_bad_answer() -> None:
    with pytest.raises(CrmTransientError):
        appointment_record({"data": [{"id": "9"}]}, "9")
    with pytest.raises(CrmNotFoundError):
        appointment_record({}, "9")


def test_created_id() -> None:
    assert created_id({"data": [{"code": "SUCCESS", "details": {"id": "77"}, "status": "success"}]}) == "77"
    with pytest.raises(CrmTransientError):
        created_id({"data": []})


def zoho_record(**fields: Any) -> Record:
    return Record("zoho", "Appointments__s", "1", datetime(2026, 11, 21, tzinfo=UTC), fields)


def test_first_seen_rescheduled_appointment_infers_its_previous_start() -> None:
    record = zoho_record(
        Appointment_Start_Time="2026-11-25T09:00:00+00:00",
        Rescheduled_To="2026-11-25T14:30:00+05:30",
        Rescheduled_From="2026-11-24T09:00:00+00:00",
        Reschedule_Count=1,
    )

    assert inferred_previous(record) == {"Appointment_Start_Time": "2026-11-24T09:00:00+00:00", "Reschedule_Count": 0}


@pytest.mark.parametrize(
    "fields",
    [
        {"Appointment_Start_Time": "2026-11-25T09:00:00+00:00", "Reschedule_Count": 0},
        {
            "Appointment_Start_Time": "2026-11-26T09:00:00+00:00",
            "Rescheduled_To": "2026-11-25T09:00:00+00:00",
            "Rescheduled_From": "2026-11-24T09:00:00+00:00",
            "Reschedule_Count": 1,
        },
        {
            "Appointment_Start_Time": "2026-11-25T09:00:00+00:00",
            "Rescheduled_To": "2026-11-25T09:00:00+00:00",
            "Rescheduled_From": None,
            "Reschedule_Count": 1,
        },
    ],
    ids=["never-rescheduled", "start-moved-since", "no-from"],
)
def test_nothing_inferred_without_a_consistent_reschedule(fields: dict[str, Any]) -> None:
    assert inferred_previous(zoho_record(**fields)) == {}


def test_a_listing_page_gives_ids_and_modified_times_in_zohos_order() -> None:
    from workers.crm.zoho_models import modified_listing

    body = {
        "data": [
            {"id": "2", "Modified_Time": "2026-11-30T07:00:00+05:30"},
            {"id": "1", "Modified_Time": "2026-11-30T01:00:00Z"},
        ],
        "info": {"more_records": True, "next_page_token": "abc", "page": 1},
    }

    listing = modified_listing(body)

    assert [(r.record_id, r.modified_time) for r in listing.records] == [
        ("2", datetime(2026, 11, 30, 1, 30, tzinfo=UTC)),
        ("1", datetime(2026, 11, 30, 1, 0, tzinfo=UTC)),
    ]
    assert (listing.more_records, listing.next_page_token) == (True, "abc")
    assert modified_listing({}).records == () and not modified_listing({}).more_records  # 204: the end
    with pytest.raises(CrmTransientError):
        modified_listing({"data": [{"id": "3", "Modified_Time": None}]})


def test_a_sweep_infers_only_a_reschedule_made_within_its_window() -> None:
    rescheduled = {
        "Appointment_Start_Time": "2026-11-25T09:00:00+00:00",
        "Rescheduled_To": "2026-11-25T09:00:00+00:00",
        "Rescheduled_From": "2026-11-24T09:00:00+00:00",
        "Rescheduled_Time": "2026-11-20T10:00:00+05:30",
        "Reschedule_Count": 1,
    }
    record = zoho_record(**rescheduled)
    at = datetime(2026, 11, 20, 4, 30, tzinfo=UTC)  # the same instant as Rescheduled_Time

    assert inferred_previous(record, at)["Appointment_Start_Time"] == "2026-11-24T09:00:00+00:00"
    # Rescheduled before the window: an old reschedule the record still describes, not what the sweep found.
    assert inferred_previous(record, at + timedelta(seconds=1)) == {}
    assert inferred_previous(zoho_record(**(rescheduled | {"Rescheduled_Time": None})), at) == {}
