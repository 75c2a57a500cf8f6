"""The console's settings: a token long enough, a session lifetime in bounds, an http(s) receiver URL."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from console.config import ConsoleConfig
from tests.console.conftest import TOKEN


def test_defaults() -> None:
    config = ConsoleConfig.model_validate({"CONSOLE_TOKEN": TOKEN})

    assert (config.session_s, config.receiver_url, config.redis_url) == (43_200, None, "redis://127.0.0.1:6379/0")


def test_the_receiver_url_is_http_and_loses_its_trailing_slash() -> None:
    config = ConsoleConfig.model_validate({"CONSOLE_TOKEN": TOKEN, "CONSOLE_RECEIVER_URL": "http://receiver:8000/"})

    assert config.receiver_url == "http://receiver:8000"
    with pytest.raises(ValidationError, match="http:// or https://"):
        ConsoleConfig.model_validate({"CONSOLE_TOKEN": TOKEN, "CONSOLE_RECEIVER_URL": "receiver:8000"})


@pytest.mark.parametrize("session_s", [59, 30 * 86_400 + 1])
def test_the_session_lifetime_is_a_minute_to_thirty_days(session_s: int) -> None:
    with pytest.raises(ValidationError):
        ConsoleConfig.model_validate({"CONSOLE_TOKEN": TOKEN, "CONSOLE_SESSION_S": session_s})


def test_a_blank_token_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValidationError) as caught:
        ConsoleConfig.model_validate({"CONSOLE_TOKEN": " " * 20})

    assert "at least 16 characters" in str(caught.value)
