"""Dead letters: list (filtered), show one, replay or purge one or many. The store, the replay and the text of
one letter are the `crmflow dlq` command's own (workers/deadletters.py, workers/replay.py, crmflow/dlq.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from arq.connections import ArqRedis
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from console.views import Views, json_response, wants_json
from crmflow.dlq import age, format_letter, letter_filter, parse_duration
from workers.deadletters import DeadLetter, DeadLetters
from workers.replay import Outcome, replay_letter, unreplayable

MAX_CHOSEN = 1000
# Letters a page shows (the newest); the JSON has them all, as `crmflow dlq list --json`.
MAX_ROWS = 500


class DeadLetterPages:
    def __init__(self, views: Views, redis: ArqRedis) -> None:
        self.views = views
        self.redis = redis
        self.store = DeadLetters(redis)

    def routes(self) -> list[Route]:
        return [
            Route("/deadletters", self.list, methods=["GET"]),
            Route("/deadletters/replay", self.replay, methods=["POST"]),
            Route("/deadletters/purge", self.purge, methods=["POST"]),
            Route("/deadletters/{letter_id}", self.show, methods=["GET"]),
        ]

    async def list(self, request: Request) -> Response:
        now = datetime.now(UTC)
        params = request.query_params
        source, error = params.get("source") or None, params.get("error") or None
        newer = params.get("newer_than") or None
        try:
            where = letter_filter(now, source, error, newer_than=parse_duration(newer) if newer else None)
        except ValueError as exc:
            raise HTTPException(400, f"newer_than: {exc}") from None
        letters = list(reversed(await self.store.find(where)))  # newest failure first
        if wants_json(request):
            return json_response([letter.model_dump(mode="json") for letter in letters])
        rows = [_row(letter, now) for letter in letters[:MAX_ROWS]]
        filters = {"source": source or "", "error": error or "", "newer_than": newer or ""}
        return self.views.render(request, "deadletters.html", rows=rows, total=len(letters), filters=filters)

    async def show(self, request: Request) -> Response:
        letter = await self.store.get(request.path_params["letter_id"])
        if letter is None:
            raise HTTPException(404, "no such dead letter (replayed, purged or expired)")
        if wants_json(request):
            return json_response(letter.model_dump(mode="json"))
        text = format_letter(letter, datetime.now(UTC))
        return self.views.render(
            request, "deadletter.html", letter=letter, text=text, unreplayable=unreplayable(letter)
        )

    async def replay(self, request: Request) -> Response:
        chosen = _chosen(await self.views.form(request))
        stamp_ms = int(datetime.now(UTC).timestamp() * 1000)  # one per request: a new job id for every letter
        outcomes: list[Outcome] = []
        records: dict[str, str] = {}
        for letter_id in chosen:
            letter = await self.store.get(letter_id)
            if letter is None:
                outcomes.append(Outcome(letter_id, reason="no such dead letter (replayed, purged or expired)"))
            else:
                records[letter.id] = letter.record_id
                outcomes.append(await replay_letter(self.redis, self.store, letter, stamp_ms=stamp_ms))
        replayed = [{"id": o.id, "job_id": o.job_id} for o in outcomes if o.job_id is not None]
        skipped = [{"id": o.id, "reason": o.reason} for o in outcomes if o.job_id is None]
        if wants_json(request):
            return json_response({"replayed": replayed, "skipped": skipped})
        return self.views.render(
            request, "done.html", action="replay", replayed=replayed, skipped=skipped, records=records
        )

    async def purge(self, request: Request) -> Response:
        chosen = _chosen(await self.views.form(request))
        removed = await self.store.discard(chosen)
        missing = [letter_id for letter_id in chosen if letter_id not in removed]
        if wants_json(request):
            return json_response({"purged": removed, "missing": missing})
        return self.views.render(request, "done.html", action="purge", purged=removed, missing=missing)


def _chosen(fields: dict[str, list[str]]) -> list[str]:
    """The letter ids a form chose (field `id`, repeated); 400 for none or too many."""
    ids = list(dict.fromkeys(value.strip() for value in fields.get("id", []) if value.strip()))
    if not ids:
        raise HTTPException(400, "choose at least one dead letter")
    if len(ids) > MAX_CHOSEN:
        raise HTTPException(400, f"at most {MAX_CHOSEN} dead letters at a time")
    return ids


def _row(letter: DeadLetter, now: datetime) -> dict[str, Any]:
    return {
        "letter": letter,
        "age": age(now - letter.last_failed_at),
        "rule_action": "/".join(part for part in (letter.rule, letter.action) if part) or "-",
        "replayable": unreplayable(letter) is None,
    }
