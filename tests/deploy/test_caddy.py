"""deploy/Caddyfile, the proxy of docker-compose.yml: well-formed, in step with the receiver's limits, and serving
the webhooks over TLS in front of a real receiver process.

Needs the `caddy` command (Debian's package; .ci/run installs it): skipped without it. Debian's Caddy (2.6) is
older than the compose file's caddy:2-alpine image, so the file keeps to directives both have.
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis

from crmflow.embedded_redis import free_port
from receiver.config import ReceiverConfig
from receiver.receive import MAX_HEADER_BYTES
from receiver.server import KEEP_ALIVE_S
from tests.conftest import sample
from tests.processes import answers, crmflow_env, start, stop, wait_for
from workers.contract import QUEUE_NAME

REPO = Path(__file__).resolve().parent.parent.parent
CADDYFILE = REPO / "deploy" / "Caddyfile"
CADDY = shutil.which("caddy")
NS = 1_000_000_000
TOKEN = "caddy-notify-token-3b5d5c37"

pytestmark = pytest.mark.skipif(CADDY is None, reason="caddy is not installed (apt-get install caddy)")


def caddy(args: list[str], home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`caddy ARGS` with its data and config kept under `home`."""
    assert CADDY is not None
    return subprocess.run(
        [CADDY, *args], env=caddy_env(home, **env), capture_output=True, text=True, timeout=60, check=False
    )


