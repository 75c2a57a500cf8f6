"""Problems: what is wrong in a rule file, located by rule and field path, rendered one per line. Pure."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, get_args

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

Loc = tuple[str | int, ...]

_MAPPING_ERRORS = frozenset({"dict_type", "model_type", "model_attributes_type"})
_LIST_ERRORS = frozenset({"list_type", "tuple_type"})
_SHOULD = re.compile(r"^(?:Input|String|List|Tuple|Value) should ")
_UNABLE = re.compile(r", unable to .*$")


@dataclass(frozen=True)
class Problem:
    """One error. `loc` runs from the top of the document, e.g. ('rules', 0, 'when', 'changed', 0)."""

    loc: Loc
    message: str


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """The hint " (did you mean 'X'?)" for the closest candidate (case-insensitive match first), or ""."""
    choices = sorted(candidates)
    same_but_case = [c for c in choices if c.lower() == word.lower()]
    close = same_but_case or difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def path_text(loc: Loc) -> str:
    """('when', 'changed', 0) -> 'when.changed[0]'."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def render(origin: str, problem: Problem, rule_names: Mapping[int, str]) -> str:
    """'<file>: rule '<name>' (rules[i]): <field path>: <message>'; parts that do not apply are left out."""
    loc = problem.loc
    where: list[str] = [origin]
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        index = loc[1]
        name = rule_names.get(index)
        where.append(f"rule {name!r} (rules[{index}])" if name is not None else f"rules[{index}]")
        loc = loc[2:]
    if loc:
        where.append(path_text(loc))
    return ": ".join([*where, problem.message])


def key_order(*models: type[BaseModel]) -> dict[str, int]:
    """Each key of the models (as written: aliases) by its place, the first model's keys first."""
    order: dict[str, int] = {}
    for model in models:
        for name, info in model.model_fields.items():
            order.setdefault(info.alias or name, len(order))
    return order


def in_document_order(problems: Iterable[Problem], order: Mapping[str, int]) -> list[Problem]:
    """The problems by place: keys in `order`, items by index, a part's own problems after its contents'.

    Problems at the same place keep the order they came in.
    """

    def place(problem: Problem) -> tuple[tuple[int, int], ...]:
        steps = tuple((0, part if isinstance(part, int) else order.get(part, len(order))) for part in problem.loc)
        return (*steps, (1, 0))

    return sorted(problems, key=place)


def validation_problems(exc: ValidationError, model: type[BaseModel], prefix: Loc) -> list[Problem]:
    """Problems for a pydantic error raised validating `model` at `prefix` in the document."""
    problems: list[Problem] = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        if error["type"] == "extra_forbidden":
            key = loc[-1]
            message = f"unknown key {key!r}{_allowed(str(key), _keys_at(model, loc[:-1]))}"
            problems.append(Problem(prefix + loc[:-1], message))
        elif not _only_item_errors(error):
            problems.append(Problem(prefix + loc, _message(error)))
    return problems


def _only_item_errors(error: ErrorDetails) -> bool:
    # pydantic adds "too short" to a list whose items failed; the item errors already say it all.
    if error["type"] != "too_short":
        return False
    given = error["input"]
    return isinstance(given, list | tuple) and len(given) >= error.get("ctx", {}).get("min_length", 0)


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    ctx = error.get("ctx", {})
    if kind == "missing":
        return "is required"
    if kind in {"value_error", "assertion_error"}:
        return str(ctx["error"])
    if kind in {"too_short", "string_too_short"} and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind in _MAPPING_ERRORS:
        return f"must be a mapping (key: value), not {_kind(error['input'])}"
    if kind in _LIST_ERRORS:
        return f"must be a list, not {_kind(error['input'])}"
    message = _UNABLE.sub("", _SHOULD.sub("must ", error["msg"]))
    if kind.endswith(("_type", "_parsing")) or kind == "literal_error":
        message += f", not {_kind(error['input'])}"
    return message


def _kind(value: Any) -> str:
    if value is None:
        return "empty (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _allowed(key: str, allowed: list[str]) -> str:
    return did_you_mean(key, allowed) or (f" (allowed: {', '.join(allowed)})" if allowed else "")


def _keys_at(model: type[BaseModel], loc: Loc) -> list[str]:
    """The keys of the model that `loc` leads to from `model`; none when it leads to no model."""
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None:
            return []
        if isinstance(part, int):
            continue
        info = next((f for n, f in current.model_fields.items() if (f.alias or n) == part), None)
        current = _model_in(info.annotation) if info is not None else None
    return [info.alias or name for name, info in current.model_fields.items()] if current else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and not get_args(annotation) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
