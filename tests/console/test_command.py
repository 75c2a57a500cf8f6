"""`crmflow console` as an operator runs it: it refuses to start without its token, and serves on loopback."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from crmflow.embedded_redis import free_port
from tests.console.conftest import TOKEN
from tests.processes import answers, crmflow_env, start, stop, wait_for
from tests.test_cli import crmflow


@pytest.mark.slow
@pytest.mark.parametrize(
    ("token", "problem"),
    [(None, "CONSOLE_TOKEN: is not set"), ("too-short-token", "CONSOLE_TOKEN: Value error, must be at least 16")],
)
def test_it_refuses_to_start_without_a_token_naming_the_setting(
    tmp_path: Path, token: str | None, problem: str
) -> None:
    settings = {} if token is None else {"CONSOLE_TOKEN": token}

    done = crmflow("console", "--port", str(free_port()), cwd=tmp_path, **settings)

    assert done.returncode == 2
    assert problem in done.stderr
    assert token is None or token not in done.stderr + done.stdout


@pytest.mark.slow
def test_it_serves_on_loopback_behind_the_token_and_never_logs_it(tmp_path: Path, redis_url: str) -> None:
    port = free_port()
    log = tmp_path / "console.log"
    process = start(
        ["console", "--port", str(port)], crmflow_env(CONSOLE_TOKEN=TOKEN, REDIS_URL=redis_url), tmp_path, log
    )
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/login"), "the console")
        anonymous = httpx.get(f"http://127.0.0.1:{port}/events")
        bearer = httpx.get(
            f"http://127.0.0.1:{port}/events",
            headers={"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"},
        )
    finally:
        stop(process)

    assert anonymous.status_code == 401
    assert bearer.status_code == 200
    text = log.read_text()
    assert f"console: http://127.0.0.1:{port}/" in text
    assert TOKEN not in text
