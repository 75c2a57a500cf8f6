"""Verify: authenticate webhooks in constant time (Zoho's echoed token, HubSpot's signatures). Pure."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Collection
from dataclasses import dataclass
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
        raise AuthenticationError("token does not match", setting="ZOHO_NOTIFY_TOKEN")
    if channel_ids is None:
        return
    channel = payload.get("channel_id")
    # Zoho documents channel_id as a long; the samples send it as a string. Accept both spellings.
    if isinstance(channel, bool) or not isinstance(channel, str | int):
        raise AuthenticationError("missing channel_id")
    if not any(_same(str(channel), allowed) for allowed in channel_ids):
        raise AuthenticationError("channel_id is not one of ZOHO_CHANNEL_IDS", setting="ZOHO_CHANNEL_IDS")


# HubSpot v3: "decode any of the URL-encoded characters listed in the table"; nothing else is decoded.
_HUBSPOT_DECODED = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
    "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}  # fmt: skip
_HUBSPOT_ESCAPES = re.compile("|".join(_HUBSPOT_DECODED), re.IGNORECASE)
MAX_AGE_MS = 5 * 60 * 1000  # HubSpot: "Reject the request if the timestamp is older than 5 minutes."
MAX_AHEAD_MS = 60 * 1000  # clock skew tolerated for a timestamp in the future
MAX_TIMESTAMP_DIGITS = 16
# A signature that is there but does not match points at the secret (or at PUBLIC_BASE_URL, which is signed too).
SIGNED_BY = "HUBSPOT_CLIENT_SECRET"


def hubspot_uri(public_base_url: str, raw_path: str, query: str) -> str:
    """The URI HubSpot called: the public base URL (not what a TLS proxy forwards) + path + query."""
    return public_base_url.rstrip("/") + raw_path + (f"?{query}" if query else "")


def hubspot_v3_signature(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """base64(HMAC-SHA256(secret, method + uri + body + timestamp)), with HubSpot's partial URI decoding."""
    decoded = _HUBSPOT_ESCAPES.sub(lambda m: _HUBSPOT_DECODED[m.group(0).upper()], uri)
    message = method.upper().encode() + decoded.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def hubspot_v1_signature(secret: str, body: bytes) -> str:
    """hex(SHA-256(secret + body)): HubSpot's v1 webhook signature."""
    return hashlib.sha256(secret.encode() + body).hexdigest()


def hubspot_v2_signature(secret: str, method: str, uri: str, body: bytes) -> str:
    """hex(SHA-256(secret + method + uri + body)): HubSpot's v2 signature (workflow webhooks, CRM cards)."""
    return hashlib.sha256(secret.encode() + method.upper().encode() + uri.encode() + body).hexdigest()


@dataclass(frozen=True)
class HubSpotSignatureHeaders:
    """The signature headers of a HubSpot request (header names are case-insensitive)."""

    v3: str | None
    timestamp: str | None
    legacy: str | None
    legacy_version: str | None


def verify_hubspot(
    *,
    method: str,
    uri: str,
    body: bytes,
    headers: HubSpotSignatureHeaders,
    secret: str,
    now_ms: int,
    accept_legacy: bool,
) -> None:
    """Raise AuthenticationError unless the request carries a valid HubSpot signature.

    v3 (HMAC with a timestamp no older than 5 minutes) is always required when present. The older v1/v2
    signatures, which cannot expire and so can be replayed, are accepted only with `accept_legacy` and
    only when the request has no v3 signature.
    """
    if headers.v3:
        _check_timestamp(headers.timestamp, now_ms)
        expected = hubspot_v3_signature(secret, method, uri, body, str(headers.timestamp))
        if not _same(headers.v3, expected):
            raise AuthenticationError("X-HubSpot-Signature-v3 does not match", setting=SIGNED_BY)
        return
    if not (accept_legacy and headers.legacy):
        raise AuthenticationError("missing X-HubSpot-Signature-v3")
    version = (headers.legacy_version or "v1").lower()
    if version == "v1":
        expected = hubspot_v1_signature(secret, body)
    elif version == "v2":
        expected = hubspot_v2_signature(secret, method, uri, body)
    else:
        raise AuthenticationError("unknown X-HubSpot-Signature-Version (expected v1 or v2)")
    if not _same(headers.legacy.lower(), expected):
        raise AuthenticationError(f"X-HubSpot-Signature ({version}) does not match", setting=SIGNED_BY)


def _check_timestamp(timestamp: str | None, now_ms: int) -> None:
    # Epoch milliseconds have 13 digits; a longer string is refused before int() (which has a digit limit).
    if not timestamp or len(timestamp) > MAX_TIMESTAMP_DIGITS or not timestamp.isascii() or not timestamp.isdigit():
        raise AuthenticationError("missing or malformed X-HubSpot-Request-Timestamp")
    age_ms = now_ms - int(timestamp)
    if age_ms > MAX_AGE_MS:
        raise AuthenticationError("X-HubSpot-Request-Timestamp is older than 5 minutes")
    if age_ms < -MAX_AHEAD_MS:
        raise AuthenticationError("X-HubSpot-Request-Timestamp is in the future")
