"""Notifier: what notify actions send with, built once per worker by its entry point (workers/main.py).

Its own HTTP client, apart from the CRM clients (no CRM credentials, no redirects), the environment that
rules' `secret_env` names are read from, and a clock: each attempt is stamped and signed when it is made,
also when a retry or a replay sends an earlier delivery again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from workers.errors import NotifySecretError
from workers.notify.delivery import TIMEOUT_S, Delivered, DeliveryLimits, deliver
from workers.notify.signing import parse_secret
from workers.rules.model import NotifyParams, RuleSet


def _utcnow() -> datetime:
    return datetime.now(UTC)


def notify_client() -> httpx.AsyncClient:
    """The worker's client for notify endpoints: no auth headers, no redirects, every step under a timeout."""
    return httpx.AsyncClient(
        follow_redirects=False,
        timeout=httpx.Timeout(TIMEOUT_S, connect=5.0),
        headers={"user-agent": "crmflow-notify"},
        # A few endpoints, called now and then: a small pool, and no connection kept for long.
        limits=httpx.Limits(max_connections=20, max_keepalive_connections=5, keepalive_expiry=30.0),
    )


@dataclass(frozen=True)
class Notifier:
    """Sends notify deliveries: `http` (see notify_client), secrets from `environ`, stamped by `clock`."""

    http: httpx.AsyncClient
    environ: Mapping[str, str]
    clock: Callable[[], datetime] = field(default=_utcnow)
    limits: DeliveryLimits = field(default_factory=DeliveryLimits)

    def key(self, secret_env: str | None) -> bytes | None:
        """The signing key `secret_env` names (None: unsigned); NotifySecretError naming it when it holds none."""
        if secret_env is None:
            return None
        return parse_secret(self.environ.get(secret_env), env_name=secret_env)

    async def send(self, url: str, body: bytes, *, msg_id: str, secret_env: str | None) -> Delivered:
        """One attempt at delivering `body` to `url` as webhook `msg_id` (workers/notify/delivery.py)."""
        return await deliver(
            self.http, url, body, msg_id=msg_id, key=self.key(secret_env), now=self.clock(), limits=self.limits
        )


def secret_envs(rules: RuleSet) -> set[str]:
    """The `secret_env` of every notify action of the enabled rules."""
    return {
        action.params.secret_env
        for rule in rules.rules
        if rule.enabled
        for action in rule.actions
        if isinstance(action.params, NotifyParams) and action.params.secret_env is not None
    }


def secret_problems(names: Iterable[str], environ: Mapping[str, str]) -> list[str]:
    """What is wrong with each of the secrets `names` (secret_env), one line each (the worker's start-up check)."""
    problems: list[str] = []
    for name in sorted(set(names)):
        try:
            parse_secret(environ.get(name), env_name=name)
        except NotifySecretError as exc:
            problems.append(str(exc))
    return problems
