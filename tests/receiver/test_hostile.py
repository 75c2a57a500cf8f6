"""Hostile input against both webhook routes (hypothesis, real Redis): every refusal is a 4xx with a JSON
{"error", "detail"}, never a 5xx; nothing reaches Redis without valid credentials; no secret is ever echoed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import orjson
import pytest
from arq.connections import ArqRedis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from receiver.app import create_app
from receiver.config import ReceiverConfig
from receiver.receive import MAX_DEPTH
from tests.conftest import sample
from workers import keys
from workers.contract import QUEUE_NAME

# Distinctive, so that finding them anywhere is never a coincidence.
TOKEN = "zoho-TOKEN-d41d8cd98f00b204"
SECRET = "hubspot-SECRET-9e107d9d372bb682"
PUBLIC = "https://crmflow.example.com"
CAP = 64 * 1024
CHANNEL = "1000000068001"
CONFIG = ReceiverConfig.model_validate(
    {
        "ZOHO_NOTIFY_TOKEN": TOKEN,
        "ZOHO_CHANNEL_IDS": f"42,{CHANNEL}",
        "HUBSPOT_CLIENT_SECRET": SECRET,
        "PUBLIC_BASE_URL": PUBLIC,
        "RECEIVER_MAX_BODY_BYTES": CAP,
    }
)

settings.register_profile(
    "crmflow-hostile",
    # CRMFLOW_HOSTILE_EXAMPLES=2000 for a soak; the default keeps this module at a few seconds.
    max_examples=int(os.environ.get("CRMFLOW_HOSTILE_EXAMPLES", "60")),
    deadline=None,
    database=None,
    print_blob=True,
    # The Redis and client fixtures are shared by the examples of a test on purpose (the queue must stay empty).
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
HOSTILE = settings.get_profile("crmflow-hostile")

ZOHO_SAMPLE: dict[str, Any] = sample("zoho/appointment_update") | {"token": TOKEN}
HUBSPOT_SAMPLE: list[dict[str, Any]] = sample("hubspot/appointment_reschedule")
REFUSALS = {400, 401, 408, 413, 415, 422, 431}


@pytest.fixture
async def client(redis: ArqRedis) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(CONFIG, redis=redis)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://receiver") as http:
        yield http


# --- strategies -------------------------------------------------------------------------------------------------

# Integers well past 64 bits, floats past a double, strings with every code point JSON can carry.
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63) - 1, 10**30]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
# Numbers as JSON text that no Python value round-trips to: out of a double's range, or huge integers.
ORDINARY_NUMBERS = {"-0", "1E+2", "1.5e-400"}  # 0, 100.0 and (underflowing) 0.0
number_texts = st.sampled_from(["1e400", "-1e400", "1" + "0" * 400, "1" + "0" * 5000, *sorted(ORDINARY_NUMBERS)])
encodings = st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "latin-1", "cp1252"])
json_content_types = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "APPLICATION/JSON;charset=UTF-16",
        "application/vnd.api+json",
        'application/json; charset="latin-1"',
    ]
)
other_content_types = st.one_of(
    st.sampled_from(["", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data", "json", "*/*"]),
    st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=60).filter(
        lambda value: "json" not in value.lower()
    ),
)
header_names = st.from_regex(r"\A[a-z][a-z0-9-]{0,24}\Z").filter(
    lambda name: name not in {"content-type", "content-length", "transfer-encoding", "host", "connection"}
)
header_values = st.binary(max_size=200).map(lambda raw: bytes(byte for byte in raw if byte >= 32 and byte != 127))
extra_headers = st.lists(st.tuples(header_names.map(str.encode), header_values), max_size=6)


def json_text(value: Any) -> bytes:
    """JSON as Python writes it: any integer, NaN and Infinity included (orjson refuses to write those)."""
    return json.dumps(value).encode()


@st.composite
def hostile_bodies(draw: st.DrawFn) -> bytes:
    """Random bytes, random JSON, JSON in another encoding, duplicate keys, deep nesting, wild numbers."""
    kind = draw(st.sampled_from(["bytes", "json", "encoded", "duplicates", "deep", "number", "big"]))
    if kind == "bytes":
        return draw(st.binary(max_size=512))
    if kind == "json":
        return json_text(draw(json_values))
    if kind == "encoded":
        payload = draw(json_values) if draw(st.booleans()) else ZOHO_SAMPLE | {"token": "wrong", "note": "café ☕"}
        text = json.dumps(payload, ensure_ascii=False)
        return text.encode(draw(encodings), errors="replace")
    if kind == "duplicates":
        pairs = draw(st.lists(st.tuples(st.sampled_from(["token", "ids", "a"]), json_values), min_size=2, max_size=6))
        return b"{" + b",".join(json_text(key) + b":" + json_text(value) for key, value in pairs) + b"}"
    if kind == "deep":
        depth = draw(st.integers(min_value=MAX_DEPTH - 2, max_value=3000))
        return b'{"a":' * depth + b"1" + b"}" * depth if draw(st.booleans()) else b"[" * depth + b"]" * depth
    if kind == "number":
        return b'{"server_time": ' + draw(number_texts).encode() + b', "token": "x"}'
    return b'{"pad": "' + b"x" * draw(st.integers(min_value=CAP - 32, max_value=CAP + 32)) + b'"}'


# --- assertions -------------------------------------------------------------------------------------------------


def assert_clean(response: httpx.Response) -> None:
    """Neither secret appears in the answer, in any case, in its body or its headers."""
    seen = (response.text + repr(response.headers.raw)).lower()
    assert TOKEN.lower() not in seen
    assert SECRET.lower() not in seen


def assert_refusal(response: httpx.Response, statuses: set[int] = REFUSALS) -> dict[str, Any]:
    """A 4xx (one of `statuses`) whose JSON body has a string `error` and a non-empty `detail`."""
    assert response.status_code in statuses, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert isinstance(body["error"], str)
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert set(body) <= {"error", "detail", "errors"}
    assert_clean(response)
    return body


async def assert_untouched(redis: ArqRedis) -> None:
    """Nothing was written to Redis but the record of refusals (receiver/rejections.py): no job on
    crmflow:queue, no job key, no dedupe key."""
    assert await redis.zcard(QUEUE_NAME) == 0
    refusals = {keys.webhook_rejections(source).encode() for source in ("zoho", "hubspot")}
    assert set(await redis.keys("*")) <= refusals


def signed(path: str, body: bytes, *, secret: str = SECRET, age_ms: int = 0) -> dict[str, str]:
    timestamp = str(int(time.time() * 1000) - age_ms)
    message = b"POST" + (PUBLIC + path).encode() + body + timestamp.encode()
    signature = base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()
    return {"x-hubspot-signature-v3": signature, "x-hubspot-request-timestamp": timestamp}


async def post(
    client: httpx.AsyncClient,
    path: str,
    body: bytes,
    content_type: str | None = "application/json",
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> httpx.Response:
    raw = list(headers) if content_type is None else [(b"content-type", content_type.encode("latin-1")), *headers]
    return await client.post(path, content=body, headers=raw)


# --- Zoho -------------------------------------------------------------------------------------------------------


@HOSTILE
@given(body=hostile_bodies(), content_type=json_content_types | other_content_types, headers=extra_headers)
async def test_zoho_refuses_anything_without_the_token(
    client: httpx.AsyncClient, redis: ArqRedis, body: bytes, content_type: str, headers: list[tuple[bytes, bytes]]
) -> None:
    response = await post(client, "/webhooks/zoho", body, content_type, headers)

    assert_refusal(response)
    await assert_untouched(redis)


@HOSTILE
@given(field=st.sampled_from(sorted(ZOHO_SAMPLE)), value=json_values, extra=json_values)
async def test_zoho_with_the_token_answers_200_or_a_refusal_never_5xx(
    client: httpx.AsyncClient, field: str, value: Any, extra: Any
) -> None:
    payload = ZOHO_SAMPLE | {field: value, "extra": extra, "token": TOKEN}

    response = await post(client, "/webhooks/zoho", json_text(payload))

    if response.status_code == 200:
        assert set(response.json()) == {"status", "queued", "duplicates", "ignored"}
        assert_clean(response)
    else:
        assert_refusal(response, {400, 401, 422})  # 401: a channel_id not in ZOHO_CHANNEL_IDS


@HOSTILE
@given(number=number_texts, field=st.sampled_from(["server_time", "channel_id", "ids"]))
async def test_zoho_numbers_out_of_range_are_4xx(client: httpx.AsyncClient, number: str, field: str) -> None:
    text = number if field != "ids" else f"[{number}]"
    body = json_text(ZOHO_SAMPLE | {field: "@@", "token": TOKEN}).replace(b'"@@"', text.encode())

    response = await post(client, "/webhooks/zoho", body)

    if number in ORDINARY_NUMBERS and response.status_code == 200:
        return  # e.g. a server_time of 0 or 100.0; an id or channel of 0 or 100.0 is refused (401 or 422)
    assert_refusal(response, {400, 401, 422})


@pytest.mark.parametrize(
    ("text", "status", "field"),
    [
        (str(2**63), 422, "server_time"),
        (str(2**64), 422, "server_time"),  # orjson reads integers past 64 bits as floats
        (str(-(2**63) - 1), 422, "server_time"),
        ("1e400", 400, None),
        ("1" + "0" * 5000, 400, None),
    ],
)
async def test_zoho_server_time_out_of_range(
    client: httpx.AsyncClient, redis: ArqRedis, text: str, status: int, field: str | None
) -> None:
    body = json_text(ZOHO_SAMPLE | {"server_time": "@@"}).replace(b'"@@"', text.encode())

    response = await post(client, "/webhooks/zoho", body)

    refusal = assert_refusal(response, {status})
    if field is not None:
        assert field in {error["field"] for error in refusal["errors"]}
    assert await redis.zcard(QUEUE_NAME) == 0


def with_keys(pairs: Sequence[tuple[str, Any]]) -> bytes:
    """A JSON object written with its keys in this order, repeated keys included."""
    return b"{" + b",".join(json_text(key) + b":" + json_text(value) for key, value in pairs) + b"}"


@HOSTILE
@given(tokens=st.lists(st.sampled_from([TOKEN, TOKEN.upper(), TOKEN + " ", "wrong", None]), min_size=2, max_size=4))
async def test_zoho_duplicate_token_keys_the_last_one_decides(
    client: httpx.AsyncClient, redis: ArqRedis, tokens: list[str | None]
) -> None:
    # orjson keeps the last value of a repeated key; the token check and the job read that same parsed object.
    await redis.flushdb()
    fields = [(key, value) for key, value in ZOHO_SAMPLE.items() if key != "token"]
    body = with_keys([("token", tokens[0]), *fields, *(("token", token) for token in tokens[1:])])

    response = await post(client, "/webhooks/zoho", body)

    if tokens[-1] == TOKEN:
        assert response.json()["queued"] == 1
    else:
        assert_refusal(response, {401})
        await assert_untouched(redis)


@pytest.mark.parametrize(("first", "last", "status"), [("7", CHANNEL, 200), (CHANNEL, "7", 401)])
async def test_zoho_duplicate_channel_keys_the_job_carries_the_checked_one(
    client: httpx.AsyncClient, redis: ArqRedis, first: str, last: str, status: int
) -> None:
    fields = [(key, value) for key, value in ZOHO_SAMPLE.items() if key != "channel_id"]
    body = with_keys([("channel_id", first), *fields, ("channel_id", last)])

    response = await post(client, "/webhooks/zoho", body)

    assert response.status_code == status
    jobs = await redis.queued_jobs(queue_name=QUEUE_NAME)
    assert [job.args[0]["channel_id"] for job in jobs] == ([CHANNEL] if status == 200 else [])


# --- HubSpot ----------------------------------------------------------------------------------------------------

timestamps = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.just("9" * 5000),
    st.text(max_size=30),
    st.builds(lambda age: str(int(time.time() * 1000) - age), st.sampled_from([301_000, -61_000, 10**12])),
)
# Events with any of the sample's keys, each either as in the sample or any JSON value.
event_like = st.fixed_dictionaries(
    {}, optional={key: st.just(value) | json_values for key, value in HUBSPOT_SAMPLE[0].items()}
)
signatures = st.one_of(
    st.text(max_size=60), st.binary(min_size=32, max_size=32).map(lambda b: base64.b64encode(b).decode())
)


@HOSTILE
@given(
    body=hostile_bodies(),
    content_type=json_content_types,
    v3=st.none() | signatures,
    timestamp=st.none() | timestamps,
    legacy=st.none() | st.text(max_size=70),
    version=st.none() | st.sampled_from(["v1", "v2", "V1", "v3", SECRET]),
    headers=extra_headers,
)
async def test_hubspot_refuses_anything_not_signed_with_the_secret(
    client: httpx.AsyncClient,
    redis: ArqRedis,
    body: bytes,
    content_type: str,
    v3: str | None,
    timestamp: str | None,
    legacy: str | None,
    version: str | None,
    headers: list[tuple[bytes, bytes]],
) -> None:
    named = {
        b"x-hubspot-signature-v3": v3,
        b"x-hubspot-request-timestamp": timestamp,
        b"x-hubspot-signature": legacy,
        b"x-hubspot-signature-version": version,
    }
    signature_headers = [(name, value.encode("utf-8")) for name, value in named.items() if value is not None]

    response = await post(client, "/webhooks/hubspot", body, content_type, [*signature_headers, *headers])

    assert_refusal(response, {400, 401, 413, 415})
    await assert_untouched(redis)


@HOSTILE
@given(body=hostile_bodies() | st.lists(event_like, max_size=3).map(json_text))
async def test_hubspot_signed_hostile_bodies_are_200_or_a_refusal_never_5xx(
    client: httpx.AsyncClient, body: bytes
) -> None:
    response = await post(client, "/webhooks/hubspot", body, headers=_raw(signed("/webhooks/hubspot", body)))

    if response.status_code == 200:
        assert set(response.json()) == {"status", "queued", "duplicates", "ignored"}
        assert_clean(response)
    else:
        assert_refusal(response, {400, 413, 422})


@HOSTILE
@given(position=st.integers(min_value=0), byte=st.integers(min_value=0, max_value=255))
async def test_hubspot_any_altered_byte_is_401(
    client: httpx.AsyncClient, redis: ArqRedis, position: int, byte: int
) -> None:
    body = bytearray(orjson.dumps(HUBSPOT_SAMPLE))
    headers = signed("/webhooks/hubspot", bytes(body))
    index = position % len(body)
    body[index] = byte if byte != body[index] else (byte + 1) % 256

    response = await post(client, "/webhooks/hubspot", bytes(body), headers=_raw(headers))

    assert_refusal(response, {401})
    await assert_untouched(redis)


def _raw(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.encode(), value.encode()) for name, value in headers.items()]


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"objectId": 2**63}, 422),
        ({"occurredAt": 2**64 - 1}, 422),
        ({"eventId": 12.0}, 422),
        ({"propertyValue": 2**70}, 200),  # not a field crmflow reads: accepted (as a float, by orjson)
    ],
)
async def test_hubspot_numbers_out_of_range(
    client: httpx.AsyncClient, redis: ArqRedis, change: dict[str, Any], status: int
) -> None:
    body = json_text([HUBSPOT_SAMPLE[0] | change])

    response = await post(client, "/webhooks/hubspot", body, headers=_raw(signed("/webhooks/hubspot", body)))

    if status == 200:
        assert response.status_code == 200
    else:
        assert_refusal(response, {status})
        assert await redis.zcard(QUEUE_NAME) == 0


# --- both routes ------------------------------------------------------------------------------------------------


async def authenticated_post(client: httpx.AsyncClient, path: str, body: bytes) -> httpx.Response:
    headers = _raw(signed(path, body)) if path == "/webhooks/hubspot" else []
    return await post(client, path, body, headers=headers)


def nested(depth: int, path: str) -> bytes:
    """A valid payload whose deepest value sits `depth` levels down (the payload's own levels included)."""
    if path == "/webhooks/zoho":  # body → affected_values → [0] → values → "X"
        inner = depth - 4
        body = json_text(ZOHO_SAMPLE | {"affected_values": [{"record_id": "1", "values": {"X": "@@"}}]})
    else:  # batch → [0] → propertyValue
        inner = depth - 2
        body = json_text([HUBSPOT_SAMPLE[0] | {"propertyValue": "@@"}])
    return body.replace(b'"@@"', b"[" * inner + b"]" * inner)


@pytest.mark.parametrize("path", ["/webhooks/zoho", "/webhooks/hubspot"])
@pytest.mark.parametrize(
    ("depth", "status"), [(MAX_DEPTH, 200), (MAX_DEPTH + 1, 400), (1024, 400), (1025, 400), (40_000, 413)]
)
async def test_nesting_depth(client: httpx.AsyncClient, path: str, depth: int, status: int) -> None:
    response = await authenticated_post(client, path, nested(depth, path))

    if status == 200:
        assert response.status_code == 200
    else:
        refusal = assert_refusal(response, {status})
        if status == 400:
            assert refusal == {"error": "malformed_json", "detail": f"body nests deeper than {MAX_DEPTH} levels"}


@pytest.mark.parametrize("path", ["/webhooks/zoho", "/webhooks/hubspot"])
@pytest.mark.parametrize(
    ("encoding", "detail"),
    [
        ("utf-8-sig", "body starts with a UTF-8 byte order mark; send UTF-8 JSON without one"),
        ("utf-16", "body is UTF-16 or UTF-32; JSON must be sent as UTF-8"),
        ("utf-16-le", "body is UTF-16 or UTF-32; JSON must be sent as UTF-8"),
        ("utf-32-be", "body is UTF-16 or UTF-32; JSON must be sent as UTF-8"),
        ("latin-1", "body is not valid UTF-8 (byte "),
    ],
)
async def test_bodies_not_in_utf8_are_400(client: httpx.AsyncClient, path: str, encoding: str, detail: str) -> None:
    payload: Any = ZOHO_SAMPLE | {"note": "café"} if path == "/webhooks/zoho" else [HUBSPOT_SAMPLE[0] | {"x": "café"}]

    response = await authenticated_post(client, path, json.dumps(payload, ensure_ascii=False).encode(encoding))

    refusal = assert_refusal(response, {400})
    assert refusal["error"] == "malformed_json"
    assert refusal["detail"].startswith(detail)


@pytest.mark.parametrize("path", ["/webhooks/zoho", "/webhooks/hubspot"])
@HOSTILE
@given(content_type=other_content_types)
async def test_content_types_other_than_json_are_415(
    client: httpx.AsyncClient, redis: ArqRedis, path: str, content_type: str
) -> None:
    body = json_text(ZOHO_SAMPLE) if path == "/webhooks/zoho" else json_text(HUBSPOT_SAMPLE)

    response = await post(client, path, body, content_type, _raw(signed(path, body)))

    assert assert_refusal(response, {415})["error"] == "unsupported_media_type"
    await assert_untouched(redis)


@pytest.mark.parametrize("path", ["/webhooks/zoho", "/webhooks/hubspot"])
@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset=utf-8",
        "Application/JSON;charset=UTF-8",
        'application/json; charset="utf-8"',
        "application/vnd.crm+json",
        "application/json; charset=utf-16",  # ignored, as RFC 8259 says: the body is UTF-8, so it is read as such
    ],
)
async def test_json_content_types_with_parameters_are_accepted(
    client: httpx.AsyncClient, path: str, content_type: str
) -> None:
    body = json_text(ZOHO_SAMPLE) if path == "/webhooks/zoho" else json_text(HUBSPOT_SAMPLE)

    response = await post(client, path, body, content_type, _raw(signed(path, body)))

    assert response.status_code == 200


