"""The `crmflow` command as a user runs it: rules check, start-up refusing bad settings by name, lazy commands."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from tests.processes import REPO, crmflow_env

BAD_RULES = """\
version: 1
rules:
  - name: zoho-log
    source: zoho
    module: Appointments__s
    when:
      changed: [Appointment_Start_Tme]
    actions:
      - type: log_reschedule_history
"""

# Several problems in one rule, and a second rule with its own: every one of them is listed.
SEVERAL_PROBLEMS = """\
version: 1
rules:
  - name: zoho-log
    source: zoho
    module: Appointments__s
    priority: 1
    when:
      changed: [Appointment_Start_Tme]
    actions:
      - type: log_reschedule_histroy
  - name: second
    source: zoho
    module: Appointments__s
    when: {changed: Status}
    actions:
      - {type: log_reschedule_history, with: {reason: Sometimes}}
"""


def several_problems(path: Path) -> list[str]:
    return [
        f"{path}: rule 'zoho-log' (rules[0]): when.changed[0]: unknown field 'Appointment_Start_Tme' for "
        "zoho/Appointments__s (did you mean 'Appointment_Start_Time'?)",
        f"{path}: rule 'zoho-log' (rules[0]): actions[0].type: unknown action type 'log_reschedule_histroy' "
        "(did you mean 'log_reschedule_history'?)",
        f"{path}: rule 'zoho-log' (rules[0]): unknown key 'priority' (allowed: name, description, source, module, "
        "when, conditions, enabled, actions)",
        f"{path}: rule 'second' (rules[1]): actions[0].with.reason: must be 'By Customer' or 'By Team', "
        "not 'Sometimes'",
    ]


def crmflow(*args: str, cwd: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crmflow", *args],
        cwd=cwd,
        env=crmflow_env(**settings),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow
def test_rules_check_accepts_the_default_file(tmp_path: Path) -> None:
    done = crmflow("rules", "check", str(REPO / "rules" / "default.yaml"), cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("default.yaml: ok, 2 rules")


@pytest.mark.slow
def test_rules_check_names_file_rule_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_RULES)

    done = crmflow("rules", "check", str(bad), cwd=tmp_path)

    assert done.returncode == 1
    assert (
        f"{bad}: rule 'zoho-log' (rules[0]): when.changed[0]: unknown field 'Appointment_Start_Tme' for "
        "zoho/Appointments__s (did you mean 'Appointment_Start_Time'?)"
    ) in done.stderr


@pytest.mark.slow
def test_rules_check_lists_every_problem_of_every_rule_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(SEVERAL_PROBLEMS)

    done = crmflow("rules", "check", str(bad), cwd=tmp_path)

    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [f"crmflow: {bad}: invalid rules"] + [
        f"  {line}" for line in several_problems(bad)
    ]


@pytest.mark.slow
def test_rules_check_on_a_missing_file(tmp_path: Path) -> None:
    done = crmflow("rules", "check", "nowhere.yaml", cwd=tmp_path)

    assert done.returncode == 1
    assert "nowhere.yaml" in done.stderr


@pytest.mark.slow
def test_receiver_refuses_to_start_without_any_source(tmp_path: Path) -> None:
    done = crmflow("receiver", cwd=tmp_path)

    assert done.returncode == 2
    assert "no source is configured: set ZOHO_NOTIFY_TOKEN (Zoho) and/or HUBSPOT_CLIENT_SECRET" in done.stderr


@pytest.mark.slow
def test_hubspot_needs_the_public_base_url(tmp_path: Path) -> None:
    done = crmflow("receiver", cwd=tmp_path, HUBSPOT_CLIENT_SECRET="s3cret-value")

    assert done.returncode == 2
    assert "PUBLIC_BASE_URL: is not set; HubSpot signs the URL it calls" in done.stderr
    assert "s3cret-value" not in done.stderr


@pytest.mark.slow
def test_receiver_refuses_a_token_zoho_would_not_accept(tmp_path: Path) -> None:
    done = crmflow("receiver", cwd=tmp_path, ZOHO_NOTIFY_TOKEN="x" * 51)

    assert done.returncode == 2
    assert "ZOHO_NOTIFY_TOKEN: Value error, must be 1 to 50 characters" in done.stderr
    assert "x" * 51 not in done.stderr


@pytest.mark.slow
def test_worker_names_every_invalid_setting_and_no_secret(tmp_path: Path) -> None:
    done = crmflow(
        "worker",
        cwd=tmp_path,
        ZOHO_CLIENT_SECRET="very-secret-value",
        ZOHO_API_DOMAIN="zohoapis.com",
        WORKER_MAX_TRIES="many",
    )

    assert done.returncode == 2
    for line in ("ZOHO_API_DOMAIN: Input should be a valid URL", "WORKER_MAX_TRIES: Input should be a valid integer"):
        assert line in done.stderr
    assert "very-secret-value" not in done.stderr


@pytest.mark.slow
def test_worker_names_the_missing_half_of_a_source(tmp_path: Path) -> None:
    partial = crmflow("worker", cwd=tmp_path, ZOHO_CLIENT_SECRET="very-secret-value")
    nothing = crmflow("worker", cwd=tmp_path)

    assert partial.returncode == nothing.returncode == 2
    assert "ZOHO_CLIENT_ID, ZOHO_REFRESH_TOKEN: not set; Zoho needs all of" in partial.stderr
    assert "very-secret-value" not in partial.stderr
    assert "no source is configured" in nothing.stderr


def worker_with_rules(tmp_path: Path, text: str) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """A worker started with Zoho configured and these rules: the rule file and what the worker did."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    done = crmflow(
        "worker",
        cwd=tmp_path,
        RULES_PATH=str(bad),
        ZOHO_CLIENT_ID="c",
        ZOHO_CLIENT_SECRET="s",
        ZOHO_REFRESH_TOKEN="r",
    )
    return bad, done


