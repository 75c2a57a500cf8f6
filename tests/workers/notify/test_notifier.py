"""Notifier: secrets read from the environment it is given, checked at start-up; its own client."""

from __future__ import annotations

import base64

import pytest

from workers.errors import NotifySecretError
from workers.notify.notifier import Notifier, notify_client, secret_envs, secret_problems
from workers.rules.load import parse_rules

GOOD = "whsec_" + base64.b64encode(b"g" * 32).decode()
RULES = """
version: 1
rules:
  - name: signed
    source: zoho
    module: Appointments__s
    when: {changed: [Appointment_Start_Time]}
    actions:
      - {type: notify, with: {url: "https://hooks.example.com/a", secret_env: CRMFLOW_A_SECRET}}
      - {type: notify, with: {url: "https://hooks.example.com/b"}}
  - name: switched-off
    source: zoho
    module: Appointments__s
    when: {changed: [Status]}
    actions:
      - {type: notify, with: {url: "https://hooks.example.com/c", secret_env: CRMFLOW_OFF_SECRET}}
    enabled: false
"""


def test_the_secrets_of_enabled_notify_actions() -> None:
    assert secret_envs(parse_rules(RULES, origin="test")) == {"CRMFLOW_A_SECRET"}


def test_each_missing_or_malformed_secret_is_one_line_without_its_value() -> None:
    problems = secret_problems(["B", "A", "OK"], {"A": "not-a-secret", "OK": GOOD})

    assert problems == [
        "secret_env A: the value does not start with whsec_",
        "secret_env B: the environment variable is not set (or is empty)",
    ]


async def test_the_key_comes_from_the_given_environment_only() -> None:
    async with notify_client() as http:
        notifier = Notifier(http, {"CRMFLOW_A_SECRET": GOOD})

        assert notifier.key("CRMFLOW_A_SECRET") == b"g" * 32
        assert notifier.key(None) is None
        with pytest.raises(NotifySecretError, match="PATH: the environment variable is not set"):
            notifier.key("PATH")  # not read from the process's environment


async def test_the_notify_client_follows_no_redirect_and_sends_no_credentials() -> None:
    async with notify_client() as http:
        assert http.follow_redirects is False
        assert "authorization" not in http.headers
        assert http.timeout.connect == 5.0 and http.timeout.read == 10.0
