"""The settings as set: read as crmflow's settings classes read them (.env, environment over it, empty = unset)."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmflow.doctor.command import read_environment


def test_dotenv_overlaid_by_the_environment_and_empty_means_unset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("ZOHO_CLIENT_ID=from-file\nzoho_refresh_token=rt\nHUBSPOT_CLIENT_SECRET=\n")
    monkeypatch.chdir(tmp_path)
    for name in ("ZOHO_CLIENT_ID", "ZOHO_REFRESH_TOKEN", "HUBSPOT_CLIENT_SECRET", "HUBSPOT_ACCESS_TOKEN", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ZOHO_CLIENT_ID", "from-env")
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "")

    env = read_environment()

    assert env["ZOHO_CLIENT_ID"] == "from-env"
    assert env["ZOHO_REFRESH_TOKEN"] == "rt"
    assert "HUBSPOT_CLIENT_SECRET" not in env
    assert "HUBSPOT_ACCESS_TOKEN" not in env
