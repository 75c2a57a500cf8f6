"""`crmflow demo` runs the whole flow in-process and shows the notification, the job and the history row."""

from __future__ import annotations

import pytest

from sandbox.demo.run import run_demo
from tests.processes import REPO


async def test_demo_prints_the_history_row_it_produced(redis_url: str) -> None:
    lines: list[str] = []

    await run_demo(redis_url=redis_url, rules_path=str(REPO / "rules" / "default.yaml"), out=lines.append)

    text = "\n".join(lines)
    # A Redis that is already running is shared with real deployments: the demo keeps to its own database.
    assert lines[0].startswith("Redis") and "/15 (already running; database 15" in lines[0]
    assert "The notification Zoho sent to the receiver:" in text
    assert '"status": "created"' in text
    assert "The history row crmflow wrote (Appointments_Rescheduled_History__s):" in text
    assert '"Reschedule_Reason": "By Customer"' in text
    assert "rows now: 1." in text
    assert "The signed batch HubSpot sent to the receiver:" in text
    assert '"x-hubspot-signature-v3"' in text.lower()
    assert "was rescheduled from" in text and "Changed by HubSpot user 71230003 (CRM_UI)." in text
    assert "notes now: 1." in text
    assert text.endswith("Stopped everything the demo started.")


@pytest.mark.slow
async def test_demo_starts_its_own_redis_when_none_answers() -> None:
    lines: list[str] = []

    await run_demo(redis_url="redis://127.0.0.1:1/0", rules_path=str(REPO / "rules" / "default.yaml"), out=lines.append)

    assert "private redis-server: nothing answered at redis://127.0.0.1:1/0" in lines[0]
    assert "rows now: 1." in "\n".join(lines)
    assert "notes now: 1." in "\n".join(lines)
