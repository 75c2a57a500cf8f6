"""GET /openapi.json, and schemathesis run against the receiver in-process with real Redis: no 5xx, no answer
outside the document, valid payloads accepted once authenticated, invalid ones refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import schemathesis
from arq.connections import ArqRedis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import CheckFunction
from schemathesis.core.parameters import ParameterLocation

from receiver.app import create_app
from receiver.config import ReceiverConfig
from receiver.openapi import openapi_document
from receiver.payloads.hubspot import HubSpotBatch
from receiver.payloads.zoho import ZohoNotification

TOKEN = "zoho-TOKEN-7c1f0e9a"
SECRET = "hubspot-SECRET-52d8b3a4"
PUBLIC = "https://crmflow.example.com"
CONFIG = ReceiverConfig.model_validate(
    {"ZOHO_NOTIFY_TOKEN": TOKEN, "HUBSPOT_CLIENT_SECRET": SECRET, "PUBLIC_BASE_URL": PUBLIC}
)
SCHEMA = schemathesis.openapi.from_dict(openapi_document(CONFIG))
BASE_URL = "http://receiver"

# Checks that judge one answer without sending anything else (the others re-send through schemathesis' transport).
CHECKS: list[CheckFunction] = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.negative_data_rejection,
]
POSITIVE = SCHEMA.as_strategy(GenerationMode.POSITIVE)
NEGATIVE = SCHEMA.as_strategy(GenerationMode.NEGATIVE)


@pytest.fixture
async def client(redis: ArqRedis) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(CONFIG, redis=redis)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as http:
        yield http


def _signed(path: str, body: bytes) -> dict[str, str]:
    timestamp = str(int(time.time() * 1000))
    message = b"POST" + (PUBLIC + path).encode() + body + timestamp.encode()
    signature = base64.b64encode(hmac.new(SECRET.encode(), message, hashlib.sha256).digest()).decode()
    return {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": timestamp}


def integral(value: Any) -> Any:
    """`value` with every integer-valued float written as an integer, as Zoho and HubSpot write them.

    JSON Schema counts 12.0 as an integer, so schemathesis sends it for integer fields; the receiver refuses it for
    ids (a 19-digit id is not exact as a float), as the document says.
    """
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, list):
        return [integral(item) for item in value]
    if isinstance(value, dict):
        return {key: integral(item) for key, item in value.items()}
    return value


def authenticated(case: Case[Any]) -> bool:
    """Whether valid credentials can be added without undoing what a negative case negates.

    Positive cases, and HubSpot cases whose only invalid part is the body (then the signature covers the invalid
    body, which must be refused with 400 or 422). Zoho's token is in the body, so its negative cases stay as drawn.
    """
    meta = case.meta
    if meta is None or meta.generation.mode.is_positive:
        return True
    return case.path == "/webhooks/hubspot" and not meta.is_negative_at(ParameterLocation.HEADER)


def request_for(case: Case[Any], authenticate: bool) -> dict[str, Any]:
    """What schemathesis would send, as httpx arguments; with `authenticate` (when `authenticated(case)`), Zoho's
    token or HubSpot's signature is made valid so that the request reaches validation and the queue."""
    kwargs = case.as_transport_kwargs(base_url=BASE_URL)
    headers = dict(kwargs["headers"])
    body = kwargs.get("json", kwargs.get("data"))
    positive = case.meta is None or case.meta.generation.mode.is_positive
    if authenticate and positive:
        body = integral(body)
        if case.path == "/webhooks/zoho" and isinstance(body, dict):
            body = body | {"token": TOKEN}
    content = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
    if authenticate and case.path == "/webhooks/hubspot":
        headers |= _signed(case.path, content or b"")
    return {"method": kwargs["method"], "url": kwargs["url"], "headers": headers, "content": content}


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(case=st.one_of(POSITIVE, NEGATIVE), authenticate=st.booleans())
async def test_schemathesis_finds_no_server_error_and_no_undocumented_answer(
    client: httpx.AsyncClient, case: Case[Any], authenticate: bool
) -> None:
    authenticate = authenticate and authenticated(case)
    response = await client.request(**request_for(case, authenticate))

    checks = list(CHECKS)
    # Only an authenticated request can be accepted: then everything the document calls valid must be (200).
    if authenticate and case.meta is not None and case.meta.generation.mode.is_positive:
        checks.append(schemathesis.checks.positive_data_acceptance)
    case.validate_response(response, checks=checks)


async def test_the_document_is_served_and_names_the_payload_models(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")

    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    schemas = document["components"]["schemas"]
    assert schemas["ZohoNotification"]["required"] == ZohoNotification.model_json_schema()["required"]
    assert schemas["HubSpotBatch"]["maxItems"] == HubSpotBatch.model_json_schema()["maxItems"]
    zoho = document["paths"]["/webhooks/zoho"]["post"]
    hubspot = document["paths"]["/webhooks/hubspot"]["post"]
    assert zoho["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ZohoNotification"
    }
    assert hubspot["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/HubSpotBatch"
    }
    for operation in (zoho, hubspot):
        assert {"200", "400", "401", "408", "413", "415", "422", "431", "503"} <= set(operation["responses"])
    assert {p["name"] for p in hubspot["parameters"] if p["required"]} == {
        "X-HubSpot-Signature-v3",
        "X-HubSpot-Request-Timestamp",
    }
    assert "ZOHO_NOTIFY_TOKEN" in schemas["ZohoNotification"]["properties"]["token"]["description"]
    assert TOKEN not in response.text and SECRET not in response.text


async def test_the_document_lists_only_configured_sources(redis: ArqRedis) -> None:
    app = create_app(ReceiverConfig.model_validate({"ZOHO_NOTIFY_TOKEN": TOKEN}), redis=redis)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as http:
        paths = (await http.get("/openapi.json")).json()["paths"]

    assert "/webhooks/zoho" in paths
    assert "/webhooks/hubspot" not in paths
