"""POST /_sandbox/webhooks: Zoho callbacks and HubSpot webhook batches switched off and on."""

from __future__ import annotations

from tests.sandbox.conftest import MakeSandbox
from tests.sandbox.harness import HS_SCHEDULED, HUBSPOT_FAST, RESCHEDULED, FakeClock


async def test_switched_off_nothing_is_sent_and_nothing_later(make: MakeSandbox, clock: FakeClock) -> None:
    sb = await make(**HUBSPOT_FAST)

    off = await sb.client.post("/_sandbox/webhooks", json={"enabled": False})
    assert (await sb.reschedule(RESCHEDULED, clock.iso(days=3))).status_code == 200
    await sb.client.patch(
        f"/_sandbox/hubspot/appointments/{HS_SCHEDULED}", json={"properties": {"hs_appointment_name": "x"}}
    )
    await sb.settle()
    on = await sb.client.post("/_sandbox/webhooks", json={"enabled": True})
    await sb.settle()
    silent = (len(sb.callbacks), len(sb.webhooks))
    assert (await sb.reschedule(RESCHEDULED, clock.iso(days=4))).status_code == 200
    await sb.settle()

    assert off.json() == {"zoho": False, "hubspot": False}
    assert on.json() == {"zoho": True, "hubspot": True}
    assert silent == (0, 0)
    assert len(sb.callbacks) == 1


async def test_one_crm_at_a_time_and_bad_bodies(make: MakeSandbox) -> None:
    sb = await make(**HUBSPOT_FAST)

    hubspot_off = await sb.client.post("/_sandbox/webhooks", json={"enabled": False, "crm": "hubspot"})
    bad = [
        await sb.client.post("/_sandbox/webhooks", json=body)
        for body in ({}, {"enabled": "no"}, {"enabled": True, "crm": "x"})
    ]
    state = await sb.client.get("/_sandbox/webhooks")
    await sb.client.post("/_sandbox/reset")
    after_reset = await sb.client.get("/_sandbox/webhooks")

    assert hubspot_off.json() == {"zoho": True, "hubspot": False}
    assert [answer.status_code for answer in bad] == [400, 400, 400]
    assert state.json() == {"zoho": True, "hubspot": False}
    assert after_reset.json() == {"zoho": True, "hubspot": True}