@pytest.mark.slow
def test_worker_refuses_to_start_with_invalid_rules(tmp_path: Path) -> None:
    bad, done = worker_with_rules(tmp_path, BAD_RULES)

    assert done.returncode == 2
    assert f"invalid rules in {bad}" in done.stderr
    assert "rule 'zoho-log' (rules[0]): when.changed[0]: unknown field 'Appointment_Start_Tme'" in done.stderr


@pytest.mark.slow
def test_worker_refuses_to_start_without_the_notify_secrets_its_rules_name(tmp_path: Path) -> None:
    action = '{type: notify, with: {url: "https://hooks.example.com/x", secret_env: CRMFLOW_TEAM_SECRET}}'
    rules = (
        "version: 1\nrules:\n  - {name: tell, source: zoho, module: Appointments__s, "
        f"when: {{changed: [Appointment_Start_Time]}}, actions: [{action}]}}\n"
    )

    path, done = worker_with_rules(tmp_path, rules)

    assert done.returncode == 2
    assert f"crmflow: notify secrets named by the rules in {path}\n" in done.stderr
    assert "  secret_env CRMFLOW_TEAM_SECRET: the environment variable is not set (or is empty)" in done.stderr
    # A .env file is read as for every setting: there, a secret too short for Standard Webhooks.
    (tmp_path / ".env").write_text("CRMFLOW_TEAM_SECRET=whsec_c2hvcnQ=\n")
    _, short = worker_with_rules(tmp_path, rules)
    assert short.returncode == 2
    assert "secret_env CRMFLOW_TEAM_SECRET: the secret holds 5 bytes" in short.stderr
    assert "c2hvcnQ" not in short.stderr


@pytest.mark.slow
def test_settings_come_from_a_dotenv_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("ZOHO_NOTIFY_TOKEN=" + "y" * 60 + "\n")

    done = crmflow("receiver", cwd=tmp_path)

    assert done.returncode == 2
    assert "ZOHO_NOTIFY_TOKEN: Value error" in done.stderr