def caddy_env(home: Path, **env: str) -> dict[str, str]:
    paths = {"HOME": str(home), "XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config")}
    return {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin"} | paths | env


def adapted(home: Path, **env: str) -> dict[str, Any]:
    result = caddy(["adapt", "--config", str(CADDYFILE), "--adapter", "caddyfile"], home, **env)
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


def site_handlers(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The handlers of the one site, by name (the site's routes are one subroute)."""
    (server,) = config["apps"]["http"]["servers"].values()
    (route,) = server["routes"]
    (subroute,) = route["handle"]
    return {handler["handler"]: handler for step in subroute["routes"] for handler in step["handle"]}


def test_the_caddyfile_is_formatted_and_valid(tmp_path: Path) -> None:
    formatted = caddy(["fmt", str(CADDYFILE)], tmp_path)
    assert formatted.returncode == 0, formatted.stderr
    assert formatted.stdout.strip() == CADDYFILE.read_text(encoding="utf-8").strip(), "run: caddy fmt --overwrite"

    validated = caddy(["validate", "--config", str(CADDYFILE), "--adapter", "caddyfile"], tmp_path)

    assert validated.returncode == 0, validated.stderr


def test_the_proxy_limits_are_in_step_with_the_receiver(tmp_path: Path) -> None:
    config = adapted(tmp_path)
    (server,) = config["apps"]["http"]["servers"].values()
    handlers = site_handlers(config)
    defaults = ReceiverConfig.model_validate({"ZOHO_NOTIFY_TOKEN": TOKEN})

    assert server["read_header_timeout"] == defaults.header_timeout_s * NS
    assert server["read_timeout"] == 30 * NS and server["idle_timeout"] == 60 * NS
    assert server["max_header_bytes"] == MAX_HEADER_BYTES
    assert handlers["request_body"]["max_size"] == defaults.max_body_bytes
    assert f"> {defaults.max_body_bytes}" in json.dumps(config)  # the declared-length check
    proxy = handlers["reverse_proxy"]
    assert proxy["upstreams"] == [{"dial": "receiver:8000"}]
    # The proxy drops an idle upstream connection before the receiver would close it under a request.
    assert proxy["transport"]["keep_alive"]["idle_timeout"] < KEEP_ALIVE_S * NS
    assert server["listen"] == [":443"]  # CRMFLOW_DOMAIN unset: localhost, with Caddy's local CA
    assert config["apps"]["pki"]["certificate_authorities"]["local"]["install_trust"] is False


def test_crmflow_domain_names_the_site(tmp_path: Path) -> None:
    config = adapted(tmp_path, CRMFLOW_DOMAIN="crmflow.example.com")
    (server,) = config["apps"]["http"]["servers"].values()

    assert server["routes"][0]["match"] == [{"host": ["crmflow.example.com"]}]


# --- the proxy in front of a real receiver ------------------------------------------------------------------------


@dataclass
class Proxied:
    url: str
    http_url: str
    tls: ssl.SSLContext
    store: redis.Redis
    receiver: subprocess.Popen[bytes]

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, verify=self.tls, timeout=10)


@pytest.fixture
def proxied(redis_url: str, tmp_path: Path) -> Iterator[Proxied]:
    """A receiver process behind Caddy run from deploy/Caddyfile (localhost, local CA), on free ports."""
    store = redis.Redis.from_url(redis_url)
    store.flushdb()
    receiver_port, http_port, https_port = free_port(), free_port(), free_port()
    env = crmflow_env(REDIS_URL=redis_url, ZOHO_NOTIFY_TOKEN=TOKEN)
    receiver = start(["receiver", "--port", str(receiver_port)], env, tmp_path, tmp_path / "receiver.log")
    ports = {"CRMFLOW_HTTP_PORT": str(http_port), "CRMFLOW_HTTPS_PORT": str(https_port)}
    config = adapted(tmp_path, CRMFLOW_UPSTREAM=f"127.0.0.1:{receiver_port}", **ports)
    config["admin"] = {"disabled": True}  # no admin endpoint on the machine's port 2019
    (tmp_path / "caddy.json").write_text(json.dumps(config))
    assert CADDY is not None
    with (tmp_path / "caddy.log").open("wb") as log:
        proxy = subprocess.Popen(
            [CADDY, "run", "--config", str(tmp_path / "caddy.json")],
            env=caddy_env(tmp_path),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        root = tmp_path / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
        wait_for(root.exists, "Caddy's local CA")
        tls = ssl.create_default_context(cafile=str(root))
        url = f"https://localhost:{https_port}"
        wait_for(lambda: answers(f"http://127.0.0.1:{receiver_port}/readyz"), "the receiver")

        def through_proxy() -> bool:
            try:
                return httpx.get(f"{url}/readyz", verify=tls, timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(through_proxy, "the proxy")
        yield Proxied(url, f"http://localhost:{http_port}", tls, store, receiver)
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)
        stop(receiver)


def refusal(response: httpx.Response) -> tuple[int, str]:
    assert response.headers["content-type"].startswith("application/json"), response.text
    return response.status_code, response.json()["error"]


@pytest.mark.slow
def test_the_proxy_serves_the_webhooks_over_tls_and_answers_its_refusals_in_json(proxied: Proxied) -> None:
    notification = orjson.dumps(sample("zoho/appointment_update") | {"token": TOKEN})
    json_type = {"content-type": "application/json"}
    with proxied.client() as http:
        accepted = http.post("/webhooks/zoho", content=notification, headers=json_type)
        health = http.get("/healthz")
        metrics = http.get("/metrics")
        declared = http.post("/webhooks/zoho", content=b"x" * (2 * 1024 * 1024), headers=json_type)
        streamed = http.post("/webhooks/zoho", content=iter([b"x" * 65536] * 32), headers=json_type)
        at_the_cap = http.post("/webhooks/zoho", content=b" " * 1_048_576, headers=json_type)
    redirected = httpx.get(f"{proxied.http_url}/healthz", follow_redirects=False)
    queued = proxied.store.zcard(QUEUE_NAME)
    stop(proxied.receiver)
    with proxied.client() as http:
        receiver_down = http.post("/webhooks/zoho", content=notification, headers=json_type)

    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["queued"] == 1 and queued == 1
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert refusal(metrics) == (404, "not_found")  # Prometheus scrapes the receiver inside, never through here
    assert refusal(declared) == (413, "payload_too_large")  # refused by the proxy before it is read
    assert refusal(streamed) == (413, "payload_too_large")  # chunked: refused by the proxy at the cap
    assert refusal(at_the_cap) == (400, "malformed_json")  # exactly the cap: passed on, refused by the receiver
    assert redirected.status_code == 308 and redirected.headers["location"].startswith("https://")
    assert refusal(receiver_down) == (502, "bad_gateway")
