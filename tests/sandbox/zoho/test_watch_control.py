"""The sandbox's default channel as crmflow wants it, and POST /_sandbox/channels/{id}/expire: a channel near its
expiry, or expired and deleted as Zoho deletes it."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from sandbox.config import SandboxConfig
from tests.sandbox.conftest import MakeSandbox
from tests.sandbox.harness import SCHEDULED, Harness
from workers.channels import NOTIFY_PATH, Wanted, differences
from workers.crm.zoho_watch_models import parse_channels

WATCH = "/crm/v7/actions/watch"
CHANNEL = "1000000068001"


@pytest.fixture
async def sb(make: MakeSandbox) -> Harness:
    """The default channel (1000000068001, a week from reset) calling the mock receiver."""
    return await make()


async def test_the_default_channel_is_the_one_crmflow_keeps_so_the_workers_leave_it_alone(make: MakeSandbox) -> None:
    """The sandbox's channel stands for one `crmflow zoho subscribe` made: given its notify URL and token, crmflow
    finds nothing to change (not even notify_on_related_action, which Zoho defaults to true and crmflow sets
    false)."""
    sb = await make(notify_url=f"http://receiver.test{NOTIFY_PATH}")
    token = SandboxConfig().notify_token
    assert token is not None
    wanted = Wanted(channel_ids=(CHANNEL,), public_base_url="http://receiver.test", token=SecretStr(token))

    have = parse_channels((await sb.api("GET", WATCH)).json())

    assert differences(wanted.spec(CHANNEL), have[CHANNEL]) == []


async def test_a_channel_brought_near_its_expiry_lists_the_new_expiry(sb: Harness) -> None:
    aged = await sb.client.post(f"/_sandbox/channels/{CHANNEL}/expire", json={"in_s": 3600})

    assert aged.status_code == 200
    assert aged.json() == {"channel_id": CHANNEL, "channel_expiry": "2026-03-02T10:15:30+00:00", "active": True}
    listed = (await sb.api("GET", WATCH)).json()["watch"]
    assert [entry["channel_expiry"] for entry in listed] == ["2026-03-02T10:15:30+00:00"]


async def test_an_expired_channel_is_gone_stops_notifying_and_cannot_be_patched(sb: Harness) -> None:
    expired = await sb.client.post(f"/_sandbox/channels/{CHANNEL}/expire")

    assert expired.json()["active"] is False
    assert (await sb.api("GET", WATCH)).status_code == 204
    await sb.reschedule(SCHEDULED, "2026-03-10T15:00:00+00:00")
    assert sb.callbacks == []
    item = {"channel_id": CHANNEL, "events": ["Appointments__s.all"], "notify_url": "https://x.test/webhooks/zoho"}
    patched = await sb.api("PATCH", WATCH, json={"watch": [item]})
    assert patched.status_code == 400
    assert patched.json()["watch"][0]["code"] == "INVALID_DATA"
    again = await sb.client.post(f"/_sandbox/channels/{CHANNEL}/expire")
    assert again.status_code == 404


@pytest.mark.parametrize("body", [{"in_s": -1}, {"in_s": "soon"}, {"in_s": True}, [1]])
async def test_a_bad_expire_request_is_refused(sb: Harness, body: object) -> None:
    refused = await sb.client.post(f"/_sandbox/channels/{CHANNEL}/expire", json=body)

    assert refused.status_code == 400
    assert (await sb.api("GET", WATCH)).status_code == 200
