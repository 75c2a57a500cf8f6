"""Verify: authenticate a Zoho callback by its echoed token and channel id, in constant time. Pure."""

from __future__ import annotations

import hmac
from collections.abc import Collection
from typing import Any

from receiver.errors import AuthenticationError


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def verify_zoho(payload: Any, *, expected_token: str, channel_ids: Collection[str] | None) -> None:
    """Raise AuthenticationError unless `payload` carries the configured token (and an allowed channel_id).

    Zoho signs nothing: the only proof of origin is the `token` chosen when the watch channel was enabled,
    which Zoho echoes in the body. A callback with no token (one has been seen with `"token": null` on a
    delete) cannot be authenticated and is refused.
    """
    if not isinstance(payload, dict):
        raise AuthenticationError("missing token: body is not a JSON object")
    token = payload.get("token")
    if not isinstance(token, str) or not token:
        raise AuthenticationError("missing token")
    if not _same(token, expected_token):
        raise AuthenticationError("token does not match")
    if channel_ids is None:
        return
    channel = payload.get("channel_id")
    # Zoho documents channel_id as a long; the samples send it as a string. Accept both spellings.
    if isinstance(channel, bool) or not isinstance(channel, str | int):
        raise AuthenticationError("missing channel_id")
    if not any(_same(str(channel), allowed) for allowed in channel_ids):
        raise AuthenticationError("channel_id is not one of ZOHO_CHANNEL_IDS")
