"""The console in a real browser (Debian's chromium, driven by Playwright) against real processes: sandbox,
receiver, worker and console. Log in, find the demo's reschedule in the event log and open it, then replay a
dead letter from its page and see it become a logged reschedule.

With CRMFLOW_CONSOLE_SCREENSHOT set to a path, the event list at the end is saved there as a PNG
(`make console-screenshot` makes docs/console.png so).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from playwright.sync_api import Page, expect, sync_playwright

from crmflow.embedded_redis import free_port
from sandbox.demo.zoho import ZohoStory
from tests.console.browser import ARGS, CHROMIUM, require_chromium
from tests.console.conftest import TOKEN
from tests.processes import answers, sandbox_auth, stack_env, start, stop, wait_for
from workers import keys
from workers.contract import QUEUE_NAME

pytestmark = pytest.mark.slow

NOTIFY_TOKEN = "browser-notify-token"
# A seeded appointment of the sandbox ("AC Repair - James"), never rescheduled: its reschedule is refused once.
REFUSED = "5545974000002555001"
HISTORY = "/crm/v7/Appointments_Rescheduled_History__s"
WAIT_MS = 20_000


@dataclass
class Stack:
    sandbox: str
    receiver: str
    console: str
    redis_url: str
    store: redis.Redis
    logs: Path

    def logs_text(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()}" for p in sorted(self.logs.glob("*.log")))

    def history(self, record_id: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = httpx.get(f"{self.sandbox}/_sandbox/history").json()["data"]
        return [row for row in rows if row["Appointment_Name"]["id"] == record_id]


@pytest.fixture
def stack(redis_url: str, tmp_path: Path) -> Iterator[Stack]:
    require_chromium()
    store = redis.Redis.from_url(redis_url)
    store.flushdb()
    ports = {name: free_port() for name in ("sandbox", "receiver", "console")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    env = stack_env(
        redis_url,
        urls["sandbox"],
        ZOHO_NOTIFY_TOKEN=NOTIFY_TOKEN,
        ZOHO_CHANNEL_IDS="1000000068001",
        CONSOLE_TOKEN=TOKEN,
        CONSOLE_RECEIVER_URL=urls["receiver"],
    )
    notify = ["--notify-url", f"{urls['receiver']}/webhooks/zoho", "--notify-token", NOTIFY_TOKEN]
    processes = [
        start(["sandbox", "--port", str(ports["sandbox"]), *notify], env, tmp_path, tmp_path / "sandbox.log"),
        start(["receiver", "--port", str(ports["receiver"])], env, tmp_path, tmp_path / "receiver.log"),
        start(["worker"], env, tmp_path, tmp_path / "worker.log"),
        start(["console", "--port", str(ports["console"])], env, tmp_path, tmp_path / "console.log"),
    ]
    try:
        wait_for(lambda: answers(f"{urls['sandbox']}/_sandbox/history"), "the sandbox")
        wait_for(lambda: answers(f"{urls['receiver']}/readyz"), "the receiver")
        wait_for(lambda: bool(store.exists(f"{QUEUE_NAME}:health-check")), "the worker")
        wait_for(lambda: answers(f"{urls['console']}/login"), "the console")
        yield Stack(urls["sandbox"], urls["receiver"], urls["console"], redis_url, store, tmp_path)
    finally:
        for process in processes:
            stop(process)
        store.close()


def demo_reschedule(stack: Stack) -> str:
    """The demo's Zoho story (sandbox/demo/zoho.py) against the stack; the id of the appointment it rescheduled."""
    printed: list[str] = []

    async def run() -> None:
        async with httpx.AsyncClient(base_url=stack.sandbox, timeout=10) as sandbox:
            day = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0) + timedelta(days=2)
            await ZohoStory(printed.append, sandbox, stack.receiver).run(stack.redis_url, day)

    asyncio.run(run())
    match = re.search(r"created appointment (\d+)", "\n".join(printed))
    assert match is not None, printed
    return match[1]


