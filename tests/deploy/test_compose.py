"""docker-compose.yml: valid by the Compose Specification, the receiver reachable only through the proxy, a health
check and a healthy start order for every service, every setting documented, and .env.sandbox in step with the
sandbox.

There is no Docker engine on the machines that run these tests, so the file is checked against the
specification's JSON schema: compose-spec.json beside this file is schema/compose-spec.json of the
compose-spec/compose-spec repository (commit 170098ba07d9, Apache License 2.0), unchanged. Debian's
docker-compose (1.29.2, the oldest Compose the file targets; .ci/run installs it) also reads it: its `config`
needs no engine. Those tests are skipped without it. The stack itself runs in test_compose_stack.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
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


# --- health, start order, scaling, Compose version ------------------------------------------------------------


def test_every_service_has_a_health_check_and_waits_for_what_it_needs_to_be_healthy(compose: dict[str, Any]) -> None:
    services = compose["services"]
    needs = {name: service.get("depends_on", {}) for name, service in services.items()}

    assert all("test" in service["healthcheck"] for service in services.values())
    assert all(isinstance(wanted, dict) for wanted in needs.values()), "depends_on must name its condition"
    assert {
        (name, dependency, wanted[dependency]["condition"]) for name, wanted in needs.items() for dependency in wanted
    } == {
        ("receiver", "redis", "service_healthy"),
        ("worker", "redis", "service_healthy"),
        ("proxy", "receiver", "service_healthy"),
        ("sandbox", "receiver", "service_healthy"),
    }
    # A service of the default profile cannot wait for one that only a profile starts.
    in_profiles = {name for name, service in services.items() if service.get("profiles")}
    assert not any(set(wanted) & in_profiles for name, wanted in needs.items() if name not in in_profiles)


def test_each_crmflow_role_checks_its_health_with_crmflow_health_and_no_secret(compose: dict[str, Any]) -> None:
    services = compose["services"]
    checks = {name: services[name]["healthcheck"]["test"] for name in ("receiver", "worker", "sandbox")}

    assert checks == {
        "receiver": ["CMD", "crmflow", "health", "receiver", "--port", "8000"],
        "worker": ["CMD", "crmflow", "health", "worker"],
        "sandbox": ["CMD", "crmflow", "health", "sandbox", "--port", "8001"],
    }
    assert services["receiver"]["command"][-1] == "8000" and "--port=8001" in services["sandbox"]["command"]
    assert "$" not in json.dumps([service["healthcheck"] for service in services.values()])


def test_health_checks_call_loopback_by_address_not_localhost(compose: dict[str, Any]) -> None:
    """Alpine's musl may resolve localhost to ::1 first, and BusyBox wget does not fall back to 127.0.0.1, where
    Caddy's admin endpoint listens: a check on `localhost` would never pass."""
    checks = [service["healthcheck"]["test"] for service in compose["services"].values()]

    assert "localhost" not in json.dumps(checks)
    assert "http://127.0.0.1:2019/config/" in compose["services"]["proxy"]["healthcheck"]["test"]


def test_workers_scale_with_the_scale_flag(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]

    assert not {"container_name", "ports", "hostname"} & set(worker)
    assert worker["stop_grace_period"] == "40s"


def test_redis_keeps_an_append_only_file_on_a_volume(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]

    assert redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    assert "redis-data:/data" in redis["volumes"] and "redis-data" in compose["volumes"]


def test_the_file_uses_nothing_newer_than_debian_s_docker_compose(compose: dict[str, Any]) -> None:
    text = (REPO / "docker-compose.yml").read_text(encoding="utf-8")

    # env_file's `required` needs Compose 2.24; `include` 2.20; `develop` 2.22.
    assert all("env_file" not in service for service in compose["services"].values())
    assert not {"include", "develop", "name"} & set(compose)
    assert "1.29.2" in text  # the version it says it targets


