"""Channel upkeep against the sandbox's /actions/watch (in-process) and real Redis: subscribe, keep, renew, fail."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis
from pydantic import SecretStr

from crmflow.zoho_cli import channel_rows
from sandbox.app import create_app
from sandbox.config import SandboxConfig
from tests.sandbox.harness import FakeClock
from tests.workers.harness import sandbox_zoho, worker_config
from workers import keys
from workers.channel_upkeep import ChannelFailures, channel_duty, keep_channels, subscribe
from workers.channels import Outcome, Wanted, asked_expiry
from workers.crm.zoho import ZohoClient
from workers.duties import DutyIncomplete
from workers.fetch import CrmClients
from workers.main import worker_duties

START = datetime(2026, 11, 30, 5, 12, 7, tzinfo=UTC)
TOKEN = "the-receivers-notify-token"
FIRST, SECOND = "1000000068001", "1000000068002"
WANTED = Wanted((FIRST, SECOND), "https://crmflow.example.com", SecretStr(TOKEN))
WATCH = "/crm/v7/actions/watch"


@dataclass
class Zoho:
    """The sandbox, a ZohoClient talking to it, and every request the client sent."""

    clock: FakeClock
    http: httpx.AsyncClient
    client: ZohoClient
    sent: list[str]

    async def auth(self) -> dict[str, str]:
        """An Authorization header of the test's own (the sandbox allows ten refreshes in ten minutes)."""
        token = (await self.http.post("/oauth/v2/token", data=SandboxConfig().refresh_form())).json()["access_token"]
        return {"Authorization": f"Zoho-oauthtoken {token}"}

    async def listed(self) -> list[dict[str, Any]]:
        """GET /actions/watch as Zoho answers it (token included)."""
        response = await self.http.get(WATCH, headers=await self.auth())
        return [] if response.status_code == 204 else list(response.json()["watch"])

    async def expire(self, channel_id: str, in_s: float = 0) -> None:
        response = await self.http.post(f"/_sandbox/channels/{channel_id}/expire", json={"in_s": in_s})
        assert response.status_code == 200, response.text

    def calls(self) -> list[str]:
        return [call for call in self.sent if "/oauth/" not in call]


@pytest.fixture
async def zoho(redis: ArqRedis) -> AsyncIterator[Zoho]:
    """A sandbox with no channel (as `crmflow sandbox` without --notify-url) on a clock the test moves."""
    clock = FakeClock(START)
    app = create_app(SandboxConfig(), clock=clock)
    sent: list[str] = []

    async def log(request: httpx.Request) -> None:
        sent.append(f"{request.method} {request.url.path}")

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sandbox", event_hooks={"request": [log]}
    ) as http:
        yield Zoho(clock, http, sandbox_zoho(redis, http), sent)


def mock_zoho(redis: ArqRedis, api: Callable[[httpx.Request], httpx.Response]) -> ZohoClient:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/v2/token":
            return httpx.Response(200, json={"access_token": "t1", "expires_in": 3600})
        return api(request)

    return sandbox_zoho(redis, httpx.AsyncClient(transport=httpx.MockTransport(handle), base_url="http://sandbox"))


async def test_subscribe_enables_each_channel_with_the_full_body(zoho: Zoho) -> None:
    outcomes = await subscribe(zoho.client, WANTED, START)

    assert [(o.channel_id, o.done, o.expires_at, o.error) for o in outcomes] == [
        (FIRST, "enabled", asked_expiry(START), None),
        (SECOND, "enabled", asked_expiry(START), None),
    ]
    assert zoho.calls() == [f"POST {WATCH}"]
    listed = await zoho.listed()
    assert [(c["channel_id"], c["channel_expiry"]) for c in listed] == [
        (FIRST, "2026-12-07T04:12:07+00:00"),
        (SECOND, "2026-12-07T04:12:07+00:00"),
    ]
    assert listed[0] | {"channel_id": "", "channel_expiry": ""} == {
        "notify_on_related_action": False,
        "channel_expiry": "",
        "return_affected_field_values": True,
        "resource_uri": "https://www.zohoapis.com/crm/v2/Appointments__s",
        "resource_id": "5545974000000091001",
        "notify_url": "https://crmflow.example.com/webhooks/zoho",
        "resource_name": "Appointments__s",
        "fields": None,
        "notification_condition": None,
        "channel_id": "",
        "events": ["Appointments__s.create", "Appointments__s.edit", "Appointments__s.delete"],
        "token": TOKEN,
    }


