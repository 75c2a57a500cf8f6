"""HubSpot pieces tested directly: datetimes, signing, the rate limiter, derived values, events, config checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sandbox.config import SandboxConfig
from sandbox.hubspot.catalogue import APPOINTMENT_PROPERTIES, APPOINTMENTS, NOTES, resolve_object_type
from sandbox.hubspot.events import EVENT_ID_CYCLE, EventIds, attempt_body, batches
from sandbox.hubspot.ratelimit import RateLimiter
from sandbox.hubspot.signing import signature_v3, signed_uri
from sandbox.hubspot.time import format_iso, parse_datetime
from sandbox.hubspot.writes import appointment_values
from tests.sandbox.harness import v3_signature

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-06-01T09:00:00Z", T0.replace(month=6, day=1)),
        ("2026-06-01T09:00:00.000Z", T0.replace(month=6, day=1)),
        ("2026-06-01T11:00:00+02:00", T0.replace(month=6, day=1)),
        ("2026-06-01T09:00Z", T0.replace(month=6, day=1)),
        ("1780304400000", T0.replace(month=6, day=1)),
        (1780304400000, T0.replace(month=6, day=1)),
        ("2026-06-01T09:00:00.123456789Z", T0.replace(month=6, day=1, microsecond=123_000)),
    ],
)
def test_accepted_datetimes(value: object, expected: datetime) -> None:
    assert parse_datetime(value) == expected


@pytest.mark.parametrize("value", ["2026-06-01T09:00:00", "2026-06-01", "tomorrow", "", None, True, 1.5, "12e3"])
def test_refused_datetimes(value: object) -> None:
    assert parse_datetime(value) is None


def test_rendering_has_milliseconds_and_z() -> None:
    assert format_iso(datetime(2026, 6, 1, 11, 0, 0, 999_999, tzinfo=UTC) + timedelta(hours=-2)) == (
        "2026-06-01T09:00:00.999Z"
    )


def test_signed_uri_decodes_only_the_listed_escapes() -> None:
    url = "https://example.com/hook%3Ab%2Fc%40d%2ce?q=%20%26%3D%3F"

    assert signed_uri(url) == "https://example.com/hook:b/c@d,e?q=%20%26%3D?"


def test_the_sandbox_v3_signature_matches_the_guide() -> None:
    body, timestamp = b'[{"eventId":1}]', "1772442930250"

    ours = signature_v3("secret", "POST", "https://receiver.test/hook", body, timestamp)

    assert ours == v3_signature("secret", "POST", "https://receiver.test/hook", body, timestamp)


def test_the_limiter_counts_admitted_requests_in_a_rolling_window() -> None:
    limiter = RateLimiter(interval_max=2, daily_limit=100)

    decisions = [limiter.admit(T0 + timedelta(seconds=offset)) for offset in (0, 1, 2, 9.999, 10, 11)]

    assert [decision.refused for decision in decisions] == [
        None,
        None,
        "TEN_SECONDLY_ROLLING",
        "TEN_SECONDLY_ROLLING",
        None,
        None,
    ]
    assert decisions[4].headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert decisions[5].headers["X-HubSpot-RateLimit-Daily-Remaining"] == "96"


def test_the_daily_count_restarts_at_midnight_utc() -> None:
    limiter = RateLimiter(interval_max=100, daily_limit=1)
    late = T0.replace(hour=23, minute=59, second=59)

    assert [limiter.admit(late).refused, limiter.admit(late).refused] == [None, "DAILY"]
    assert limiter.admit(late + timedelta(seconds=1)).refused is None


def test_a_new_start_keeps_the_duration() -> None:
    current = {"hs_appointment_start": "2026-03-04T09:30:00.000Z", "hs_appointment_end": "2026-03-04T10:45:00.000Z"}

    moved = appointment_values(current, {"hs_appointment_start": "2026-03-05T14:00:00.000Z"})
    both = appointment_values(
        current, {"hs_appointment_start": "2026-03-05T14:00:00.000Z", "hs_appointment_end": "2026-03-05T14:30:00.000Z"}
    )
    cleared = appointment_values(current, {"hs_appointment_start": ""})

    assert moved == {
        "hs_appointment_start": "2026-03-05T14:00:00.000Z",
        "hs_appointment_end": "2026-03-05T15:15:00.000Z",
        "hs_duration": str(75 * 60_000),
    }
    assert both["hs_duration"] == str(30 * 60_000)
    assert cleared == {"hs_appointment_start": "", "hs_duration": ""}


def test_event_ids_cycle() -> None:
    ids = EventIds()

    values = [ids.next_id() for _ in range(EVENT_ID_CYCLE + 1)]
    ids.reset()

    assert values[0] == values[-1] == ids.next_id()
    assert len(set(values)) == EVENT_ID_CYCLE


def test_batches_and_attempt_bodies() -> None:
    events = [{"eventId": index, "attemptNumber": 0} for index in range(205)]

    assert [len(batch) for batch in batches(events)] == [100, 100, 5]
    assert attempt_body(events[:2], 3) == [{"eventId": 0, "attemptNumber": 3}, {"eventId": 1, "attemptNumber": 3}]
    assert events[0]["attemptNumber"] == 0


def test_object_types_resolve_by_id_and_name() -> None:
    assert resolve_object_type("0-421") is APPOINTMENTS
    assert resolve_object_type("Appointments") is APPOINTMENTS
    assert resolve_object_type("appointments", v3=True) is None
    assert resolve_object_type("notes", v3=True) is NOTES
    assert resolve_object_type("contacts") is None


def test_the_catalogue_marks_what_is_confirmed() -> None:
    confirmed = {name for name, spec in APPOINTMENT_PROPERTIES.items() if spec.confirmed}
    read_only = {name for name, spec in APPOINTMENT_PROPERTIES.items() if spec.read_only}

    assert confirmed == {"hs_appointment_name", "hs_appointment_start", "hs_appointment_end", "hs_appointment_status"}
    assert read_only == {"hs_object_id", "hs_createdate", "hs_lastmodifieddate", "hs_duration"}


@pytest.mark.parametrize(
    "overrides",
    [
        {"hubspot_retry_delays_s": (1.0,) * 11},
        {"hubspot_retry_delays_s": (-1.0,)},
        {"hubspot_batch_window_ms": -1},
        {"hubspot_webhook_timeout_s": 0},
        {"hubspot_rate_limit_max": 0},
        {"hubspot_access_token": ""},
    ],
)
def test_invalid_hubspot_settings_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SandboxConfig(**overrides)  # type: ignore[arg-type]
