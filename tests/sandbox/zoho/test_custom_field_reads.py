"""Zoho custom fields on records: GET returns registered ones (null when unset), the control route sets them."""

from __future__ import annotations

from tests.sandbox.conftest import MakeSandbox
from tests.sandbox.harness import SCHEDULED, Harness


async def test_a_registered_custom_field_is_null_until_set_then_read_back(make: MakeSandbox) -> None:
    sb = await make(custom_fields=("zoho:Appointments__s:Visit_Priority",))

    assert (await sb.appointment(SCHEDULED))["Visit_Priority"] is None
    response = await sb.client.patch(f"/_sandbox/appointments/{SCHEDULED}", json={"Visit_Priority": "High"})

    assert response.status_code == 200, response.text
    assert (await sb.appointment(SCHEDULED))["Visit_Priority"] == "High"
    [callback] = sb.callback_bodies()
    assert "Visit_Priority" in callback["affected_fields"][0][SCHEDULED]
    assert callback["affected_values"][0]["values"]["Visit_Priority"] == "High"


async def test_an_unregistered_custom_field_appears_once_written(sb: Harness) -> None:
    assert "Gate_Code" not in await sb.appointment(SCHEDULED)

    await sb.client.patch(f"/_sandbox/appointments/{SCHEDULED}", json={"Gate_Code": "4711"})

    assert (await sb.appointment(SCHEDULED))["Gate_Code"] == "4711"
