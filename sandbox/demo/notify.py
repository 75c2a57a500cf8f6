"""The demo's notify: a webhook endpoint on loopback, a rule that notifies it of Zoho reschedules, what it got."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable

from sandbox.demo.support import as_json, until
from sandbox.notify_endpoint import NotifyEndpoint, Received
from workers.rules.load import parse_rules
from workers.rules.model import RuleSet

# The demo's endpoint path and the environment variable its rule names (given to the demo's worker only).
PATH = "/hooks/reschedules"
SECRET_ENV = "CRMFLOW_DEMO_NOTIFY_SECRET"
RULE = "demo-notify-reschedules"


def demo_secret() -> str:
    """A fresh Standard Webhooks secret for one run of the demo."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def notify_rules(endpoint_url: str) -> RuleSet:
    """The demo's own rule: notify the endpoint of every Zoho reschedule, signed, with a Slack-style text."""
    text = (
        "{{ record.Appointment_Name }} moved from {{ reschedule.old_start }} to {{ reschedule.new_start }} "
        "({{ reschedule.notice_hours | round(1) }} h notice)"
    )
    rule_file = f"""
version: 1
rules:
  - name: {RULE}
    source: zoho
    module: Appointments__s
    when: {{changed: [Appointment_Start_Time]}}
    actions:
      - type: notify
        with:
          url: {endpoint_url}{PATH}
          secret_env: {SECRET_ENV}
          text: "{text}"
"""
    return parse_rules(rule_file, origin="the demo's notify rule")


def with_notify(rules: RuleSet, endpoint_url: str) -> RuleSet:
    """`rules` (the user's), then the demo's notify rule."""
    return RuleSet(rules=rules.rules + notify_rules(endpoint_url).rules)


async def delivery(endpoint: NotifyEndpoint) -> Received:
    """The first delivery the endpoint received, once it has one."""

    async def first() -> Received | None:
        received = endpoint.received(PATH)
        return received[0] if received else None

    found: Received = await until(first, "the notify delivery")
    return found


def show(out: Callable[[str], None], received: Received) -> None:
    """Print a delivery as the endpoint got it: the Standard Webhooks headers, the verdict, the body."""
    verdict = "verified" if received.verified else f"NOT verified ({received.problem})"
    headers = {name: received.headers[name] for name in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    out(
        f"\nThe notify delivery crmflow POSTed to the demo's webhook endpoint ({PATH}), signature {verdict}:\n"
        + as_json({"headers": headers, "body": received.json()})
    )