@pytest.mark.parametrize("path", ["/webhooks/zoho", "/webhooks/hubspot"])
@pytest.mark.parametrize(
    "content_types",
    [["application/json", "application/json"], ["application/json", "text/plain"], ["text/plain", "application/json"]],
)
async def test_more_than_one_content_type_is_415(
    client: httpx.AsyncClient, redis: ArqRedis, path: str, content_types: list[str]
) -> None:
    body = json_text(ZOHO_SAMPLE) if path == "/webhooks/zoho" else json_text(HUBSPOT_SAMPLE)
    headers = [(b"content-type", value.encode()) for value in content_types] + _raw(signed(path, body))

    response = await post(client, path, body, None, headers)

    assert assert_refusal(response, {415})["detail"] == "2 Content-Type headers; send exactly one"
    await assert_untouched(redis)


@pytest.mark.parametrize("path", ["/webhooks/zoho", "/webhooks/hubspot"])
@pytest.mark.parametrize(
    ("header", "status", "error"),
    [
        ((b"x-padding", b"a" * 17_000), 431, "headers_too_large"),
        ((b"x-hubspot-request-timestamp", b"9" * 5000), None, None),  # HubSpot: 401, Zoho: ignored
        ((b"content-length", b"9" * 5000), 413, "payload_too_large"),
        ((b"content-length", "١٢".encode()), 400, "malformed_json"),  # Arabic-Indic digits: int() would take them
        ((b"content-length", b"-1"), 400, "malformed_json"),
        ((b"content-length", b"3"), 400, "malformed_request"),  # shorter than the body: a truncated request
    ],
)
async def test_hostile_headers_are_4xx(
    client: httpx.AsyncClient,
    redis: ArqRedis,
    path: str,
    header: tuple[bytes, bytes],
    status: int | None,
    error: str | None,
) -> None:
    body = json_text(ZOHO_SAMPLE | {"token": "wrong"}) if path == "/webhooks/zoho" else json_text(HUBSPOT_SAMPLE)
    # HubSpot's requests are signed correctly: the hostile header alone decides (it replaces a same-named one).
    valid = _raw(signed(path, body)) if path == "/webhooks/hubspot" else []
    headers = [header, *(pair for pair in valid if pair[0] != header[0])]

    response = await post(client, path, body, headers=headers)

    refusal = assert_refusal(response, {status or 401})
    if error is not None:
        assert refusal["error"] == error
    await assert_untouched(redis)


