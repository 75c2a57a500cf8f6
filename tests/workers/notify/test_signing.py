"""Notify signing: Standard Webhooks headers that the standardwebhooks package verifies, and secrets checked."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from workers.errors import ActionNotApplicableError, NotifySecretError
from workers.notify.signing import (
    SignatureMismatchError,
    parse_secret,
    signature,
    verify,
    webhook_headers,
    webhook_id,
)

KEY = bytes(range(32))
SECRET = "whsec_" + base64.b64encode(KEY).decode()
BODY = b'{"type":"crmflow.change","text":"\xc3\xa9t\xc3\xa9"}'


def test_the_standardwebhooks_package_verifies_our_headers() -> None:
    now_s = int(time.time())

    headers = webhook_headers("msg_1", now_s, BODY, parse_secret(SECRET, env_name="X"))

    assert Webhook(SECRET).verify(BODY, headers) == {"type": "crmflow.change", "text": "été"}
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-timestamp"] == str(now_s)


def test_the_signature_is_the_specified_hmac() -> None:
    # The Standard Webhooks specification's own example: its secret, id, timestamp, payload and signature.
    key = parse_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", env_name="X")
    body = b'{"test": 2432232314}'

    assert signature(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == (
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_a_tampered_body_or_another_secret_fails_the_package_too() -> None:
    headers = webhook_headers("msg_1", int(time.time()), BODY, KEY)

    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(BODY + b" ", headers)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + base64.b64encode(bytes(32)).decode()).verify(BODY, headers)


def test_without_a_key_the_id_and_timestamp_are_sent_unsigned() -> None:
    assert webhook_headers("msg_1", 1700000000, BODY, None) == {
        "webhook-id": "msg_1",
        "webhook-timestamp": "1700000000",
    }


def test_verify_accepts_what_the_package_signs() -> None:
    now_s = int(time.time())
    signed = Webhook(SECRET).sign("msg_2", datetime.fromtimestamp(now_s, UTC), BODY.decode())
    headers = {"Webhook-Id": "msg_2", "Webhook-Timestamp": str(now_s), "Webhook-Signature": f"v1,bad= {signed}"}

    assert verify(KEY, BODY, headers, now_s=now_s) == "msg_2"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"webhook-signature": "v1,AAAA"}, "no v1 signature matches"),
        ({"webhook-timestamp": "1000"}, "away from now"),
        ({"webhook-timestamp": "soon"}, "not whole epoch seconds"),
        ({"webhook-id": ""}, "missing"),
    ],
)
def test_verify_refuses_what_a_receiver_must_refuse(change: dict[str, str], problem: str) -> None:
    now_s = int(time.time())
    headers = webhook_headers("msg_1", now_s, BODY, KEY) | change

    with pytest.raises(SignatureMismatchError, match=problem):
        verify(KEY, BODY, headers, now_s=now_s)


def test_the_webhook_id_is_fixed_by_the_change_key() -> None:
    first = webhook_id("crmflow:ledger:abc")

    assert first == webhook_id("crmflow:ledger:abc") != webhook_id("crmflow:ledger:abd")
    assert first.startswith("msg_") and len(first) == 36 and "." not in first


def test_a_padded_or_unpadded_secret_gives_the_same_key() -> None:
    unpadded = "whsec_" + base64.b64encode(bytes(range(31))).decode().rstrip("=")

    assert parse_secret(unpadded, env_name="X") == bytes(range(31))
    assert parse_secret(SECRET, env_name="X") == KEY


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (None, "CRMFLOW_NOTIFY_SECRET: the environment variable is not set"),
        ("  ", "CRMFLOW_NOTIFY_SECRET: the environment variable is not set"),
        (base64.b64encode(KEY).decode(), "CRMFLOW_NOTIFY_SECRET: the value does not start with whsec_"),
        ("whsec_not base64!", "CRMFLOW_NOTIFY_SECRET: the part after whsec_ is not base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "holds 5 bytes; Standard Webhooks asks for at least 24"),
    ],
)
def test_a_bad_secret_is_a_final_error_naming_the_variable(value: str | None, problem: str) -> None:
    with pytest.raises(NotifySecretError, match=problem) as raised:
        parse_secret(value, env_name="CRMFLOW_NOTIFY_SECRET")

    assert isinstance(raised.value, ActionNotApplicableError)  # a dead letter, not a retry
    if value and value.strip():
        assert value not in str(raised.value)
