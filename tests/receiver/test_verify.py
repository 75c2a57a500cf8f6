"""verify_zoho: token and channel checks."""

from __future__ import annotations

from typing import Any

import pytest

from receiver.errors import AuthenticationError
from receiver.verify import verify_zoho


def check(payload: Any, channel_ids: frozenset[str] | None = None) -> None:
    verify_zoho(payload, expected_token="s3cret", channel_ids=channel_ids)


def test_matching_token_passes() -> None:
    check({"token": "s3cret", "channel_id": "1"})


def test_channel_may_be_a_number() -> None:
    check({"token": "s3cret", "channel_id": 1000000068001}, frozenset({"1000000068001"}))


@pytest.mark.parametrize(
    ("payload", "channels", "reason"),
    [
        ({"token": "s3cre"}, None, "token does not match"),
        ({"token": "s3cret "}, None, "token does not match"),
        ({"token": "\u017f3cret"}, None, "token does not match"),
        ({"token": None}, None, "missing token"),
        ({}, None, "missing token"),
        ("s3cret", None, "missing token: body is not a JSON object"),
        ({"token": "s3cret"}, frozenset({"1"}), "missing channel_id"),
        ({"token": "s3cret", "channel_id": True}, frozenset({"1"}), "missing channel_id"),
        ({"token": "s3cret", "channel_id": "2"}, frozenset({"1"}), "channel_id is not one of ZOHO_CHANNEL_IDS"),
    ],
)
def test_refusals(payload: Any, channels: frozenset[str] | None, reason: str) -> None:
    with pytest.raises(AuthenticationError) as raised:
        check(payload, channels)

    assert raised.value.detail == reason
