"""Pure checks for one note of POST /Notes or POST /Appointments__s/{id}/Notes: content, title and parent.

Source: Zoho's v7 "Create Notes" and "Get Notes" pages (docs/zoho-crm.md, "Notes"). Note_Content is mandatory
and Note_Title optional; Parent_Id is mandatory, since v4 a JSON object `{"module": {"api_name" or "id"}, "id"}`
(v2 and v3 took the parent's id as a string next to `se_module`; both forms are accepted on every version).
At most 100 notes per call. A note created under /{module}/{id}/Notes takes its parent from the path. The
checks that need the CRM's state (is there such a parent) live in the store. Zoho documents no length limit
for a note's title or content, so the sandbox enforces none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sandbox.zoho.errors import RecordError, mandatory_not_found, record_invalid, record_not_object

MAX_NOTES_PER_CALL = 100
NOTE_FIELDS = ("Note_Title", "Note_Content", "Parent_Id")


@dataclass(frozen=True)
class Parent:
    """The record a note belongs to: its module (by API name or module id) and its id."""

    module: str
    record_id: str


@dataclass(frozen=True)
class NoteDraft:
    """A note that passed the stateless checks."""

    parent: Parent
    title: str | None
    content: str


def _record_id(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return value if isinstance(value, str) and value.isdigit() else None


def _module_of(value: Any) -> str | None:
    """The module a Parent_Id's `module` names: its api_name, else its id."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, dict):
        for key in ("api_name", "id"):
            if isinstance(value.get(key), str) and value[key]:
                return str(value[key])
    return None


def _parent(item: Mapping[str, Any], index: int) -> Parent | RecordError:
    raw = item.get("Parent_Id")
    if raw is None:
        return mandatory_not_found(index, "Parent_Id")
    if isinstance(raw, dict):
        module, record_id = _module_of(raw.get("module")), _record_id(raw.get("id"))
    else:
        module, record_id = _module_of(item.get("se_module", item.get("$se_module"))), _record_id(raw)
        if module is None:
            return mandatory_not_found(index, "se_module")
    if module is None or record_id is None:
        return record_invalid(index, "Parent_Id")
    return Parent(module, record_id)


def parse_note(item: Any, index: int, path_parent: Parent | None = None) -> NoteDraft | RecordError:
    """The note `item` asks for, or its per-record error."""
    if not isinstance(item, dict):
        return record_not_object(index)
    content = item.get("Note_Content")
    if content is None:
        return mandatory_not_found(index, "Note_Content")
    if not isinstance(content, str):
        return record_invalid(index, "Note_Content", expected_data_type="text")
    title = item.get("Note_Title")
    if title is not None and not isinstance(title, str):
        return record_invalid(index, "Note_Title", expected_data_type="text")
    parent = path_parent if path_parent is not None else _parent(item, index)
    if isinstance(parent, RecordError):
        return parent
    return NoteDraft(parent, title, content)
