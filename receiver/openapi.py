"""OpenAPI 3.1 document of the receiver, served at GET /openapi.json; request bodies are the payload models. Pure."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from pydantic.json_schema import models_json_schema

from receiver.config import ReceiverConfig
from receiver.payloads.hubspot import HubSpotBatch
from receiver.payloads.zoho import ZohoNotification
from receiver.receive import MAX_DEPTH, MAX_HEADER_BYTES

_REF = "#/components/schemas/{model}"
_JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


_ERROR = {
    "type": "object",
    "description": "Every refusal: a stable `error` code, a `detail` for people, and `errors` for a 422.",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string", "description": "e.g. unauthenticated, malformed_json, invalid_payload"},
        "detail": {"type": "string", "description": "what was wrong; never quotes a secret or a body value"},
        "errors": {
            "type": "array",
            "description": "422 only: one entry per failing field (the submitted values are not repeated)",
            "items": {
                "type": "object",
                "required": ["field", "problem"],
                "properties": {"field": {"type": "string"}, "problem": {"type": "string"}},
            },
        },
    },
}
_COUNT = {"type": "integer", "minimum": 0}
_ACCEPTED = {
    "type": "object",
    "required": ["status", "queued", "duplicates", "ignored"],
    "properties": {"status": {"const": "accepted"}, "queued": _COUNT, "duplicates": _COUNT, "ignored": _COUNT},
}
_SHARED_SCHEMAS: dict[str, Any] = {"Error": _ERROR, "Accepted": _ACCEPTED}
# JSON Schema counts 12.0 as an integer; the receiver does not, for ids: a 19-digit id written as a float is not exact.
_ZOHO_INTEGERS = (
    "An id (`ids`, `channel_id`, `record_id`) given as a number must be a JSON integer: 12.0 is refused (422)."
)
_HUBSPOT_INTEGERS = "Ids and `occurredAt` must be JSON integers: 12.0 or 1.2e1 is refused (422)."


def _json(schema: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": schema}}, **extra}


def _error(description: str, **extra: Any) -> dict[str, Any]:
    return _json(_ref("Error"), description, **extra)


def _webhook_responses(config: ReceiverConfig, unauthenticated: str) -> dict[str, Any]:
    limit = config.max_body_bytes
    return {
        "200": _json(_ref("Accepted"), "Every job was accepted by Redis (or was already queued: `duplicates`)."),
        "400": _error(
            "Not JSON: empty, not UTF-8 (a byte order mark, UTF-16), invalid, or nested deeper than "
            f"{MAX_DEPTH} levels (`malformed_json`); a body that does not match its Content-Length "
            "(`malformed_request`); or the client hung up mid-body (`client_disconnected`)."
        ),
        "401": _error(unauthenticated + " Nothing is queued."),
        "408": _error(f"The body did not arrive within {config.body_timeout_s:g} s (RECEIVER_BODY_TIMEOUT_S)."),
        "413": _error(f"The body is over {limit} bytes (RECEIVER_MAX_BODY_BYTES), declared or streamed."),
        "415": _error("The Content-Type is missing, not application/json (or */*+json), or given twice."),
        "422": _error("Authenticated, but not the sender's payload format; `errors` names each failing field."),
        "431": _error(f"The request headers add up to more than {MAX_HEADER_BYTES} bytes."),
        "503": _error(
            "Redis did not accept the jobs (`queue_unavailable`), or the receiver is serving as many requests as "
            "RECEIVER_MAX_REQUESTS allows (`overloaded`); retry later (as Zoho and HubSpot do).",
            headers={"Retry-After": {"required": True, "schema": {"type": "string"}, "description": "seconds"}},
        ),
    }


def _body(model: str, description: str) -> dict[str, Any]:
    return {"required": True, "description": description, "content": {_JSON: {"schema": _ref(model)}}}


def _zoho(config: ReceiverConfig) -> dict[str, Any]:
    return {
        "operationId": "zohoNotification",
        "summary": "A Zoho CRM Notification API callback",
        "description": (
            "Zoho signs nothing: the body's `token` (set when the watch channel was enabled) is the only proof "
            "of origin and must equal ZOHO_NOTIFY_TOKEN; with ZOHO_CHANNEL_IDS, `channel_id` must be one of them. "
            "Both are checked before the body is validated, on the same parsed object (a key given twice keeps "
            "its last value, for the check and for the job alike). One job per distinct record id. " + _ZOHO_INTEGERS
        ),
        "requestBody": _body("ZohoNotification", "The callback exactly as Zoho sends it."),
        "responses": _webhook_responses(config, "`token` missing or wrong, or `channel_id` not allowed."),
    }


_HUBSPOT_HEADERS = [
    (
        "X-HubSpot-Signature-v3",
        True,
        {"type": "string"},
        "base64(HMAC-SHA256(client secret, method + URI + raw body + timestamp)), the URI being "
        "PUBLIC_BASE_URL + path + query as HubSpot called it. Compared in constant time.",
    ),
    (
        "X-HubSpot-Request-Timestamp",
        True,
        {"type": "string", "pattern": "^[0-9]{1,16}$"},
        "Epoch milliseconds; at most 5 minutes old and 1 minute ahead.",
    ),
    (
        "X-HubSpot-Signature",
        False,
        {"type": "string"},
        "Legacy v1/v2 signature: used only with HUBSPOT_ACCEPT_V1=true and no v3 signature.",
    ),
    (
        "X-HubSpot-Signature-Version",
        False,
        {"type": "string"},
        "Which legacy signature X-HubSpot-Signature holds: v1 (the default) or v2; ignored with a v3 signature.",
    ),
]


def _hubspot(config: ReceiverConfig) -> dict[str, Any]:
    return {
        "operationId": "hubspotWebhookBatch",
        "summary": "A signed batch of HubSpot webhook events",
        "description": (
            "The raw body is authenticated with X-HubSpot-Signature-v3 before it is parsed. Events for "
            "appointments (object type 0-421) coalesce into one job per appointment; other events are counted "
            "under `ignored`; events already queued are counted under `duplicates`. The same route is served "
            "with a trailing slash, which is then part of the signed URI. " + _HUBSPOT_INTEGERS
        ),
        "parameters": [
            {"name": name, "in": "header", "required": required, "schema": schema, "description": description}
            for name, required, schema, description in _HUBSPOT_HEADERS
        ],
        "requestBody": _body("HubSpotBatch", "Up to 100 events, exactly as HubSpot sends them."),
        "responses": _webhook_responses(config, "Signature missing, wrong, or its timestamp out of range."),
    }


def _service_paths() -> dict[str, Any]:
    status = {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}}
    ready = {
        "type": "object",
        "required": ["status", "sources"],
        "properties": {"status": {"const": "ready"}, "sources": {"type": "array", "items": {"type": "string"}}},
    }
    unavailable = {
        "type": "object",
        "required": ["status", "redis"],
        "properties": {"status": {"const": "unavailable"}, "redis": {"type": "string", "description": "the error"}},
    }
    return {
        "/healthz": {"get": {"operationId": "healthz", "responses": {"200": _json(status, "The process answers.")}}},
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "responses": {
                    "200": _json(ready, "Redis took a write (a small key with a TTL) within a second."),
                    "503": _json(unavailable, "Redis did not answer, or refused the write (e.g. maxmemory)."),
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "responses": {
                    "200": {
                        "description": 'Prometheus metrics in the text format (docs/operations.md, "Metrics").',
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "responses": {"200": _json({"type": "object"}, "This document.")},
            }
        },
    }


def _package_version() -> str:
    try:
        return version("crmflow")
    except PackageNotFoundError:
        return "0+unknown"


def openapi_document(config: ReceiverConfig) -> dict[str, Any]:
    """The receiver's OpenAPI 3.1 document, listing only the webhook routes of the sources `config` serves."""
    _, definitions = models_json_schema(
        [(ZohoNotification, "validation"), (HubSpotBatch, "validation")], ref_template=_REF
    )
    paths = _service_paths()
    if "zoho" in config.sources:
        paths["/webhooks/zoho"] = {"post": _zoho(config)}
    if "hubspot" in config.sources:
        paths["/webhooks/hubspot"] = {"post": _hubspot(config)}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "crmflow receiver",
            "version": _package_version(),
            "description": "Receives Zoho CRM and HubSpot change notifications and queues one job per record.",
        },
        "paths": paths,
        "components": {"schemas": {**definitions["$defs"], **_SHARED_SCHEMAS}},
    }
