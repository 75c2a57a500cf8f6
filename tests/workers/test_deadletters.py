"""The dead-letter store on real Redis: keeping, reading, filtering, deleting, purging, and bounded retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from arq.connections import ArqRedis

from workers.contract import ChangeEvent
from workers.deadletters import (
    INDEX_KEY,
    MAX_LETTERS,
    RETENTION,
    DeadLetter,
    DeadLetters,
    LetterFilter,
    dead_letter_id,
)

NOW = datetime(2026, 3, 2, 9, 15, 30, tzinfo=UTC)


def letter(name: str, failed_ago: timedelta = timedelta(minutes=5), **fields: Any) -> DeadLetter:
    """A job-level letter for record `name`, last failed `failed_ago` before NOW."""
    event = ChangeEvent(source="zoho", module="Appointments__s", record_id=name, operation="update", notified_at_ms=1)
    values: dict[str, Any] = {
        "id": dead_letter_id(event.job_id(), None, None),
        "source": "zoho",
        "module": "Appointments__s",
        "record_id": name,
        "event": event.model_dump(mode="json"),
        "error_class": "CrmTransientError",
        "error_code": "HTTP_500",
        "message": "gave up after 12 tries",
        "tries": 12,
        "first_failed_at": NOW - failed_ago,
        "last_failed_at": NOW - failed_ago,
    }
    return DeadLetter.model_validate(values | fields)


def store(redis: ArqRedis, now: datetime = NOW, **limits: Any) -> DeadLetters:
    return DeadLetters(redis, clock=lambda: now, **limits)


def ids(letters: list[DeadLetter]) -> list[str]:
    return [item.record_id for item in letters]


def test_documented_defaults() -> None:
    # The README states these; changing one without the other misleads operators.
    assert (RETENTION.days, RETENTION.seconds, MAX_LETTERS) == (14, 0, 100_000)


async def test_a_letter_is_kept_whole_and_read_back(redis: ArqRedis) -> None:
    kept = letter("a", rule="r", action="log", context={"changed": {"Start": {"old": 1, "new": 2}}})

    await store(redis).add(kept)

    assert await store(redis).get(kept.id) == kept
    assert await store(redis).all() == [kept]
    assert await store(redis).get("nope") is None


async def test_failing_again_updates_one_letter_and_keeps_the_first_failure(redis: ArqRedis) -> None:
    # Without the merge, each retry of the same work would forget when it first failed.
    first = letter("a", failed_ago=timedelta(hours=2), tries=3)
    again = letter("a", failed_ago=timedelta(minutes=1), tries=12)

    await store(redis).add(first)
    await store(redis).add(again)

    (kept,) = await store(redis).all()
    assert (kept.tries, kept.first_failed_at, kept.last_failed_at) == (12, first.first_failed_at, again.last_failed_at)


async def test_all_is_oldest_failure_first(redis: ArqRedis) -> None:
    for name, hours in (("b", 1), ("a", 3), ("c", 2)):
        await store(redis).add(letter(name, failed_ago=timedelta(hours=hours)))

    assert ids(await store(redis).all()) == ["a", "c", "b"]


async def test_each_letter_expires_retention_after_its_last_failure(redis: ArqRedis) -> None:
    # Without a TTL, letters nobody looks at would fill Redis forever.
    kept = letter("a", failed_ago=timedelta(days=1))

    await DeadLetters(redis).add(kept.model_copy(update={"last_failed_at": datetime.now(UTC) - timedelta(days=1)}))

    ttl = await redis.ttl(f"crmflow:deadletter:{kept.id}")
    assert (RETENTION - timedelta(days=1)).total_seconds() - 5 <= ttl <= (RETENTION - timedelta(days=1)).total_seconds()


async def test_expired_letters_leave_the_index_on_add(redis: ArqRedis) -> None:
    # Without trimming, the index would keep an entry for every letter ever written, long after the letters.
    old = letter("old", failed_ago=RETENTION + timedelta(minutes=1))
    await redis.zadd(INDEX_KEY, {old.id: old.last_failed_at.timestamp()})
    await redis.set(f"crmflow:deadletter:{old.id}", old.model_dump_json())

    await store(redis).add(letter("new"))

    assert await redis.zrange(INDEX_KEY, 0, -1) == [letter("new").id.encode()]
    assert await redis.exists(f"crmflow:deadletter:{old.id}") == 0


async def test_expired_letters_leave_the_index_on_list(redis: ArqRedis) -> None:
    await store(redis).add(letter("a", failed_ago=timedelta(days=10)))
    await store(redis).add(letter("b", failed_ago=timedelta(days=1)))

    later = store(redis, now=NOW + timedelta(days=5))

    assert ids(await later.all()) == ["b"]
    assert await redis.zcard(INDEX_KEY) == 1


async def test_the_oldest_letters_go_beyond_the_cap(redis: ArqRedis, caplog: pytest.LogCaptureFixture) -> None:
    # Without the cap, a failure storm (a CRM refusing everything for hours) could exhaust Redis's memory.
    capped = store(redis, max_letters=3)
    for age_h in (5, 4, 3, 2, 1):
        await capped.add(letter(f"r{age_h}", failed_ago=timedelta(hours=age_h)))

    assert ids(await capped.all()) == ["r3", "r2", "r1"]
    assert await redis.zcard(INDEX_KEY) == 3
    assert await redis.exists(f"crmflow:deadletter:{letter('r5').id}", f"crmflow:deadletter:{letter('r4').id}") == 0
    assert "dropped the 1 oldest" in caplog.text


async def test_trim_reports_what_it_removed(redis: ArqRedis) -> None:
    capped = store(redis, max_letters=1)
    await redis.zadd(INDEX_KEY, {"expired": (NOW - RETENTION).timestamp(), "x": NOW.timestamp(), "y": NOW.timestamp()})

    assert await capped.trim() == (1, 1)


async def test_find_filters_by_source_error_and_age(redis: ArqRedis) -> None:
    await store(redis).add(letter("zoho-old", failed_ago=timedelta(days=3)))
    await store(redis).add(letter("zoho-new", failed_ago=timedelta(minutes=10), error_code="NOT_ALLOWED"))
    await store(redis).add(letter("hubspot", failed_ago=timedelta(hours=5), source="hubspot"))

    def find(**where: Any) -> Any:
        return store(redis).find(LetterFilter(**where))

    assert ids(await find(source="hubspot")) == ["hubspot"]
    assert ids(await find(error_code="NOT_ALLOWED")) == ["zoho-new"]
    assert ids(await find(failed_before=NOW - timedelta(days=1))) == ["zoho-old"]
    assert ids(await find(failed_after=NOW - timedelta(hours=6))) == ["hubspot", "zoho-new"]
    assert ids(await find(source="zoho", failed_after=NOW - timedelta(days=7))) == ["zoho-old", "zoho-new"]


async def test_delete_removes_the_letter_and_its_index_entry(redis: ArqRedis) -> None:
    kept = letter("a")
    await store(redis).add(kept)

    assert await store(redis).delete(kept.id) is True
    assert await store(redis).delete(kept.id) is False
    assert await store(redis).get(kept.id) is None
    assert await redis.zcard(INDEX_KEY) == 0


async def test_purge_removes_letters_older_than_the_cutoff(redis: ArqRedis) -> None:
    for name, days in (("a", 9), ("b", 8), ("c", 1)):
        await store(redis).add(letter(name, failed_ago=timedelta(days=days)))

    assert await store(redis).purge(NOW - timedelta(days=7)) == 2
    assert ids(await store(redis).all()) == ["c"]
    assert await store(redis).purge(NOW - timedelta(days=7)) == 0


async def test_purge_keeps_what_the_filter_leaves_out(redis: ArqRedis) -> None:
    await store(redis).add(letter("zoho", failed_ago=timedelta(days=9)))
    await store(redis).add(letter("refused", failed_ago=timedelta(days=9), error_code="NOT_ALLOWED"))
    await store(redis).add(letter("hubspot", failed_ago=timedelta(days=9), source="hubspot"))

    purged = await store(redis).purge(NOW - timedelta(days=7), LetterFilter(source="zoho", error_code="HTTP_500"))

    assert purged == 1
    assert sorted(ids(await store(redis).all())) == ["hubspot", "refused"]


async def test_purge_spares_a_letter_that_failed_again_meanwhile(redis: ArqRedis) -> None:
    # The purge selects, then removes; the removal re-checks the last failure in Redis, so work that failed
    # again in between (a fresh failure nobody has seen) is not thrown away with the old letters.
    old = letter("a", failed_ago=timedelta(days=9))
    await store(redis).add(old)
    purging = store(redis)
    selected = await purging.find(LetterFilter(failed_before=NOW - timedelta(days=7)))
    await store(redis).add(letter("a", failed_ago=timedelta(seconds=1)))

    removed = await purging._remove([item.id for item in selected], failed_before=NOW - timedelta(days=7))

    assert removed == []
    assert ids(await store(redis).all()) == ["a"]
