"""The metric definitions: the issue's names and labels, bounded label values, event time, the exposition."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.processes import REPO
from workers import metrics
from workers.metrics import REGISTRY, SharedState

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def value(name: str, **labels: str) -> float:
    """A sample's current value in crmflow's registry (0 when it has never been set)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def webhooks_total() -> float:
    """Every crmflow_webhooks_total series added up."""
    return sum(s.value for family in metrics.WEBHOOKS.collect() for s in family.samples if s.name.endswith("_total"))


def families(text: bytes) -> dict[str, object]:
    return {family.name: family for family in text_string_to_metric_families(text.decode())}


def test_the_issue_names_every_metric_and_its_labels() -> None:
    declared = {
        (metric._name, metric._type): tuple(metric._labelnames)
        for metric in (
            metrics.WEBHOOKS,
            metrics.JOBS,
            metrics.ACTIONS,
            metrics.CRM_REQUESTS,
            metrics.CRM_REQUEST_DURATION,
            metrics.EVENT_LAG,
        )
    }

    assert declared == {
        ("crmflow_webhooks", "counter"): ("source", "outcome"),
        ("crmflow_jobs", "counter"): ("source", "outcome"),
        ("crmflow_actions", "counter"): ("rule", "action", "outcome"),
        ("crmflow_crm_requests", "counter"): ("source", "operation", "status"),
        ("crmflow_crm_request_duration_seconds", "histogram"): ("source", "operation"),
        ("crmflow_event_lag_seconds", "histogram"): ("source",),
    }
    state = SharedState(queue_depth=0, first_due_s=None, deadletters=0)
    exposed = families(metrics.exposition(state, NOW.timestamp()))
    for name in ("crmflow_queue_depth", "crmflow_queue_oldest_age_seconds", "crmflow_deadletters"):
        assert name in exposed


def test_an_accepted_request_counts_once_and_its_records_each() -> None:
    before = value("crmflow_webhooks_total", source="zoho", outcome="accepted")
    queued = value("crmflow_webhook_events_total", source="zoho", outcome="queued")
    coalesced = value("crmflow_webhook_events_total", source="zoho", outcome="coalesced")

    metrics.count_webhook("zoho", queued=3, coalesced=1, duplicates=0, ignored=0)

    assert value("crmflow_webhooks_total", source="zoho", outcome="accepted") == before + 1
    assert value("crmflow_webhook_events_total", source="zoho", outcome="queued") == queued + 3
    assert value("crmflow_webhook_events_total", source="zoho", outcome="coalesced") == coalesced + 1


@pytest.mark.parametrize(
    ("queued", "duplicates", "outcome"),
    [(2, 1, "accepted"), (0, 2, "duplicate"), (0, 0, "ignored")],
)
def test_a_request_outcome_is_accepted_then_duplicate_then_ignored(queued: int, duplicates: int, outcome: str) -> None:
    assert metrics.webhook_outcome(queued, duplicates) == outcome


def test_rejections_count_only_on_webhook_paths_under_a_known_reason() -> None:
    unauthenticated = value("crmflow_webhooks_total", source="hubspot", outcome="unauthenticated")
    other = value("crmflow_webhooks_total", source="zoho", outcome="other")
    total_before = webhooks_total()

    metrics.count_rejection("/webhooks/hubspot/", "unauthenticated")
    metrics.count_rejection("/webhooks/zoho", "something_new")
    metrics.count_rejection("/webhooks/zoho/5545974000002555001", "not_found")
    metrics.count_rejection("/healthz", "unauthenticated")

    assert value("crmflow_webhooks_total", source="hubspot", outcome="unauthenticated") == unauthenticated + 1
    assert value("crmflow_webhooks_total", source="zoho", outcome="other") == other + 1
    total = webhooks_total()
    assert total == total_before + 2


def test_every_receiver_error_code_is_a_known_rejection() -> None:
    from receiver import errors

    codes = {
        cls.code for cls in vars(errors).values() if isinstance(cls, type) and issubclass(cls, errors.WebhookError)
    }
    assert codes - {"bad_request"} <= metrics.REJECTIONS


