"""Rule checks: source, module and fields against the sources' catalogues, actions against the registry, and
templates compiled with their names checked. Pure.

A module's known fields are its built-in catalogue and, when the caller has it, the CRM's own field list for
that module (custom fields included; workers/field_lists.py): `extra_fields`, passed down from the loader.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ValidationError

from workers import sources
from workers.rules.model import (
    RESCHEDULE_FIELDS,
    RESCHEDULE_PREFIX,
    ActionSpec,
    Rule,
    UpdateRecordParams,
    is_reschedule_path,
    templates_of,
)
from workers.rules.problems import Loc, Problem, did_you_mean, validation_problems
from workers.rules.registry import ACTION_TYPES, NEEDS_RECORD
from workers.rules.schema import RuleDoc
from workers.rules.templates import template_problems

# (source, module) -> the fields the CRM's own field list reports for that module, custom fields included.
ExtraFields = Mapping[tuple[str, str], frozenset[str]]
# Offline: no field list, the built-in catalogues alone.
NO_EXTRA_FIELDS: ExtraFields = MappingProxyType({})


def field_catalogue(source: str, module: str, extra_fields: ExtraFields = NO_EXTRA_FIELDS) -> frozenset[str] | None:
    """The fields rules may name for `module` of `source` (None: no such source or module): the module's built-in
    catalogue and what the CRM's own field list adds (`extra_fields`).

    The one place rules checks learn a module's fields."""
    found = sources.module_of(source, module)
    if found is None:
        return None
    return found.catalogue | extra_fields.get((source, module), frozenset())


@dataclass(frozen=True)
class ActionParts:
    """An action's type and `with:` parameters as written, each None when it is not well formed."""

    loc: Loc
    type: str | None
    with_: Mapping[str, Any] | None


@dataclass(frozen=True)
class RuleParts:
    """What a rule names, as far as it is well formed: checked against the catalogues and the action registry."""

    loc: Loc
    source: str | None = None
    module: str | None = None
    # Trigger fields, then the first segment of each condition's field (or previous), each with its place in the
    # document; a condition's reschedule.* path is kept whole and checked against RESCHEDULE_FIELDS.
    fields: tuple[tuple[Loc, str], ...] = ()
    actions: tuple[ActionParts, ...] = ()
    # The operations the rule fires on (when.operation, or insert and update); None: not well formed.
    operations: frozenset[str] | None = None


def parts_of(doc: RuleDoc, loc: Loc) -> RuleParts:
    """The parts of a rule that passed the schema: all of them."""
    fields = [((*loc, "when", "changed", i), name) for i, name in enumerate(doc.when.changed)]
    fields += [condition_field((*loc, "conditions", i), c.field, c.previous) for i, c in enumerate(doc.conditions)]
    actions = tuple(ActionParts((*loc, "actions", i), a.type, a.with_) for i, a in enumerate(doc.actions))
    return RuleParts(loc, doc.source, doc.module, tuple(fields), actions, doc.when.operations())


def condition_field(loc: Loc, field: str | None, previous: str | None) -> tuple[Loc, str]:
    """What a condition names, to check: its path's first segment (a reschedule.* path whole) at its key."""
    if field is not None:
        return (*loc, "field"), field if is_reschedule_path(field) else field.split(".", 1)[0]
    assert previous is not None
    return (*loc, "previous"), previous if is_reschedule_path(previous) else previous.split(".", 1)[0]


def check_rule(
    doc: RuleDoc, loc: Loc, *, extra_fields: ExtraFields = NO_EXTRA_FIELDS
) -> tuple[Rule | None, list[Problem]]:
    """The validated rule, or None and the problems found; `loc` is the rule's place in the document."""
    actions, problems = check_parts(parts_of(doc, loc), extra_fields=extra_fields)
    if problems:
        return None, problems
    rule = Rule(
        name=doc.name,
        description=doc.description,
        source=doc.source,
        module=doc.module,
        when=doc.when,
        conditions=doc.conditions,
        actions=tuple(actions),
        enabled=doc.enabled,
    )
    return rule, []


def check_parts(
    parts: RuleParts, *, extra_fields: ExtraFields = NO_EXTRA_FIELDS
) -> tuple[list[ActionSpec], list[Problem]]:
    """The actions validated, and every problem of the parts: catalogue problems first, then each action's."""
    problems = catalogue_problems(parts, extra_fields=extra_fields)
    loc = parts.loc
    known_target = (
        parts.source is not None
        and parts.module is not None
        and not any(p.loc in {(*loc, "source"), (*loc, "module")} for p in problems)
    )
    actions: list[ActionSpec] = []
    for action in parts.actions:
        spec, action_problems = check_action(action, parts, check_target=known_target, extra_fields=extra_fields)
        problems += action_problems
        if spec is not None:
            actions.append(spec)
    return actions, problems + _delete_only_problems(parts)


