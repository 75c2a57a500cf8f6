"""The `notification_condition` of a watch channel: parse it and decide whether an edit matches. Pure.

Shape (Zoho v7 enable-notifications page): a list of
`{"type":"field_selection","module":{"api_name"|"id"},"field_selection":<node>}` where a node is either
`{"field":{"api_name":...}}` or `{"group_operator":"and"|"or","group":[<node>, <node>]}`. A group holds at
most two nodes and a condition at most 10 fields. The sandbox resolves fields by `api_name` only (it has no
field ids). A condition filters edits: an update notifies when the changed fields satisfy the selection;
inserts and deletes are not filtered.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sandbox.zoho.errors import RecordError

MAX_CONDITION_FIELDS = 10
MAX_GROUP_SIZE = 2


@dataclass(frozen=True)
class FieldNode:
    api_name: str

    def matches(self, changed: Collection[str]) -> bool:
        return self.api_name in changed

    def count(self) -> int:
        return 1


@dataclass(frozen=True)
class GroupNode:
    operator: str
    children: tuple[FieldNode | GroupNode, ...]

    def matches(self, changed: Collection[str]) -> bool:
        results = (child.matches(changed) for child in self.children)
        return all(results) if self.operator == "and" else any(results)

    def count(self) -> int:
        return sum(child.count() for child in self.children)


@dataclass(frozen=True)
class NotificationCondition:
    module: str
    selection: FieldNode | GroupNode


class _Bad(Exception):
    def __init__(self, code: str, path: str, **details: Any) -> None:
        super().__init__(code)
        self.code = code
        self.path = path
        self.details = details


def _node(raw: Any, path: str) -> FieldNode | GroupNode:
    if not isinstance(raw, dict):
        raise _Bad("INVALID_DATA", path, expected_data_type="jsonobject")
    if raw.get("field") is not None:
        field = raw["field"]
        if not isinstance(field, dict) or not isinstance(field.get("api_name"), str):
            raise _Bad("INVALID_DATA", f"{path}.field", expected_data_type="jsonobject")
        return FieldNode(field["api_name"])
    group = raw.get("group")
    if group is None:
        raise _Bad("MANDATORY_NOT_FOUND", f"{path}.field")
    if raw.get("group_operator") not in ("and", "or"):
        raise _Bad("INVALID_DATA", f"{path}.group_operator", supported_values=["or", "and"])
    if not isinstance(group, list) or not group or len(group) > MAX_GROUP_SIZE:
        raise _Bad("INVALID_DATA", f"{path}.group", maximum_length=MAX_GROUP_SIZE)
    return GroupNode(raw["group_operator"], tuple(_node(child, f"{path}.group[{i}]") for i, child in enumerate(group)))


def _module(raw: Any, path: str, module_ids: Mapping[str, str]) -> str:
    if not isinstance(raw, dict):
        raise _Bad("INVALID_DATA", path, expected_data_type="jsonobject")
    by_id = {module_id: name for name, module_id in module_ids.items()}
    name = raw.get("api_name")
    if name is None and raw.get("id") is not None:
        name = by_id.get(str(raw["id"]))
    if name not in module_ids:
        raise _Bad("INVALID_DATA", path)
    return str(name)


def _condition(raw: Any, path: str, module_ids: Mapping[str, str]) -> NotificationCondition:
    if not isinstance(raw, dict):
        raise _Bad("INVALID_DATA", path, expected_data_type="jsonobject")
    if raw.get("type") is None:
        raise _Bad("MANDATORY_NOT_FOUND", f"{path}.type")
    if raw["type"] != "field_selection":
        raise _Bad("INVALID_DATA", f"{path}.type", supported_values=["field_selection"])
    if raw.get("field_selection") is None:
        raise _Bad("DEPENDENT_FIELD_MISSING", f"{path}.field_selection")
    module = _module(raw.get("module"), f"{path}.module", module_ids)
    selection = _node(raw["field_selection"], f"{path}.field_selection")
    if selection.count() > MAX_CONDITION_FIELDS:
        raise _Bad("INVALID_DATA", f"{path}.field_selection", maximum_length=MAX_CONDITION_FIELDS)
    return NotificationCondition(module, selection)


_MESSAGES = {
    "INVALID_DATA": "invalid data",
    "MANDATORY_NOT_FOUND": "required field not found",
    "DEPENDENT_FIELD_MISSING": "DEPENDENT_FIELD_MISSING",
}


def parse_conditions(
    raw: Any, index: int, module_ids: Mapping[str, str]
) -> tuple[NotificationCondition, ...] | RecordError:
    """Parse `$.watch[index].notification_condition` (None means no filter)."""
    base = f"$.watch[{index}].notification_condition"
    if raw is None:
        return ()
    if not isinstance(raw, list):
        return RecordError(
            400, "INVALID_DATA", "invalid data", {"api_name": "notification_condition", "json_path": base}
        )
    try:
        return tuple(_condition(item, f"{base}[{i}]", module_ids) for i, item in enumerate(raw))
    except _Bad as bad:
        api_name = bad.path.rsplit(".", 1)[-1].split("[", 1)[0]
        details = {"api_name": api_name, "json_path": bad.path, **bad.details}
        return RecordError(400, bad.code, _MESSAGES[bad.code], details)


def condition_allows(conditions: tuple[NotificationCondition, ...], module: str, changed: Collection[str]) -> bool:
    """True when no condition names `module`, or one that does is satisfied by the changed fields."""
    relevant = [condition for condition in conditions if condition.module == module]
    return not relevant or any(condition.selection.matches(changed) for condition in relevant)
