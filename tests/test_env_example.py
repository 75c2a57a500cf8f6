""".env.example as shipped: an empty value means "not set", so a CRM left blank is simply off."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from receiver.config import ReceiverConfig
from tests.processes import REPO
from workers.config import WorkerConfig

EXAMPLE = (REPO / ".env.example").read_text()
ZOHO_ONLY = {
    "ZOHO_NOTIFY_TOKEN": "a-token-of-the-receiver",
    "ZOHO_CLIENT_ID": "client-id",
    "ZOHO_CLIENT_SECRET": "client-secret",
    "ZOHO_REFRESH_TOKEN": "refresh-token",
}


def dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, filled: dict[str, str]) -> None:
    """A working directory whose .env is .env.example with `filled` set, and no such setting in the environment."""
    text = EXAMPLE
    for name, value in filled.items():
        text, count = re.subn(rf"^{name}=$", f"{name}={value}", text, flags=re.MULTILINE)
        assert count == 1, f"{name} is not an empty line of .env.example"
    (tmp_path / ".env").write_text(text)
    for name in re.findall(r"^([A-Z][A-Z0-9_]*)=", EXAMPLE, flags=re.MULTILINE):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_the_example_with_only_zoho_filled_in_runs_zoho_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dotenv(tmp_path, monkeypatch, ZOHO_ONLY)

    assert ReceiverConfig().sources == ["zoho"]
    assert WorkerConfig().sources == ["zoho"]


def test_the_example_as_shipped_says_that_no_crm_is_configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dotenv(tmp_path, monkeypatch, {})

    for settings in (ReceiverConfig, WorkerConfig):
        with pytest.raises(ValidationError, match="no source is configured"):
            settings()


def test_an_empty_value_in_the_environment_is_not_set_either(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBSPOT_CLIENT_SECRET", "")
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "")

    assert ReceiverConfig(ZOHO_NOTIFY_TOKEN="t").hubspot_client_secret is None
    assert WorkerConfig(ZOHO_CLIENT_ID="i", ZOHO_CLIENT_SECRET="s", ZOHO_REFRESH_TOKEN="r").sources == ["zoho"]
