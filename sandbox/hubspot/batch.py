"""`POST /crm/objects/2026-03/{type}/batch/read`: body checks, HubSpot's input limits, the 200/207 answer. Pure.

Limits (docs/hubspot.md, "Appointments, notes and associations API"): at most 100 inputs; at most 50 when
`propertiesWithHistory` is given (HubSpot's own message). Ids that do not exist (or are not in the asked
archived state) make the answer 207 with one OBJECT_NOT_FOUND error listing them in `context.ids` (the category
is UNCONFIRMED); an empty or all-missing batch still answers in the batch shape. Duplicate ids are read once;
results keep the input order. `idProperty` other than hs_object_id is refused because no emulated property is
unique.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sandbox.hubspot.associations import object_id_of
from sandbox.hubspot.catalogue import ObjectType
from sandbox.hubspot.errors import (
    MAX_BATCH_INPUTS,
    MAX_HISTORY_BATCH_INPUTS,
    invalid_json,
    too_many_history_inputs,
    too_many_inputs,
    validation_error,
)
from sandbox.hubspot.store import HubSpotStore
from sandbox.hubspot.time import format_iso


@dataclass(frozen=True)
class BatchRead:
    ids: list[str]
    properties: list[str]
    with_history: list[str]


def _names(raw: Any, key: str) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(name, str) for name in raw):
        raise invalid_json(f"`{key}` must be an array of property names")
    return list(raw)


def _ids(inputs: Sequence[Any]) -> list[str]:
    ids: list[str] = []
    for item in inputs:
        object_id = object_id_of(item.get("id")) if isinstance(item, dict) else None
        if object_id is None:
            raise invalid_json("each input needs an `id`")
        ids.append(object_id)
    return list(dict.fromkeys(ids))


def parse_batch_read(body: Any) -> BatchRead:
    """The request, or HubSpotApiError (400) for a malformed body or too many inputs."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise invalid_json("some of required attributes are not set [inputs]")
    inputs: list[Any] = body["inputs"]
    with_history = _names(body.get("propertiesWithHistory"), "propertiesWithHistory")
    if with_history and len(inputs) > MAX_HISTORY_BATCH_INPUTS:
        raise too_many_history_inputs()
    if len(inputs) > MAX_BATCH_INPUTS:
        raise too_many_inputs(len(inputs))
    if body.get("idProperty") not in (None, "hs_object_id"):
        raise validation_error(f"{body['idProperty']} is not a unique identifier property")
    return BatchRead(_ids(inputs), _names(body.get("properties"), "properties"), with_history)


def batch_read_answer(
    store: HubSpotStore, object_type: ObjectType, request: BatchRead, *, archived: bool, now: datetime
) -> tuple[int, dict[str, Any]]:
    """The status (200, or 207 when some ids were not found) and the BatchResponseSimplePublicObject body."""
    results: list[dict[str, Any]] = []
    missing: list[str] = []
    for object_id in request.ids:
        record = store.find(object_type, object_id, archived=archived)
        if record is None:
            missing.append(object_id)
        else:
            results.append(record.render(request.properties, request.with_history, custom=store.custom(object_type)))
    body: dict[str, Any] = {"status": "COMPLETE", "results": results}
    if missing:
        message = (
            f"Could not get some {object_type.label} objects, they may be deleted or not exist. "
            "Check that ids are valid."
        )
        body["numErrors"] = 1
        body["errors"] = [
            {"status": "error", "category": "OBJECT_NOT_FOUND", "message": message, "context": {"ids": missing}}
        ]
    body.update({"startedAt": format_iso(now), "completedAt": format_iso(now)})
    return (207 if missing else 200), body
