"""Notify signing: Standard Webhooks headers (webhook-id, webhook-timestamp, webhook-signature). Pure.

The signature is `v1,` + base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}")), where the key is the
base64-decoded part of a `whsec_…` secret and the timestamp is in whole epoch seconds
(https://www.standardwebhooks.com). `verify` is the receiving side, for the demo's endpoint and for tests; the
`standardwebhooks` package checks the same signatures in tests/workers/notify.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping

from workers.errors import NotifySecretError

SECRET_PREFIX = "whsec_"
# Standard Webhooks: "The signing secret should be between 24 bytes (192 bits) and 64 bytes (512 bits)".
MIN_SECRET_BYTES = 24
# How far a receiver lets webhook-timestamp stray from its clock (the Standard Webhooks libraries' 5 minutes).
TOLERANCE_S = 300

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"


class SignatureMismatchError(Exception):
    """A delivery's headers do not prove it came from the holder of the secret (see `verify`)."""


def parse_secret(value: str | None, *, env_name: str) -> bytes:
    """The HMAC key a `whsec_…` secret stands for; NotifySecretError naming `env_name` when it is none.

    The message never repeats the value: it is a secret.
    """
    if value is None or not value.strip():
        raise NotifySecretError(f"secret_env {env_name}: the environment variable is not set (or is empty)")
    if not value.startswith(SECRET_PREFIX):
        raise NotifySecretError(f"secret_env {env_name}: the value does not start with {SECRET_PREFIX}")
    encoded = value[len(SECRET_PREFIX) :].strip()
    try:
        # Padding is optional in secrets as services print them (the standardwebhooks package pads them too).
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise NotifySecretError(f"secret_env {env_name}: the part after {SECRET_PREFIX} is not base64") from exc
    if len(key) < MIN_SECRET_BYTES:
        raise NotifySecretError(
            f"secret_env {env_name}: the secret holds {len(key)} bytes; Standard Webhooks asks for at least "
            f"{MIN_SECRET_BYTES} (e.g. {SECRET_PREFIX} + the base64 of 32 random bytes)"
        )
    return key


def webhook_id(change_key: str) -> str:
    """The webhook-id of one delivery: derived from the action's exactly-once key, so every retry repeats it."""
    return "msg_" + hashlib.sha256(change_key.encode("utf-8")).hexdigest()[:32]


def signature(key: bytes, msg_id: str, timestamp_s: int, body: bytes) -> str:
    """`v1,` + the base64 HMAC-SHA256 of `id.timestamp.body` under `key`."""
    signed = f"{msg_id}.{timestamp_s}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")


def webhook_headers(msg_id: str, timestamp_s: int, body: bytes, key: bytes | None) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt: id and timestamp always, the signature when there is a key."""
    headers = {ID_HEADER: msg_id, TIMESTAMP_HEADER: str(timestamp_s)}
    if key is not None:
        headers[SIGNATURE_HEADER] = signature(key, msg_id, timestamp_s, body)
    return headers


def verify(
    key: bytes, body: bytes, headers: Mapping[str, str], *, now_s: float, tolerance_s: float = TOLERANCE_S
) -> str:
    """Check a received delivery as a Standard Webhooks receiver does; its webhook-id, or SignatureMismatchError.

    Any of the space-separated `v1,` signatures may match (a sender rotating secrets sends several).
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id, stamp, signatures = (lowered.get(h) for h in (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER))
    if not (msg_id and stamp and signatures):
        raise SignatureMismatchError("a webhook-id, webhook-timestamp or webhook-signature header is missing")
    try:
        timestamp_s = int(stamp)
    except ValueError as exc:
        raise SignatureMismatchError("webhook-timestamp is not whole epoch seconds") from exc
    if abs(now_s - timestamp_s) > tolerance_s:
        raise SignatureMismatchError(f"webhook-timestamp is more than {tolerance_s:.0f} s away from now")
    expected = signature(key, msg_id, timestamp_s, body).encode()
    offered = [given.encode("utf-8", "replace") for given in signatures.split(" ") if given.startswith("v1,")]
    if not any(hmac.compare_digest(expected, given) for given in offered):
        raise SignatureMismatchError("no v1 signature matches")
    return msg_id
