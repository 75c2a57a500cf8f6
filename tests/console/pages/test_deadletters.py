"""The dead-letter pages on real Redis: list, show, replay and purge one or many, as HTML or JSON."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest
from arq.connections import ArqRedis

from console.pages import deadletters
from tests.console.conftest import BEARER, HTML, JSON, csrf_of, log_in
from tests.test_dlq import keep, letter, refused
from workers.contract import QUEUE_NAME
from workers.deadletters import DeadLetters


async def test_the_list_shows_letters_newest_failure_first(client: httpx.AsyncClient, redis: ArqRedis) -> None:
    old, new = letter("1", failed_ago=timedelta(days=2)), refused("2", failed_ago=timedelta(minutes=5))
    await keep(redis, old, new)

    page = await client.get("/deadletters", headers=BEARER | HTML)
    data = await client.get("/deadletters", headers=BEARER | JSON)

    assert page.status_code == 200
    assert page.text.index(new.id) < page.text.index(old.id)
    assert "zoho-log-reschedules/log_reschedule_history" in page.text
    assert [item["id"] for item in data.json()] == [new.id, old.id]


async def test_the_list_filters_by_source_error_and_age(client: httpx.AsyncClient, redis: ArqRedis) -> None:
    old, new = letter("1", failed_ago=timedelta(days=2)), refused("2", failed_ago=timedelta(minutes=5))
    hubspot = letter("3", source="hubspot")
    await keep(redis, old, new, hubspot)

    async def ids(**params: str) -> list[str]:
        return [
            item["record_id"]
            for item in (await client.get("/deadletters", params=params, headers=BEARER | JSON)).json()
        ]

    assert await ids(source="hubspot") == ["3"]
    assert await ids(error="NOT_ALLOWED") == ["2"]
    assert sorted(await ids(newer_than="1d")) == ["2", "3"]
    bad = await client.get("/deadletters", params={"newer_than": "soon"}, headers=BEARER | JSON)
    assert bad.status_code == 400
    assert "30m, 12h or 7d" in bad.json()["error"]


async def test_one_letter_in_full_escaped(client: httpx.AsyncClient, redis: ArqRedis) -> None:
    hostile = letter(message="<script>alert(1)</script> & more")
    await keep(redis, hostile)

    page = await client.get(f"/deadletters/{hostile.id}", headers=BEARER | HTML)
    data = await client.get(f"/deadletters/{hostile.id}", headers=BEARER | JSON)
    missing = await client.get("/deadletters/0000000000000000", headers=BEARER | HTML)

    assert page.status_code == 200
    assert "<script>alert(1)" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page.text
    assert "gave up" not in page.text or "tries" in page.text
    assert data.json()["message"] == "<script>alert(1)</script> & more"
    assert missing.status_code == 404
    assert "no such dead letter" in missing.text


async def test_replaying_from_the_page_queues_the_work_and_removes_the_letters(
    client: httpx.AsyncClient, redis: ArqRedis
) -> None:
    first, second = letter("1"), letter("2")
    await keep(redis, first, second)
    await log_in(client)

    done = await client.post(
        "/deadletters/replay", data={"csrf": await csrf_of(client), "id": [first.id, second.id]}, headers=HTML
    )

    assert done.status_code == 200
    assert "Replayed 2, skipped 0." in done.text
    assert 'href="/events?record=1">event log of record 1</a>' in done.text
    assert await DeadLetters(redis).all() == []
    queued = sorted(raw.decode() for raw in await redis.zrange(QUEUE_NAME, 0, -1))
    assert len(queued) == 2
    assert all(re.fullmatch(r"zoho:Appointments__s:[12]:update:1763717400123:replay:\d+", job) for job in queued)


async def test_a_letter_that_cannot_be_replayed_is_skipped_and_kept(client: httpx.AsyncClient, redis: ArqRedis) -> None:
    old_worker = refused()  # an action letter without what running the action again takes
    await keep(redis, old_worker)

    done = await client.post("/deadletters/replay", data={"id": [old_worker.id, "gone"]}, headers=BEARER | JSON)
    page = await client.get(f"/deadletters/{old_worker.id}", headers=BEARER | HTML)

    assert done.json()["replayed"] == []
    assert [item["id"] for item in done.json()["skipped"]] == [old_worker.id, "gone"]
    assert "did not keep what running the action again takes" in done.json()["skipped"][0]["reason"]
    assert [item.id for item in await DeadLetters(redis).all()] == [old_worker.id]
    assert "Cannot be replayed" in page.text
    assert 'action="/deadletters/replay"' not in page.text


async def test_purging_from_the_page_removes_the_chosen_letters(client: httpx.AsyncClient, redis: ArqRedis) -> None:
    first, second, third = letter("1"), letter("2"), letter("3")
    await keep(redis, first, second, third)
    await log_in(client)

    done = await client.post(
        "/deadletters/purge", data={"csrf": await csrf_of(client), "id": [first.id, third.id]}, headers=HTML
    )

    assert "Purged 2." in done.text
    assert [item.id for item in await DeadLetters(redis).all()] == [second.id]
    assert await redis.zcard(QUEUE_NAME) == 0


async def test_a_post_must_choose_a_letter(client: httpx.AsyncClient) -> None:
    done = await client.post("/deadletters/purge", data={"id": " "}, headers=BEARER | JSON)

    assert (done.status_code, done.json()) == (400, {"error": "choose at least one dead letter"})


async def test_the_page_shows_the_newest_letters_and_says_how_many_more(
    client: httpx.AsyncClient, redis: ArqRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deadletters, "MAX_ROWS", 2)
    await keep(redis, *(letter(str(n), failed_ago=timedelta(minutes=n)) for n in range(1, 4)))

    page = await client.get("/deadletters", headers=BEARER | HTML)
    data = await client.get("/deadletters", headers=BEARER | JSON)

    assert "Showing the newest 2 of 3: filter to see the others." in page.text
    assert len(data.json()) == 3
