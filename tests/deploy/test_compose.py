"""docker-compose.yml: valid by the Compose Specification, and the receiver reachable only through the proxy.

There is no Docker engine on the machines that run these tests, so the file is checked against the
specification's JSON schema: compose-spec.json beside this file is schema/compose-spec.json of the
compose-spec/compose-spec repository (commit 170098ba07d9, Apache License 2.0), unchanged.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent.parent
SCHEMA = Path(__file__).parent / "compose-spec.json"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    return loaded


def test_the_compose_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    validator = jsonschema_rs.validator_for(json.loads(SCHEMA.read_text(encoding="utf-8")))

    errors = [f"{'/'.join(map(str, error.instance_path))}: {error.message}" for error in validator.iter_errors(compose)]

    assert errors == []


def test_the_schema_check_catches_a_mistake(compose: dict[str, Any]) -> None:
    validator = jsonschema_rs.validator_for(json.loads(SCHEMA.read_text(encoding="utf-8")))
    broken = json.loads(json.dumps(compose))
    broken["services"]["proxy"]["port"] = ["443:443"]

    assert not validator.is_valid(broken)


def test_only_the_proxy_publishes_the_receiver(compose: dict[str, Any]) -> None:
    services = compose["services"]
    receiver, proxy = services["receiver"], services["proxy"]

    assert "ports" not in receiver
    assert receiver["expose"] == ["8000"]
    assert receiver["command"][-2:] == ["--port", "8000"]
    assert {"80:80", "443:443"} <= set(proxy["ports"])
    published = {name for name, service in services.items() if service.get("ports")}
    # The sandbox publishes its CRM emulator (not the receiver), and only under its profile.
    assert published == {"proxy", "sandbox"}
    assert services["sandbox"]["profiles"] == ["sandbox"]
    assert services["sandbox"]["ports"] == ["8001:8001"]


def test_the_proxy_runs_caddy_with_the_repositorys_caddyfile(compose: dict[str, Any]) -> None:
    proxy = compose["services"]["proxy"]
    mounts = dict(volume.split(":")[:2] for volume in proxy["volumes"])

    assert proxy["image"].startswith("caddy:2")
    assert mounts["./deploy/Caddyfile"] == "/etc/caddy/Caddyfile"
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    assert (REPO / "deploy" / "Caddyfile").is_file()
    assert proxy["environment"]["CRMFLOW_DOMAIN"] == "${CRMFLOW_DOMAIN:-localhost}"
    assert {"caddy-data", "caddy-config"} <= set(compose["volumes"])
    # Its default upstream is the receiver's service name and port.
    caddyfile = (REPO / "deploy" / "Caddyfile").read_text(encoding="utf-8")
    assert re.search(r"reverse_proxy \{\$CRMFLOW_UPSTREAM:receiver:8000\}", caddyfile)


def test_the_sandbox_still_calls_the_receiver_on_the_compose_network(compose: dict[str, Any]) -> None:
    command = compose["services"]["sandbox"]["command"]

    assert "--notify-url=http://receiver:8000/webhooks/zoho" in command
    assert "--hubspot-webhook-url=http://receiver:8000/webhooks/hubspot" in command