async def test_a_check_enables_the_missing_and_then_costs_one_get(zoho: Zoho) -> None:
    first = await keep_channels(zoho.client, WANTED, START)
    calls_after_first = zoho.calls()
    second = await keep_channels(zoho.client, WANTED, START + timedelta(hours=1))

    assert [(o.done, o.why) for o in first] == [("enabled", "Zoho does not have it")] * 2
    assert calls_after_first == [f"GET {WATCH}", f"POST {WATCH}"]
    assert [(o.done, o.why, o.expires_at) for o in second] == [("ok", "6d 22h left", asked_expiry(START))] * 2
    assert zoho.calls()[len(calls_after_first) :] == [f"GET {WATCH}"]


async def test_renewal_near_expiry_is_a_patch_that_keeps_events_and_token(zoho: Zoho) -> None:
    await subscribe(zoho.client, WANTED, START)
    zoho.clock.advance(days=5, hours=1)  # less than two days left
    now = zoho.clock.now

    outcomes = await keep_channels(zoho.client, WANTED, now)

    assert [(o.done, o.why, o.expires_at, o.error) for o in outcomes] == [
        ("renewed", "expires in 1d 22h", asked_expiry(now), None)
    ] * 2
    assert zoho.calls()[-2:] == [f"GET {WATCH}", f"PATCH {WATCH}"]
    listed = await zoho.listed()
    assert {(c["channel_expiry"], c["token"], tuple(c["events"])) for c in listed} == {
        (
            "2026-12-12T05:12:07+00:00",
            TOKEN,
            ("Appointments__s.create", "Appointments__s.edit", "Appointments__s.delete"),
        )
    }


async def test_a_channel_zoho_deleted_on_expiry_is_enabled_again(zoho: Zoho) -> None:
    await subscribe(zoho.client, WANTED, START)
    await zoho.expire(FIRST)
    assert [c["channel_id"] for c in await zoho.listed()] == [SECOND]

    outcomes = await keep_channels(zoho.client, WANTED, START, renew_all=True)

    assert [(o.channel_id, o.done) for o in outcomes] == [(FIRST, "enabled"), (SECOND, "renewed")]
    assert zoho.calls()[-3:] == [f"GET {WATCH}", f"POST {WATCH}", f"PATCH {WATCH}"]
    assert {c["channel_id"]: c["token"] for c in await zoho.listed()} == {FIRST: TOKEN, SECOND: TOKEN}


async def test_a_channel_someone_changed_is_put_back(zoho: Zoho) -> None:
    await subscribe(zoho.client, WANTED, START)
    # A PATCH without the token, as another tool might send: Zoho wipes the token.
    body = {
        "watch": [{"channel_id": FIRST, "events": ["Appointments__s.edit"], "channel_expiry": "2026-12-05T00:00:00Z"}]
    }
    patched = await zoho.http.patch(WATCH, json=body, headers=await zoho.auth())
    assert patched.status_code == 200

    (first, second) = await keep_channels(zoho.client, WANTED, START)

    assert (first.done, second.done) == ("renewed", "ok")
    assert "it has no token" in first.why and TOKEN not in first.why
    assert {c["channel_id"]: (c["token"], len(c["events"])) for c in await zoho.listed()}[FIRST] == (TOKEN, 3)


async def test_the_silent_one_hour_fallback_is_detected(zoho: Zoho) -> None:
    # This machine's clock two hours ahead of Zoho's: the expiry asked is a week and an hour ahead for Zoho,
    # which silently grants one hour instead.
    ahead = START + timedelta(hours=2)

    outcomes = await subscribe(zoho.client, WANTED, ahead)

    assert {o.done for o in outcomes} == {"enabled"}
    assert all(o.error is not None and "silent one-hour fallback" in o.error for o in outcomes)
    assert {o.expires_at for o in outcomes} == {START + timedelta(hours=1)}