def refused_reschedule(stack: Stack) -> None:
    """Reschedule a seeded appointment while Zoho refuses the history row once: a dead letter of that action."""
    fault = {"method": "POST", "path_prefix": HISTORY, "status": 400, "times": 1}
    assert httpx.post(f"{stack.sandbox}/_sandbox/faults", json=[fault]).status_code == 200
    start = (datetime.now(UTC) + timedelta(days=3)).replace(hour=15, minute=0, second=0, microsecond=0)
    change = {"id": REFUSED, "Appointment_Start_Time": start.isoformat(timespec="seconds")}
    change |= {"Reschedule_Reason": "By Team", "Reschedule_Note": "Technician ill"}
    with httpx.Client(base_url=stack.sandbox, timeout=5) as zoho:
        answer = zoho.put("/crm/v7/Appointments__s", json={"data": [change]}, headers=sandbox_auth(zoho))
    assert answer.status_code == 200
    wait_for(lambda: stack.store.zcard(keys.DEADLETTER_INDEX) == 1, f"the dead letter\n{stack.logs_text()}")


def log_in(page: Page, stack: Stack) -> None:
    page.goto(f"{stack.console}/events")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fevents$"))
    page.fill("#token", TOKEN)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{stack.console}/events")


def events_of(page: Page, record_id: str) -> None:
    page.get_by_role("link", name="Events", exact=True).click()
    page.fill("input[name=record]", record_id)
    page.get_by_role("button", name="Filter").click()


def test_log_in_find_the_demos_reschedule_and_replay_a_dead_letter(stack: Stack) -> None:
    record_id = demo_reschedule(stack)
    refused_reschedule(stack)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(WAIT_MS)
            log_in(page, stack)

            # The demo's reschedule, in the event log and in full.
            events_of(page, record_id)
            reschedule = page.locator("table.events tbody tr", has_text="log_reschedule_history: created")
            expect(reschedule).to_have_count(1)
            expect(reschedule).to_contain_text("Appointment_Start_Time")
            reschedule.get_by_role("link").first.click()
            expect(page.locator("h1")).to_contain_text("Event")
            expect(page.locator("main")).to_contain_text(record_id)
            actions = page.locator("table", has_text="CRM ids")
            expect(actions).to_contain_text("zoho-log-reschedules")
            expect(actions).to_contain_text("created")

            # The refused reschedule's dead letter, replayed from its page.
            page.get_by_role("link", name="Dead letters", exact=True).click()
            letter = page.locator("tbody tr", has_text=REFUSED)
            expect(letter).to_contain_text("INVALID_DATA")
            letter.get_by_role("link").first.click()
            page.get_by_role("button", name="Replay").click()
            expect(page.locator("p.outcome")).to_have_text("Replayed 1, skipped 0.")

            # It becomes a logged reschedule: the replayed action's entry, once the worker has run it.
            events_of(page, REFUSED)
            replayed = page.locator("table.events tbody tr", has_text="(action replayed)")
            deadline = datetime.now(UTC) + timedelta(milliseconds=WAIT_MS)
            while replayed.count() == 0 and datetime.now(UTC) < deadline:
                page.wait_for_timeout(200)
                page.reload()
            expect(replayed).to_contain_text("log_reschedule_history: created")
            expect(replayed).to_contain_text("processed")
            expect(page.locator("table.events tbody tr", has_text="dead lettered")).to_have_count(1)
            page.get_by_role("link", name="Dead letters", exact=True).click()
            expect(page.locator("main")).to_contain_text("No dead letters")

            screenshot = os.environ.get("CRMFLOW_CONSOLE_SCREENSHOT")
            if screenshot:
                page.get_by_role("link", name="Events", exact=True).click()
                page.screenshot(path=screenshot)
        finally:
            browser.close()

    assert len(stack.history(record_id)) == 1
    assert len(stack.history(REFUSED)) == 1