@pytest.mark.parametrize("path", ["/webhooks/zoho", "/webhooks/hubspot"])
@HOSTILE
@given(size=st.integers(min_value=CAP - 8, max_value=CAP + 8), declared=st.booleans())
async def test_size_cap_exactly(
    client: httpx.AsyncClient, redis: ArqRedis, path: str, size: int, declared: bool
) -> None:
    body = b"[" + b" " * (size - 2) + b"]"

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, size, 4096):
            yield body[start : start + 4096]

    content: bytes | AsyncIterator[bytes] = body if declared else chunks()
    response = await client.post(path, content=content, headers={"content-type": "application/json"})

    assert_refusal(response, {413} if size > CAP else {400, 401})
    await assert_untouched(redis)


@HOSTILE
@given(
    method=st.sampled_from(["GET", "PUT", "PATCH", "DELETE", "OPTIONS", "POST"]),
    path=st.sampled_from(["/webhooks/zoho", "/webhooks/hubspot", "/healthz"])
    | st.from_regex(r"\A(/[a-z0-9._-]{1,12}){1,3}\Z"),
)
async def test_wrong_methods_and_unknown_paths_are_json_4xx(
    client: httpx.AsyncClient, redis: ArqRedis, method: str, path: str
) -> None:
    response = await client.request(method, path, content=b"{}", headers={"content-type": "application/json"})

    if response.status_code < 400:  # e.g. GET /healthz, POST of an empty object to a webhook is 401
        return
    body = assert_refusal(response, {401, 404, 405})
    if response.status_code == 405:
        assert body["error"] == "method_not_allowed"
        assert response.headers["allow"]
    await assert_untouched(redis)