def test_help_lists_the_commands_that_live_with_the_sandbox(tmp_path: Path) -> None:
    done = crmflow("--help", cwd=tmp_path)
    sandbox = crmflow("sandbox", "--help", cwd=tmp_path)

    assert done.returncode == sandbox.returncode == 0, done.stderr + sandbox.stderr
    # Click pads the names to the longest command's, so any number of spaces.
    assert re.search(r"^  demo +Run receiver, worker and sandbox on loopback, reschedule an\.\.\.$", done.stdout, re.M)
    assert re.search(
        r"^  sandbox +Run the local Zoho CRM and HubSpot emulator that tests and\.\.\.$", done.stdout, re.M
    )
    for option in ("--notify-url", "--notify-token", "--channel-id", "--auto-history", "--hubspot-webhook-url"):
        assert option in sandbox.stdout


def test_crmflow_imports_the_sandbox_only_for_its_commands(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from crmflow.cli import main\n"
        "def imported(): return [name for name in sys.modules if name.split('.')[0] == 'sandbox']\n"
        "assert not imported(), imported()\n"
        "main(sys.argv[1:], prog_name='crmflow', standalone_mode=False)\n"
        "assert not imported(), imported()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, "rules", "check", str(REPO / "rules" / "default.yaml")],
        cwd=tmp_path,
        env=crmflow_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("default.yaml: ok, 2 rules")


def test_without_the_sandbox_its_commands_fail_with_one_line(tmp_path: Path) -> None:
    # sys.modules[name] = None makes every import of that package fail, as if it were not installed.
    script = "import sys\nsys.modules['sandbox'] = None\nfrom crmflow.cli import main\nmain(prog_name='crmflow')\n"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", script, *args],
            cwd=tmp_path,
            env=crmflow_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )

    listing = run("--help")
    for args in (["sandbox", "--port", "8001"], ["sandbox", "--help"], ["demo"]):
        done = run(*args)
        assert done.returncode == 2
        assert done.stdout == ""
        (line,) = done.stderr.splitlines()
        assert line.startswith(f"crmflow: `crmflow {args[0]}` is not available: sandbox.cli cannot be imported (")
    assert listing.returncode == 0
    assert re.search(r"^  sandbox +Not available: sandbox\.cli cannot be imported\.$", listing.stdout, re.M)


@pytest.mark.slow
def test_crm_calls_shows_today_s_counts_and_names_a_redis_that_fails(tmp_path: Path, redis_url: str) -> None:
    import redis

    from workers import keys
    from workers.crm.limits import day_of

    store = redis.Redis.from_url(redis_url)
    store.flushdb()
    store.hset(keys.crm_calls("zoho", day_of(time.time())), mapping={"read": 3, "coalesced": 2})

    done = crmflow("crm-calls", "--json", cwd=tmp_path, REDIS_URL=redis_url)
    down = crmflow("crm-calls", cwd=tmp_path, REDIS_URL="redis://127.0.0.1:1/0")

    assert done.returncode == 0, done.stderr
    zoho = orjson.loads(done.stdout.splitlines()[0])
    assert (zoho["source"], zoho["read"], zoho["coalesced"], zoho["write"]) == ("zoho", 3, 2, 0)
    assert down.returncode == 2
    assert down.stderr.startswith("crmflow: Redis at redis://127.0.0.1:1/0 failed")


@pytest.mark.slow
def test_worker_refuses_to_start_listing_every_problem_of_its_rules(tmp_path: Path) -> None:
    bad, done = worker_with_rules(tmp_path, SEVERAL_PROBLEMS)

    assert done.returncode == 2
    assert f"invalid rules in {bad}" in done.stderr
    lines = done.stderr.splitlines()
    for problem in several_problems(bad):
        assert f"  {problem}" in lines