def _delete_only_problems(parts: RuleParts) -> list[Problem]:
    """Actions on the record itself cannot run in a rule that fires on deletes only: the record is gone."""
    if parts.operations != frozenset({"delete"}):
        return []
    return [
        Problem(
            (*action.loc, "type"),
            f"action {action.type!r} acts on the record, which is gone when a rule fires on deletes only "
            "(when.operation: [delete]); use notify, or add insert or update to when.operation",
        )
        for action in parts.actions
        if action.type in NEEDS_RECORD
    ]


def catalogue_problems(parts: RuleParts, *, extra_fields: ExtraFields = NO_EXTRA_FIELDS) -> list[Problem]:
    """Unknown source, module (for that source) or fields (for that module); what is missing is not checked."""
    loc = parts.loc
    if parts.source is None:
        return []
    source = sources.source_named(parts.source)
    if source is None:
        known = ", ".join(sorted(s.name for s in sources.all_sources()))
        return [Problem((*loc, "source"), f"unknown source {parts.source!r} (known sources: {known})")]
    if parts.module is None:
        return []
    fields = field_catalogue(parts.source, parts.module, extra_fields)
    if fields is None:
        known = ", ".join(sorted(m.name for m in source.modules))
        message = f"unknown module {parts.module!r} for {parts.source} (known modules: {known})"
        return [Problem((*loc, "module"), message)]
    target = f"{parts.source}/{parts.module}"
    problems: list[Problem] = []
    for where, name in parts.fields:
        if is_reschedule_path(name):
            problems += _reschedule_problems(where, name)
        elif name not in fields:
            problems.append(Problem(where, f"unknown field {name!r} for {target}{did_you_mean(name, fields)}"))
    return problems


def _reschedule_problems(where: Loc, path: str) -> list[Problem]:
    """A condition naming the start-time change: only `field: reschedule.<one of RESCHEDULE_FIELDS>`."""
    known = ", ".join(f"{RESCHEDULE_PREFIX}{name}" for name in RESCHEDULE_FIELDS)
    if where[-1] == "previous":
        return [Problem(where, f"{path!r} has no value before the change: test it with 'field:' ({known})")]
    if path.removeprefix(RESCHEDULE_PREFIX) in RESCHEDULE_FIELDS:
        return []
    hint = did_you_mean(path, [f"{RESCHEDULE_PREFIX}{name}" for name in RESCHEDULE_FIELDS]) or f" (known: {known})"
    return [Problem(where, f"unknown field {path!r}{hint}")]


def check_action(
    action: ActionParts, parts: RuleParts, *, check_target: bool, extra_fields: ExtraFields = NO_EXTRA_FIELDS
) -> tuple[ActionSpec | None, list[Problem]]:
    """The action with its parameters validated by its type's model, or None and the problems found."""
    loc = action.loc
    if action.type is None:
        return None, []
    action_type = ACTION_TYPES.get(action.type)
    if action_type is None:
        known = sorted(ACTION_TYPES)
        hint = did_you_mean(action.type, known) or f" (known types: {', '.join(known)})"
        return None, [Problem((*loc, "type"), f"unknown action type {action.type!r}{hint}")]
    problems: list[Problem] = []
    if check_target and (parts.source, parts.module) not in action_type.targets:
        supported = ", ".join(sorted(f"{source}/{module}" for source, module in action_type.targets))
        message = f"action {action.type!r} cannot run on {parts.source}/{parts.module} (it supports: {supported})"
        problems.append(Problem((*loc, "type"), message))
    if action.with_ is None:
        return None, problems
    params: BaseModel | None = None
    try:
        params = action_type.params.model_validate(action.with_)
    except ValidationError as exc:
        problems += validation_problems(exc, action_type.params, (*loc, "with"))
    if problems or params is None:
        return None, problems
    if check_target and parts.source is not None and parts.module is not None:
        problems += params_problems(params, (*loc, "with"), parts.source, parts.module, extra_fields)
    if problems:
        return None, problems
    return ActionSpec(type=action.type, params=params), []


def params_problems(
    params: BaseModel, loc: Loc, source: str, module: str, extra_fields: ExtraFields = NO_EXTRA_FIELDS
) -> list[Problem]:
    """Problems of valid parameters against the module: each template's, and update_record's unknown fields.

    `loc` is the place of `with:`; each problem names the key (with.text, with.fields.Name, ...).
    """
    fields = field_catalogue(source, module, extra_fields)
    if fields is None:
        return []
    problems: list[Problem] = []
    if isinstance(params, UpdateRecordParams):
        target = f"{source}/{module}"
        problems += [
            Problem((*loc, "fields", name), f"unknown field {name!r} for {target}{did_you_mean(name, fields)}")
            for name in params.fields
            if name not in fields
        ]
    for where, text in templates_of(params):
        problems += [Problem((*loc, *where), message) for message in template_problems(text, fields)]
    return problems