# --- the settings: documented, passed through, and the sandbox's values ------------------------------------------

ENV_EXAMPLE = REPO / ".env.example"
ENV_SANDBOX = REPO / ".env.sandbox"
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-[^}]*)?\}")


def documented(path: Path) -> set[str]:
    """Variables a .env file sets or names in a commented-out `# NAME=` line."""
    return set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", path.read_text(encoding="utf-8"), flags=re.MULTILINE))


def dotenv_values(path: Path) -> dict[str, str]:
    """NAME=value lines (no quoting, as .env.sandbox and .env.example use none)."""
    pairs = re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", path.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return dict(pairs)


def crmflow_settings() -> set[str]:
    """Every environment variable the receiver's and the worker's settings read."""
    from receiver.config import ReceiverConfig
    from workers.config import WorkerConfig

    fields = [*ReceiverConfig.model_fields.values(), *WorkerConfig.model_fields.values()]
    return {str(field.validation_alias) for field in fields}


def strings(node: Any) -> list[str]:
    """Every string in a loaded YAML document, keys included."""
    if isinstance(node, dict):
        return [text for key, value in node.items() for text in (*strings(key), *strings(value))]
    if isinstance(node, list):
        return [text for item in node for text in strings(item)]
    return [node] if isinstance(node, str) else []


def test_every_variable_the_compose_file_uses_is_documented_in_the_example(compose: dict[str, Any]) -> None:
    used = {name for text in strings(compose) for name in INTERPOLATION.findall(text)}

    assert used - documented(ENV_EXAMPLE) == set()
    assert "CRMFLOW_DOMAIN" in used and "ZOHO_NOTIFY_TOKEN" in used


def test_every_crmflow_setting_reaches_the_receiver_and_the_workers(compose: dict[str, Any]) -> None:
    services = compose["services"]
    fixed = {"REDIS_URL": "redis://redis:6379/0", "RULES_PATH": "/app/rules"}
    test_only = {"CRMFLOW_TEST_PAUSE_AT"}

    for name in ("receiver", "worker"):
        environment = services[name]["environment"]
        passed = {key for key, value in environment.items() if value == f"${{{key}:-}}"}
        assert crmflow_settings() - test_only - set(fixed) <= passed, name
        assert {key: environment[key] for key in fixed} == fixed
    assert crmflow_settings() - test_only <= documented(ENV_EXAMPLE)


def sandbox_flags(compose: dict[str, Any]) -> dict[str, str]:
    return dict(arg.removeprefix("--").split("=", 1) for arg in compose["services"]["sandbox"]["command"][1:])


def test_env_sandbox_holds_the_sandbox_s_own_values(compose: dict[str, Any]) -> None:
    from sandbox.config import SandboxConfig

    values = dotenv_values(ENV_SANDBOX)
    defaults = SandboxConfig()
    flags = sandbox_flags(compose)
    sandbox_url = f"http://sandbox:{flags['port']}"
    receiver_url = "http://receiver:" + compose["services"]["receiver"]["command"][-1]

    assert set(values) <= documented(ENV_EXAMPLE)
    assert values["ZOHO_NOTIFY_TOKEN"] == defaults.notify_token and "notify-token" not in flags
    assert values["ZOHO_CHANNEL_IDS"] == defaults.channel_id and "channel-id" not in flags
    assert (values["ZOHO_CLIENT_ID"], values["ZOHO_CLIENT_SECRET"], values["ZOHO_REFRESH_TOKEN"]) == (
        defaults.client_id,
        defaults.client_secret,
        defaults.refresh_token,
    )
    assert values["HUBSPOT_ACCESS_TOKEN"] == defaults.hubspot_access_token
    assert values["HUBSPOT_CLIENT_SECRET"] == defaults.hubspot_client_secret
    assert values["ZOHO_API_DOMAIN"] == values["ZOHO_ACCOUNTS_URL"] == values["HUBSPOT_API_BASE"] == sandbox_url
    # HubSpot's v3 signature covers the URL the sandbox calls; the receiver checks it over PUBLIC_BASE_URL + path.
    assert values["PUBLIC_BASE_URL"] == receiver_url
    assert flags["hubspot-webhook-url"] == values["PUBLIC_BASE_URL"] + "/webhooks/hubspot"
    # The workers keep ZOHO_CHANNEL_IDS calling PUBLIC_BASE_URL/webhooks/zoho: the sandbox's own channel.
    assert flags["notify-url"] == values["PUBLIC_BASE_URL"] + "/webhooks/zoho"


