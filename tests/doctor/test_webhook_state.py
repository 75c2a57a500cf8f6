"""Webhooks refused for a wrong secret or token: the pure verdict, and reading what the receiver recorded."""

from __future__ import annotations

from arq.connections import ArqRedis

from crmflow.doctor.webhook_state import WebhookState, read_state, webhook_findings
from receiver.errors import AuthenticationError
from receiver.rejections import record_rejection
from workers import keys

NOW = 1_800_000_000_000
MISMATCH = {"count": "3", "HUBSPOT_CLIENT_SECRET:last_ms": str(NOW - 60_000), "HUBSPOT_CLIENT_SECRET:count": "3"}


def _verdict(refusals: dict[str, str], accepted_ms: int | None) -> tuple[str, str, str]:
    (finding,) = webhook_findings("hubspot", WebhookState(refusals, accepted_ms), NOW)
    return finding.status, finding.setting, finding.message


def test_refused_for_a_wrong_secret_and_none_accepted_since_fails_naming_it() -> None:
    status, setting, message = _verdict(MISMATCH, NOW - 3_600_000)

    assert (status, setting) == ("fail", "HUBSPOT_CLIENT_SECRET")
    assert message == (
        "the receiver refused 3 HubSpot webhook(s) with a signature that does not match (the last 60 s ago) and "
        "none accepted since (the last 60 min ago)"
    )


def test_an_acceptance_since_clears_the_setting_and_unknown_is_a_warning() -> None:
    assert _verdict(MISMATCH, NOW - 1_000)[0] == "ok"
    assert _verdict(MISMATCH, None)[:2] == ("warn", "HUBSPOT_CLIENT_SECRET")
    assert "whether any was accepted since is not known" in _verdict(MISMATCH, None)[2]


def test_refusals_of_other_kinds_point_at_no_setting() -> None:
    """A missing or stale signature is the sender's doing: counted, but no setting is at fault."""
    assert _verdict({"count": "5", "last_ms": str(NOW)}, None) == (
        "ok",
        "HUBSPOT_CLIENT_SECRET",
        "none refused with a signature that does not match in the last 7 days",
    )


def test_zoho_names_the_token_and_the_channel_ids_apart() -> None:
    refusals = {"ZOHO_CHANNEL_IDS:last_ms": str(NOW - 5_000), "ZOHO_CHANNEL_IDS:count": "1"}

    found = webhook_findings("zoho", WebhookState(refusals, NOW - 10_000), NOW)

    assert [(f.setting, f.status) for f in found] == [("ZOHO_NOTIFY_TOKEN", "ok"), ("ZOHO_CHANNEL_IDS", "fail")]


async def test_read_state_gives_back_what_the_receiver_recorded(redis: ArqRedis) -> None:
    mismatch = AuthenticationError("token does not match", setting="ZOHO_NOTIFY_TOKEN")
    await record_rejection(redis, "zoho", mismatch, NOW)
    await redis.set(keys.last_notification("zoho"), NOW - 1)

    state = await read_state(redis, "zoho")
    nothing = await read_state(redis, "hubspot")

    assert state.accepted_ms == NOW - 1 and state.refusals["ZOHO_NOTIFY_TOKEN:last_ms"] == str(NOW)
    assert nothing == WebhookState({}, None)
