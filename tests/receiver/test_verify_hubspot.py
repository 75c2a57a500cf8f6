"""HubSpot signatures: the published v1/v2 test vectors, and v3 cases whose expected signatures are computed
here, independently of receiver/verify.py, from HubSpot's written algorithm."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from receiver.errors import AuthenticationError
from receiver.verify import (
    HubSpotSignatureHeaders,
    hubspot_v1_signature,
    hubspot_v2_signature,
    verify_hubspot,
)

SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
V1_BODY = (
    b'[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,'
    b'"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM",'
    b'"changeFlag":"NEW","appId":54321}]'
)
NOW_MS = 1_795_000_000_000
BODY = b'[{"eventId":7,"objectId":42}]'
URI = "https://crmflow.example.com/webhooks/hubspot"


def test_v1_published_vector() -> None:
    assert hubspot_v1_signature(SECRET, V1_BODY) == "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"


def test_v2_published_vectors() -> None:
    uri = "https://www.example.com/webhook_uri"
    assert hubspot_v2_signature(SECRET, "GET", uri, b"") == (
        "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e"
    )
    assert hubspot_v2_signature(SECRET, "POST", uri, b'{"example_field":"example_value"}') == (
        "9569219f8ba981ffa6f6f16aa0f48637d35d728c7e4d93d0d52efaa512af7900"
    )


def v3(source_uri: str, body: bytes = BODY, timestamp: int = NOW_MS, secret: str = SECRET) -> str:
    """HubSpot's algorithm, written out here: base64(HMAC-SHA256(secret, "POST" + uri + body + timestamp))."""
    message = b"POST" + source_uri.encode() + body + str(timestamp).encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def check(
    uri: str = URI,
    body: bytes = BODY,
    *,
    v3_signature: str | None = None,
    timestamp: int | None = NOW_MS,
    legacy: str | None = None,
    version: str | None = None,
    accept_legacy: bool = False,
) -> None:
    verify_hubspot(
        method="POST",
        uri=uri,
        body=body,
        headers=HubSpotSignatureHeaders(
            v3=v3_signature,
            timestamp=None if timestamp is None else str(timestamp),
            legacy=legacy,
            legacy_version=version,
        ),
        secret=SECRET,
        now_ms=NOW_MS,
        accept_legacy=accept_legacy,
    )


def test_v3_valid() -> None:
    check(v3_signature=v3(URI))


def test_v3_timestamp_at_the_edges() -> None:
    old = NOW_MS - 5 * 60 * 1000
    ahead = NOW_MS + 60 * 1000
    check(v3_signature=v3(URI, timestamp=old), timestamp=old)
    check(v3_signature=v3(URI, timestamp=ahead), timestamp=ahead)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"v3_signature": v3(URI, secret="another-secret")}, "X-HubSpot-Signature-v3 does not match"),
        ({"v3_signature": v3(URI), "body": BODY + b" "}, "X-HubSpot-Signature-v3 does not match"),
        ({"v3_signature": v3(URI), "uri": URI.replace("crmflow.", "evil.")}, "X-HubSpot-Signature-v3 does not match"),
        ({"v3_signature": v3(URI), "uri": "http://crmflow.example.com/webhooks/hubspot"}, "does not match"),
        ({"v3_signature": v3(URI), "uri": URI + "/"}, "X-HubSpot-Signature-v3 does not match"),
        ({"v3_signature": v3(URI + "/")}, "X-HubSpot-Signature-v3 does not match"),
        (
            {"v3_signature": v3(URI, timestamp=NOW_MS - 300_001), "timestamp": NOW_MS - 300_001},
            "X-HubSpot-Request-Timestamp is older than 5 minutes",
        ),
        (
            {"v3_signature": v3(URI, timestamp=NOW_MS + 60_001), "timestamp": NOW_MS + 60_001},
            "X-HubSpot-Request-Timestamp is in the future",
        ),
        ({"v3_signature": v3(URI), "timestamp": None}, "missing or malformed X-HubSpot-Request-Timestamp"),
        ({"v3_signature": v3(URI), "timestamp": -5}, "missing or malformed X-HubSpot-Request-Timestamp"),
        ({}, "missing X-HubSpot-Signature-v3"),
        ({"v3_signature": v3(URI).swapcase()}, "does not match"),
    ],
    ids=[
        "wrong-secret",
        "altered-body",
        "altered-host",
        "http-not-https",
        "request-has-trailing-slash",
        "signed-with-trailing-slash",
        "too-old",
        "future",
        "no-timestamp",
        "malformed-timestamp",
        "no-signature",
        "mangled-base64",
    ],
)
def test_v3_refusals(kwargs: dict[str, object], reason: str) -> None:
    with pytest.raises(AuthenticationError, match=reason):
        check(**kwargs)  # type: ignore[arg-type]


def test_v3_decodes_only_the_listed_escapes_in_path_and_query() -> None:
    # HubSpot decodes %3A %2F %3F %40 %21 %24 %27 %28 %29 %2A %2C %3B (any case) before signing; not %20 or %26.
    sent = "https://crmflow.example.com/webhooks/hubspot%3aportal%40one?x=a%2Fb%2C(c)&y=%20%26%3D"
    signed = "https://crmflow.example.com/webhooks/hubspot:portal@one?x=a/b,(c)&y=%20%26%3D"

    check(uri=sent, v3_signature=v3(signed))
    with pytest.raises(AuthenticationError):
        check(uri=sent, v3_signature=v3(sent))


def test_legacy_signatures_only_when_allowed_and_only_without_v3() -> None:
    v1 = hashlib.sha256(SECRET.encode() + BODY).hexdigest()
    v2 = hashlib.sha256(SECRET.encode() + b"POST" + URI.encode() + BODY).hexdigest()

    check(legacy=v1, version="v1", accept_legacy=True, timestamp=None)
    check(legacy=v1.upper(), accept_legacy=True, timestamp=None)
    check(legacy=v2, version="v2", accept_legacy=True, timestamp=None)
    with pytest.raises(AuthenticationError, match="missing X-HubSpot-Signature-v3"):
        check(legacy=v1, version="v1", accept_legacy=False)
    with pytest.raises(AuthenticationError, match="v3 does not match"):
        check(legacy=v1, version="v1", accept_legacy=True, v3_signature=v3(URI, secret="wrong"))
    with pytest.raises(AuthenticationError, match=r"X-HubSpot-Signature \(v1\) does not match"):
        check(legacy="00" * 32, version="v1", accept_legacy=True)
    with pytest.raises(AuthenticationError, match="unknown X-HubSpot-Signature-Version"):
        check(legacy=v1, version="v9", accept_legacy=True)