async def test_a_grant_of_one_hour_from_a_mock_zoho_is_a_failure(redis: ArqRedis) -> None:
    def api(request: httpx.Request) -> httpx.Response:
        item = json.loads(request.content)["watch"][0]
        granted = (START + timedelta(hours=1)).isoformat()
        events = [{"channel_expiry": granted, "channel_id": item["channel_id"], "resource_name": "Appointments__s"}]
        return httpx.Response(
            201, json={"watch": [{"code": "SUCCESS", "details": {"events": events}, "status": "success"}]}
        )

    wanted = Wanted((FIRST,), "https://crmflow.example.com", SecretStr(TOKEN))
    (outcome,) = await subscribe(mock_zoho(redis, api), wanted, START)

    assert outcome.error is not None and outcome.error.startswith(
        "Zoho granted an expiry of 2026-11-30T06:12:07+00:00 instead of the 2026-12-07T04:12:07+00:00 asked"
    )


async def test_a_mixed_answer_fails_only_the_refused_channel(redis: ArqRedis) -> None:
    def api(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(204)
        granted = {"events": [{"channel_expiry": asked_expiry(START).isoformat(), "channel_id": FIRST}]}
        refused = {"api_name": "channel_id", "json_path": "$.watch[1].channel_id"}
        answer = [
            {"code": "SUCCESS", "details": granted, "message": "subscribed", "status": "success"},
            {"code": "INVALID_DATA", "details": refused, "message": "invalid data", "status": "error"},
        ]
        return httpx.Response(207, json={"watch": answer})

    outcomes = await keep_channels(mock_zoho(redis, api), WANTED, START)

    assert [(o.channel_id, o.done, o.error) for o in outcomes] == [
        (FIRST, "enabled", None),
        (SECOND, "not enabled", "INVALID_DATA: invalid data (channel_id)"),
    ]


async def test_a_refused_listing_fails_every_channel_and_names_the_scope(redis: ArqRedis) -> None:
    def api(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            401, json={"code": "OAUTH_SCOPE_MISMATCH", "details": {}, "message": "invalid oauth scope"}
        )

    outcomes = await keep_channels(mock_zoho(redis, api), WANTED, START)

    assert [o.error for o in outcomes] == [
        "listing the channels failed: OAUTH_SCOPE_MISMATCH: invalid oauth scope "
        "(the refresh token needs the scope ZohoCRM.notifications.ALL)"
    ] * 2


async def test_the_duty_records_a_channel_it_could_not_keep_and_forgets_it_once_kept(
    zoho: Zoho, redis: ArqRedis, caplog: pytest.LogCaptureFixture
) -> None:
    duty = channel_duty(zoho.client, redis, WANTED, 3600, lambda: zoho.clock.now + timedelta(hours=2), "worker w1")
    failures = ChannelFailures(redis)

    with caplog.at_level(logging.ERROR, logger="crmflow.channels"), pytest.raises(DutyIncomplete) as incomplete:
        await duty.run()

    # Raised, so that the duty's run is recorded as failed and tried again within a minute (workers/duties.py).
    failed = str(incomplete.value)
    assert failed.startswith(f"{FIRST} enabled (Zoho does not have it): Zoho granted an expiry of")
    assert set(await failures.all()) == {FIRST, SECOND}
    assert (await failures.all())[FIRST].by == "worker w1"
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        f"zoho channel {cid} could not be kept (enabled; Zoho does not have it)" for cid in (FIRST, SECOND)
    ]
    assert all(TOKEN not in record.getMessage() for record in caplog.records)

    kept = await channel_duty(zoho.client, redis, WANTED, 3600, zoho.clock, "worker w1").run()

    # The one-hour channels are renewed, now that the clocks agree.
    assert kept == f"{FIRST} renewed (expires in 1h 0m): 6d 23h left; {SECOND} renewed (expires in 1h 0m): 6d 23h left"
    assert await failures.all() == {}