# --- secrets in logs --------------------------------------------------------------------------------------------


async def test_secrets_never_reach_the_logs_or_the_answers(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    zoho = "/webhooks/zoho"
    hubspot = "/webhooks/hubspot"
    batch = json_text(HUBSPOT_SAMPLE)
    attempts = [
        # Valid requests: the token travels in the body; the secret signs.
        await post(client, zoho, json_text(ZOHO_SAMPLE | {"token": TOKEN})),
        await authenticated_post(client, hubspot, batch),
        # Refusals whose messages quote what was sent, with the secrets put exactly there.
        await post(client, zoho, json_text(ZOHO_SAMPLE | {"token": TOKEN}), f"application/{TOKEN}"),
        await post(client, hubspot, batch, f"text/{SECRET.upper()}", _raw(signed(hubspot, batch))),
        await post(client, zoho, json_text(ZOHO_SAMPLE | {"token": TOKEN, "affected_fields": [{TOKEN: ["x"]}]})),
        await post(client, zoho, json_text(ZOHO_SAMPLE | {"token": TOKEN, "affected_fields": [{SECRET: ["x"]}]})),
        await post(client, zoho, json_text(ZOHO_SAMPLE | {"token": TOKEN + "x"})),
        await post(client, zoho, json_text(ZOHO_SAMPLE | {"token": TOKEN, "ids": [TOKEN]})),
        await post(client, hubspot, batch, headers=[(b"x-hubspot-signature", SECRET.encode())]),
        await post(client, hubspot, batch, headers=_raw(signed(hubspot, batch, secret=TOKEN))),
        await post(client, hubspot, json_text([{"eventId": SECRET}]), headers=_raw(signed(hubspot, b"[]"))),
        await authenticated_post(client, hubspot, json_text([HUBSPOT_SAMPLE[0] | {"propertyName": SECRET}])),
        await authenticated_post(client, hubspot, json_text([HUBSPOT_SAMPLE[0] | {"eventId": SECRET}])),
        await authenticated_post(client, hubspot, b'{"' + SECRET.encode() + b'": ' + b"[" * 2000),
        await post(client, zoho, b'{"token": "' + TOKEN.encode() + b'", "a": \xff}'),
    ]

    assert [response.status_code for response in attempts] == [
        200,
        200,
        415,
        415,
        422,
        422,
        401,
        422,
        401,
        401,
        401,
        200,
        422,
        400,
        400,
    ]
    for response in attempts:
        assert_clean(response)
    logged = "\n".join(record.getMessage() for record in caplog.records).lower() + caplog.text.lower()
    assert "rejected" in logged
    assert TOKEN.lower() not in logged
    assert SECRET.lower() not in logged