def test_env_sandbox_configures_both_crms_in_the_receiver_and_the_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from receiver.config import ReceiverConfig
    from workers.config import WorkerConfig
    from workers.main import channels_wanted

    for name in documented(ENV_EXAMPLE):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".env").write_text(ENV_SANDBOX.read_text(encoding="utf-8"))
    monkeypatch.chdir(tmp_path)

    worker = WorkerConfig()
    wanted = channels_wanted(worker)
    assert ReceiverConfig().sources == ["zoho", "hubspot"]
    assert worker.sources == ["zoho", "hubspot"]
    assert wanted is not None and wanted.notify_url == "http://receiver:8000/webhooks/zoho"


# --- Debian's docker-compose (1.29.2), when installed: it reads the file as Compose does, without an engine --------

DOCKER_COMPOSE = shutil.which("docker-compose")
needs_docker_compose = pytest.mark.skipif(
    DOCKER_COMPOSE is None, reason="docker-compose is not installed (apt-get install docker-compose)"
)


def docker_compose_config(project: Path, *args: str) -> dict[str, Any]:
    """`docker-compose [ARGS] config` of a copy of the compose file in `project` (with whatever .env is there),
    in an environment without any crmflow setting, so that only the .env file fills in variables."""
    assert DOCKER_COMPOSE is not None
    shutil.copy(REPO / "docker-compose.yml", project / "docker-compose.yml")
    env = {"PATH": os.environ["PATH"], "HOME": str(project)}
    result = subprocess.run(
        [DOCKER_COMPOSE, *args, "config"], cwd=project, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no warning either (an unset variable without a default would give one)
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


@needs_docker_compose
def test_debian_s_docker_compose_reads_the_file_without_a_dot_env(tmp_path: Path) -> None:
    config = docker_compose_config(tmp_path)
    environment = config["services"]["receiver"]["environment"]

    assert environment["ZOHO_NOTIFY_TOKEN"] == "" and environment["REDIS_URL"] == "redis://redis:6379/0"
    assert config["services"]["proxy"]["environment"]["CRMFLOW_DOMAIN"] == "localhost"


@needs_docker_compose
def test_debian_s_docker_compose_fills_in_env_sandbox(tmp_path: Path) -> None:
    shutil.copy(ENV_SANDBOX, tmp_path / ".env")

    config = docker_compose_config(tmp_path, "--profile", "sandbox")

    values = dotenv_values(ENV_SANDBOX)
    for name in ("receiver", "worker"):
        environment = config["services"][name]["environment"]
        assert {key: environment[key] for key in values if key in environment} == {
            key: value for key, value in values.items() if key != "CRMFLOW_DOMAIN"
        }
    assert "sandbox" in config["services"]


@needs_docker_compose
def test_debian_s_docker_compose_refuses_a_broken_file(tmp_path: Path) -> None:
    assert DOCKER_COMPOSE is not None
    broken = (REPO / "docker-compose.yml").read_text(encoding="utf-8").replace("    expose:", "    exposes:", 1)
    (tmp_path / "docker-compose.yml").write_text(broken)

    result = subprocess.run(
        [DOCKER_COMPOSE, "config", "-q"], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )

    assert result.returncode != 0 and "exposes" in result.stderr