def test_every_crm_call_names_an_operation_of_the_vocabulary() -> None:
    sources = "\n".join(path.read_text() for path in sorted((REPO / "workers" / "crm").glob("*.py")))
    named = set(re.findall(r'_call\(\s*"([a-z_]+)"', sources)) | set(
        re.findall(r'Call\("[a-z]+", "([a-z_]+)"\)', sources)
    )
    named |= {"enable_channels", "update_channels"}  # chosen by method in ZohoClient._write_channels

    assert named
    assert named <= metrics.CRM_OPERATIONS


@pytest.mark.parametrize(
    ("status", "code", "label"),
    [(200, None, "200"), (429, None, "429"), (None, "TIMEOUT", "timeout"), (None, "CONNECTION", "connection_error")],
)
def test_a_crm_status_is_the_http_status_or_why_there_was_none(
    status: int | None, code: str | None, label: str
) -> None:
    assert metrics.crm_status(status, code) == label


def test_hubspot_event_time_is_occurred_at() -> None:
    occurred_at = NOW - timedelta(seconds=30)
    last_modified = NOW - timedelta(seconds=29)

    assert metrics.event_time(occurred_at, last_modified) == occurred_at


def test_zoho_event_time_is_the_records_modified_time_bounded_by_server_time() -> None:
    server_time = NOW - timedelta(seconds=10)
    modified = NOW - timedelta(seconds=12)
    changed_again = NOW - timedelta(seconds=2)

    assert metrics.event_time(server_time, modified) == modified
    assert metrics.event_time(server_time, changed_again) == server_time
    assert metrics.event_time(server_time, None) == server_time


def test_lag_is_observed_in_seconds_and_never_below_zero() -> None:
    count = value("crmflow_event_lag_seconds_count", source="zoho")
    total = value("crmflow_event_lag_seconds_sum", source="zoho")

    metrics.observe_lag("zoho", NOW - timedelta(seconds=4), NOW)
    metrics.observe_lag("zoho", NOW + timedelta(seconds=3), NOW)  # a CRM clock ahead of ours

    assert value("crmflow_event_lag_seconds_count", source="zoho") == count + 2
    assert value("crmflow_event_lag_seconds_sum", source="zoho") == pytest.approx(total + 4)


def test_without_redis_only_the_flag_stands_for_the_shared_state() -> None:
    exposed = families(metrics.exposition(None, NOW.timestamp()))

    assert exposed["crmflow_redis_up"].samples[0].value == 0  # type: ignore[attr-defined]
    assert "crmflow_queue_depth" not in exposed and "crmflow_deadletters" not in exposed
    assert "crmflow_webhooks" in exposed and "crmflow_jobs" in exposed


def test_the_shared_state_becomes_gauges() -> None:
    state = SharedState(
        queue_depth=7,
        first_due_s=NOW.timestamp() - 42,
        deadletters=3,
        channel_expiry_s={"1000000068001": NOW.timestamp() + 3600},
        channel_failures=1,
        duty_completed_s={"zoho-channels": NOW.timestamp() - 60, "sweep:zoho": NOW.timestamp() - 120},
        sweep_cursor_s={("zoho", "Appointments__s"): NOW.timestamp() - 300},
    )

    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(metrics.exposition(state, NOW.timestamp()).decode())
        for sample in family.samples
    }

    assert samples[("crmflow_redis_up", ())] == 1
    assert samples[("crmflow_queue_depth", ())] == 7
    assert samples[("crmflow_queue_oldest_age_seconds", ())] == pytest.approx(42)
    assert samples[("crmflow_deadletters", ())] == 3
    assert samples[("crmflow_zoho_channel_failures", ())] == 1
    expiry = ("crmflow_zoho_channel_expiry_timestamp_seconds", (("channel", "1000000068001"),))
    assert samples[expiry] == NOW.timestamp() + 3600
    duty = ("crmflow_duty_last_completed_timestamp_seconds", (("duty", "sweep:zoho"),))
    assert samples[duty] == NOW.timestamp() - 120
    cursor = ("crmflow_sweep_cursor_timestamp_seconds", (("module", "Appointments__s"), ("source", "zoho")))
    assert samples[cursor] == NOW.timestamp() - 300


def test_a_job_not_due_yet_is_not_overdue() -> None:
    state = SharedState(queue_depth=1, first_due_s=NOW.timestamp() + 30, deadletters=0)

    exposed = families(metrics.exposition(state, NOW.timestamp()))

    assert exposed["crmflow_queue_oldest_age_seconds"].samples[0].value == 0  # type: ignore[attr-defined]