async def test_each_expiry_zoho_reports_is_kept_for_the_metrics_and_goes_with_the_channel(
    zoho: Zoho, redis: ArqRedis
) -> None:
    outcomes = await keep_channels(zoho.client, WANTED, zoho.clock.now)
    failures = ChannelFailures(redis)

    await failures.record(outcomes, zoho.clock.now, by="worker w1")
    expiry = await redis.hgetall(keys.ZOHO_CHANNEL_EXPIRY)  # type: ignore[misc]

    granted = {o.channel_id: o.expires_at for o in outcomes}
    assert {k.decode(): datetime.fromtimestamp(float(v), UTC) for k, v in expiry.items()} == granted
    await failures.forget([FIRST])
    assert set(await redis.hkeys(keys.ZOHO_CHANNEL_EXPIRY)) == {SECOND.encode()}  # type: ignore[misc]


async def test_a_channel_dropped_from_the_wanted_ones_loses_its_expiry_and_failure_at_the_next_run(
    zoho: Zoho, redis: ArqRedis
) -> None:
    await channel_duty(zoho.client, redis, WANTED, 3600, zoho.clock, "worker w1").run()
    dropped = "1000000068003"
    await redis.hset(keys.ZOHO_CHANNEL_EXPIRY, dropped, str(START.timestamp()))  # type: ignore[misc]
    await ChannelFailures(redis).record([Outcome(dropped, "not renewed", error="HTTP 500")], START, by="w0")

    await channel_duty(zoho.client, redis, WANTED, 3600, zoho.clock, "worker w1").run()

    # Nothing renews a channel no longer wanted: its expiry kept would fire CrmflowZohoChannelExpiringSoon for good.
    assert set(await redis.hkeys(keys.ZOHO_CHANNEL_EXPIRY)) == {FIRST.encode(), SECOND.encode()}  # type: ignore[misc]
    assert await ChannelFailures(redis).all() == {}


async def test_the_channels_view_never_shows_the_token(zoho: Zoho, redis: ArqRedis) -> None:
    wanted = Wanted((FIRST,), "https://crmflow.example.com", SecretStr(TOKEN))
    await subscribe(zoho.client, wanted, START)
    failures = ChannelFailures(redis)
    await failures.record(await subscribe(zoho.client, WANTED, START + timedelta(hours=2)), START, by="test")

    rows = channel_rows(await zoho.client.list_channels(), (FIRST, "1000000068003"), await failures.all(), START)

    assert [(r["channel_id"], r["wanted"], r["status"]) for r in rows] == [
        (FIRST, True, "renewal due"),
        (SECOND, False, "renewal due"),
        ("1000000068003", True, "missing"),
    ]
    assert rows[0]["has_token"] is True
    assert rows[0]["last_failure"]["reason"].startswith("enabled: Zoho granted an expiry of")
    assert TOKEN not in json.dumps(rows)


def test_workers_keep_channels_only_when_zoho_the_url_and_the_ids_are_set(redis_url: str) -> None:
    crm = CrmClients({"zoho": sandbox_zoho(None, httpx.AsyncClient())})  # type: ignore[arg-type]
    full = {"PUBLIC_BASE_URL": "https://crmflow.example.com", "ZOHO_CHANNEL_IDS": FIRST, "ZOHO_NOTIFY_TOKEN": TOKEN}

    def duties(**settings: Any) -> list[tuple[str, float]]:
        return [(d.name, d.interval_s) for d in worker_duties(worker_config(redis_url, **settings), None, crm)]  # type: ignore[arg-type]

    assert duties(**full) == [("zoho-channels", 3600)]
    assert duties(**full, ZOHO_CHANNEL_CHECK_S=5) == [("zoho-channels", 5)]
    assert duties(**(full | {"PUBLIC_BASE_URL": None})) == []
    assert duties(**(full | {"ZOHO_CHANNEL_IDS": ""})) == []
    assert [(d.name) for d in worker_duties(worker_config(redis_url, **full), None, CrmClients({}))] == []  # type: ignore[arg-type]


def test_a_worker_that_would_keep_channels_needs_the_notify_token(redis_url: str) -> None:
    settings = {"PUBLIC_BASE_URL": "https://crmflow.example.com", "ZOHO_CHANNEL_IDS": FIRST}

    with pytest.raises(ValueError, match="ZOHO_NOTIFY_TOKEN: is not set; workers keep the Zoho channels"):
        worker_config(redis_url, **settings)
    assert worker_config(redis_url, **settings, ZOHO_CHANNEL_CHECK_S=0).zoho_notify_token is None
