"""Fault injection for the CRM API paths (Zoho and HubSpot): rules, the seeded decision per request, answers. Pure.

A rule matches by method and path prefix; `times` limits how often it fires, `probability` makes it fire
at random (from the plan's seeded `random.Random`), `delay_ms` slows the answer (alone, or before the
fault), `after` lets the request take effect before its answer is replaced (a write whose response is
lost). Rules are tried in order and the first that fires decides; a rule that does not fire (wrong
request, exhausted, or unlucky draw) passes the request on to the next. On HubSpot paths the answer has
HubSpot's shape (sandbox.hubspot.faults); `rate_limit_policy` picks the 429 body there.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

FAULTABLE_PREFIXES = ("/crm/", "/oauth/")

_JSON_BODIES: dict[int, dict[str, Any]] = {
    400: {"code": "INVALID_DATA", "details": {}, "message": "invalid data", "status": "error"},
    401: {"code": "INVALID_TOKEN", "details": {}, "message": "invalid oauth token", "status": "error"},
    403: {"code": "NO_PERMISSION", "details": {}, "message": "permission denied", "status": "error"},
    404: {
        "code": "INVALID_URL_PATTERN",
        "details": {},
        "message": "Please check if the URL trying to access is a correct one",
        "status": "error",
    },
    429: {
        "code": "TOO_MANY_REQUESTS",
        "details": {},
        "message": "Number of API requests for the 24 hour period is exceeded or the concurrency limit of the "
        "user for the app is exceeded",
        "status": "error",
    },
    500: {"code": "INTERNAL_ERROR", "details": {}, "message": "Internal Server Error", "status": "error"},
}
_REASONS = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


class FaultRule(BaseModel):
    """One rule as posted to /_sandbox/faults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: str | None = None
    path_prefix: str | None = None
    status: int | None = Field(default=None, ge=100, le=599)
    times: int | None = Field(default=None, ge=1)
    probability: float | None = Field(default=None, ge=0.0, le=1.0)
    delay_ms: int | None = Field(default=None, ge=0, le=60_000)
    body: JsonValue = None
    after: bool = False
    rate_limit_policy: Literal["TEN_SECONDLY_ROLLING", "DAILY"] | None = None

    @model_validator(mode="after")
    def _has_an_effect(self) -> FaultRule:
        if self.status is None and not self.delay_ms:
            raise ValueError("a fault needs a status, a delay_ms, or both")
        if self.after and self.status is None:
            raise ValueError("after=true needs a status to replace the answer with")
        if self.rate_limit_policy is not None and self.status != 429:
            raise ValueError("rate_limit_policy needs status 429")
        return self

    def matches(self, method: str, path: str) -> bool:
        method_ok = self.method is None or self.method.upper() == method.upper()
        return method_ok and (self.path_prefix is None or path.startswith(self.path_prefix))


@dataclass
class _Armed:
    id: int
    rule: FaultRule
    fired: int = 0

    def exhausted(self) -> bool:
        return self.rule.times is not None and self.fired >= self.rule.times

    def snapshot(self) -> dict[str, Any]:
        remaining = None if self.rule.times is None else self.rule.times - self.fired
        return {"id": self.id, **self.rule.model_dump(), "fired": self.fired, "remaining": remaining}


@dataclass(frozen=True)
class FaultDecision:
    """What to do to one request."""

    rule_id: int
    status: int | None
    delay_ms: int
    body: JsonValue
    after: bool
    rate_limit_policy: Literal["TEN_SECONDLY_ROLLING", "DAILY"] | None = None


def applies_to(path: str) -> bool:
    """Faults touch the CRM (Zoho and HubSpot) and OAuth paths only, never the control API."""
    return path.startswith(FAULTABLE_PREFIXES)


class FaultPlan:
    """The active rules and the seeded generator behind `probability`."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._rng = random.Random(seed)
        self._rules: list[_Armed] = []
        self._next_id = 1

    def reset(self) -> None:
        self._rng = random.Random(self._seed)
        self._rules = []

    def set_rules(self, rules: list[FaultRule]) -> None:
        """Replace all rules (the generator keeps its sequence)."""
        self._rules = []
        for rule in rules:
            self._rules.append(_Armed(self._next_id, rule))
            self._next_id += 1

    def snapshot(self) -> list[dict[str, Any]]:
        return [armed.snapshot() for armed in self._rules]

    def decide(self, method: str, path: str) -> FaultDecision | None:
        if not applies_to(path):
            return None
        for armed in self._rules:
            if armed.exhausted() or not armed.rule.matches(method, path):
                continue
            if armed.rule.probability is not None and self._rng.random() >= armed.rule.probability:
                continue
            armed.fired += 1
            rule = armed.rule
            return FaultDecision(
                armed.id, rule.status, rule.delay_ms or 0, rule.body, rule.after, rule.rate_limit_policy
            )
        return None


def fault_answer(status: int, body: JsonValue) -> tuple[bytes, str]:
    """The bytes and media type of a fault response on a Zoho path.

    A given `body` is sent as JSON (a string as plain text). Otherwise 429 and 500 answer as Zoho does
    (TOO_MANY_REQUESTS, INTERNAL_ERROR), other 4xx with the matching Zoho error, and gateway errors
    (502/503/504 and anything else) with an HTML page like the load balancer in front of Zoho would.
    """
    if isinstance(body, str):
        return body.encode(), "text/plain"
    if body is not None:
        return orjson.dumps(body), "application/json"
    if status in _JSON_BODIES:
        return orjson.dumps(_JSON_BODIES[status]), "application/json"
    reason = _REASONS.get(status, "Error")
    html = f"<html><head><title>{status} {reason}</title></head><body><h1>{status} {reason}</h1></body></html>"
    return html.encode(), "text/html"
