"""Custom fields as a user meets them, real processes only: `crmflow rules check --online` and `crmflow worker`
against a real `crmflow sandbox` whose field lists report custom fields, with Redis caching the lists."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.processes import stack_env, start, start_sandbox, stop, wait_for
from workers import keys

pytestmark = pytest.mark.slow

Sandbox = Callable[..., str]
CUSTOM = ("--custom-field", "zoho:Appointments__s:Visit_Priority", "--custom-field", "hubspot:appointments:gate_code")
RULES = """\
version: 1
rules:
  - name: zoho-priority-moves
    source: zoho
    module: Appointments__s
    when: {changed: [Appointment_Start_Time]}
    conditions:
      - {field: Visit_Priority, equals: High}
    actions:
      - type: log_reschedule_history
  - name: hubspot-gate-moves
    source: hubspot
    module: appointments
    when: {changed: [hs_appointment_start]}
    conditions:
      - {field: gate_code, is_set: true}
    actions:
      - type: log_reschedule_history
"""


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """Start `crmflow sandbox ARGS` on a free port; its URL. Stopped after the test."""
    processes: list[subprocess.Popen[bytes]] = []

    def run(*args: str) -> str:
        url, process = start_sandbox(tmp_path, *args)
        processes.append(process)
        return url

    yield run
    for process in processes:
        stop(process)


@pytest.fixture
def store(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


def crmflow(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crmflow", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )


def said(done: subprocess.CompletedProcess[str]) -> list[str]:
    """The error crmflow printed: its `crmflow: ...` line and the indented lines under it (log lines left out)."""
    return [line for line in done.stderr.splitlines() if line.startswith(("crmflow: ", "  "))]


def rules_file(tmp_path: Path, text: str = RULES) -> Path:
    path = tmp_path / "custom.yaml"
    path.write_text(text)
    return path


def test_online_check_accepts_the_custom_fields_the_crms_report(
    tmp_path: Path, redis_url: str, store: redis.Redis, sandbox: Sandbox
) -> None:
    env = stack_env(redis_url, sandbox(*CUSTOM))
    path = rules_file(tmp_path)

    offline = crmflow(tmp_path, env, "rules", "check", str(path))
    first = crmflow(tmp_path, env, "rules", "check", "--online", str(path))
    second = crmflow(tmp_path, env, "rules", "check", "--online", str(path))
    refreshed = crmflow(tmp_path, env, "rules", "check", "--online", "--refresh", str(path))

    assert offline.returncode == 1
    assert "conditions[0].field: unknown field 'Visit_Priority' for zoho/Appointments__s" in offline.stderr
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"{path}: ok, 2 rules (field lists: hubspot/appointments ")
    assert first.stdout.count("from the CRM") == 2
    assert second.returncode == 0 and second.stdout.count("cached") == 2
    assert refreshed.returncode == 0 and refreshed.stdout.count("from the CRM") == 2
    for source, module in (("zoho", "Appointments__s"), ("hubspot", "appointments")):
        ttl = store.ttl(keys.field_list(source, module))
        assert isinstance(ttl, int) and 86_000 < ttl <= 86_400


def test_online_check_still_refuses_a_misspelt_field_naming_file_rule_and_field(
    tmp_path: Path, redis_url: str, store: redis.Redis, sandbox: Sandbox
) -> None:
    env = stack_env(redis_url, sandbox(*CUSTOM))
    path = rules_file(tmp_path, RULES.replace("field: Visit_Priority,", "field: Visit_Priorty,"))

    done = crmflow(tmp_path, env, "rules", "check", "--online", str(path))

    assert done.returncode == 1
    assert said(done) == [
        f"crmflow: {path}: invalid rules",
        f"  {path}: rule 'zoho-priority-moves' (rules[0]): conditions[0].field: unknown field 'Visit_Priorty' for "
        "zoho/Appointments__s (did you mean 'Visit_Priority'?)",
    ]


def test_online_check_says_which_crm_list_it_could_not_read_and_why(
    tmp_path: Path, redis_url: str, store: redis.Redis, sandbox: Sandbox
) -> None:
    no_fields_scope = sandbox(*CUSTOM, "--zoho-scopes", "ZohoCRM.modules.ALL,ZohoCRM.notifications.ALL")
    path = rules_file(tmp_path)

    refused = crmflow(tmp_path, stack_env(redis_url, no_fields_scope), "rules", "check", "--online", str(path))
    unconfigured = crmflow(
        tmp_path,
        stack_env(redis_url, no_fields_scope, HUBSPOT_ACCESS_TOKEN=""),
        "rules",
        "check",
        "--online",
        str(path),
    )
    down = crmflow(
        tmp_path, stack_env(redis_url, "http://127.0.0.1:9"), "rules", "check", "--online", "--refresh", str(path)
    )
    refresh_alone = crmflow(tmp_path, stack_env(redis_url, no_fields_scope), "rules", "check", "--refresh", str(path))

    assert refused.returncode == 2
    lines = said(refused)
    assert lines[0] == f"crmflow: {path}: cannot check online"
    assert "  a CRM field list could not be read, so only built-in fields were known:" in lines
    assert lines[-1] == (
        "  zoho/Appointments__s: zoho refused crmflow's credentials or their scope (OAUTH_SCOPE_MISMATCH); reading "
        "it needs the scope ZohoCRM.settings.fields.READ"
    )
    assert any("Visit_Priority" in line for line in lines)  # the field that list might have held
    assert unconfigured.returncode == 2
    assert "  hubspot/appointments: hubspot is not configured (HubSpot is not configured" in unconfigured.stderr
    assert down.returncode == 2
    assert "zoho/Appointments__s: zoho could not be reached or failed (OAUTH_UNREACHABLE)" in down.stderr
    assert "hubspot/appointments: hubspot could not be reached or failed (CONNECTION)" in down.stderr
    assert refresh_alone.returncode == 2 and "--refresh goes with --online" in refresh_alone.stderr


def test_online_check_of_rules_needing_no_unread_list_passes_with_a_warning(
    tmp_path: Path, redis_url: str, sandbox: Sandbox
) -> None:
    # HubSpot not configured, and the rules name only built-in fields: the check holds without its list.
    path = tmp_path / "builtin.yaml"
    path.write_text((Path(__file__).parents[1] / "rules" / "default.yaml").read_text())
    env = stack_env(redis_url, sandbox(*CUSTOM), HUBSPOT_ACCESS_TOKEN="")

    done = crmflow(tmp_path, env, "rules", "check", "--online", str(path))

    assert done.returncode == 0, done.stderr
    assert "hubspot/appointments not read" in done.stdout
    assert "warning: a CRM field list could not be read (the rules need none of it): hubspot/appointments" in (
        done.stderr
    )


def test_a_worker_loads_custom_field_rules_with_the_crms_lists_and_refuses_clearly_without_them(
    tmp_path: Path, redis_url: str, store: redis.Redis, sandbox: Sandbox
) -> None:
    path = rules_file(tmp_path)
    url = sandbox(*CUSTOM)
    log = tmp_path / "worker.log"
    worker = start(["worker"], stack_env(redis_url, url, RULES_PATH=str(path)), tmp_path, log)
    try:
        wait_for(lambda: bool(store.keys(keys.worker_heartbeat("*"))), "the worker's heartbeat", timeout_s=30)
    finally:
        stop(worker)
    text = log.read_text()
    assert "worker: field list of zoho/Appointments__s:" in text and "(read from the CRM)" in text
    assert "2 rules from" in text

    # A CRM whose token may not read field lists: the worker falls back to the built-in fields, and stops on
    # the rule that names a custom one, saying which list it could not read and why.
    store.flushdb()
    no_fields_scope = sandbox(*CUSTOM, "--zoho-scopes", "ZohoCRM.modules.ALL,ZohoCRM.notifications.ALL")
    started = time.monotonic()
    refused = crmflow(tmp_path, stack_env(redis_url, no_fields_scope, RULES_PATH=str(path)), "worker")

    assert refused.returncode == 2
    assert time.monotonic() - started < 30
    assert f"crmflow: invalid rules in {path}" in refused.stderr
    assert "unknown field 'Visit_Priority' for zoho/Appointments__s" in refused.stderr
    assert (
        "(the CRM field list of zoho/Appointments__s could not be read, so only its built-in fields are known: zoho "
        "refused crmflow's credentials or their scope (OAUTH_SCOPE_MISMATCH); reading it needs the scope "
        "ZohoCRM.settings.fields.READ)"
    ) in refused.stderr
    assert "gate_code" not in refused.stderr  # HubSpot's list was read: its custom field is known


def test_a_worker_whose_rules_need_no_custom_field_reads_no_field_list(
    tmp_path: Path, redis_url: str, store: redis.Redis, sandbox: Sandbox
) -> None:
    url = sandbox()
    log = tmp_path / "worker.log"
    worker = start(["worker"], stack_env(redis_url, url), tmp_path, log)
    try:
        wait_for(lambda: bool(store.keys(keys.worker_heartbeat("*"))), "the worker's heartbeat", timeout_s=30)
    finally:
        stop(worker)
    assert "field list" not in log.read_text()
    assert not store.keys(keys.field_list("*", "*"))


def test_doctor_checks_custom_field_rules_online_with_the_crms_lists(
    tmp_path: Path, redis_url: str, store: redis.Redis, sandbox: Sandbox
) -> None:
    path = rules_file(tmp_path)
    env = stack_env(redis_url, sandbox(*CUSTOM), RULES_PATH=str(path))

    offline = crmflow(tmp_path, env, "doctor")
    online = crmflow(tmp_path, env, "doctor", "--online")

    assert offline.returncode == 1
    assert "unknown field 'Visit_Priority' for zoho/Appointments__s" in offline.stdout
    assert "for custom fields, `--online`" in offline.stdout
    assert f"ok    rules: RULES_PATH: 2 rules from {path}" in online.stdout, online.stdout
    assert "WARN  zoho scope ZohoCRM.settings.fields.READ" not in online.stdout
