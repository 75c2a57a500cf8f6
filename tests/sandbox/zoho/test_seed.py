"""sandbox/zoho/seed.py: the seed's reschedule is older than a worker's first sweep window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sandbox.zoho.seed import RESCHEDULED_ID, seed_appointments
from workers.config import WorkerConfig

RESET = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def test_the_seeded_reschedule_happened_before_the_default_sweep_window_opens() -> None:
    """A worker started up to an hour before the sandbox's reset does not sweep up the seed's reschedule."""
    lookback = timedelta(seconds=WorkerConfig.model_fields["sweep_lookback_s"].default)
    [rescheduled] = [record for record in seed_appointments(RESET) if record["id"] == RESCHEDULED_ID]
    window_opens = RESET - lookback - timedelta(hours=1)

    assert rescheduled["Modified_Time"] <= window_opens
    assert rescheduled["Rescheduled_Time"] <= window_opens
