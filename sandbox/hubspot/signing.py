"""HubSpot's webhook request signatures, computed as HubSpot does when it sends (not as a receiver checks). Pure.

v1: hex(SHA-256(client_secret + body)), sent with `X-HubSpot-Signature-Version: v1` for CRM
object subscriptions. v3: base64(HMAC-SHA256(client_secret, "POST" + uri + body + timestamp)) in
`X-HubSpot-Signature-v3`, timestamp in ms in `X-HubSpot-Request-Timestamp`. The uri is the configured target
URL with the characters HubSpot's validation guide tells receivers to decode (%3A %2F %3F %40 %21 %24 %27 %28
%29 %2A %2C %3B) decoded, since a receiver following that guide must arrive at the string HubSpot signed;
for URLs without those escapes it is the URL exactly as configured. Both are described in (docs/hubspot.md,
"Signatures").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

_DECODED = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}
_ESCAPE = re.compile("|".join(_DECODED), re.IGNORECASE)


def signed_uri(url: str) -> str:
    """The uri that goes into a v3 signature: `url` with the listed percent-escapes decoded."""
    return _ESCAPE.sub(lambda match: _DECODED[match.group(0).upper()], url)


def signature_v1(client_secret: str, body: bytes) -> str:
    return hashlib.sha256(client_secret.encode() + body).hexdigest()


def signature_v3(client_secret: str, method: str, url: str, body: bytes, timestamp: str) -> str:
    source = method.upper().encode() + signed_uri(url).encode() + body + timestamp.encode()
    digest = hmac.new(client_secret.encode(), source, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def signed_headers(client_secret: str, url: str, body: bytes, timestamp_ms: int) -> dict[str, str]:
    """Every signature header of one webhook POST (v3 plus v1 for backwards compatibility)."""
    timestamp = str(timestamp_ms)
    return {
        "X-HubSpot-Request-Timestamp": timestamp,
        "X-HubSpot-Signature-v3": signature_v3(client_secret, "POST", url, body, timestamp),
        "X-HubSpot-Signature": signature_v1(client_secret, body),
        "X-HubSpot-Signature-Version": "v1",
    }
