"""Rule checks: source, module and fields against the sources' catalogues, actions against the registry. Pure."""

from __future__ import annotations

from pydantic import BaseModel, ValidationError

from workers import sources
from workers.rules.model import ActionSpec, Rule
from workers.rules.problems import Loc, Problem, did_you_mean, validation_problems
from workers.rules.registry import ACTION_TYPES
from workers.rules.schema import ActionDoc, RuleDoc


def check_rule(doc: RuleDoc, loc: Loc) -> tuple[Rule | None, list[Problem]]:
    """The validated rule, or None and the problems found; `loc` is the rule's place in the document."""
    problems = catalogue_problems(doc, loc)
    known_target = not any(p.loc in {(*loc, "source"), (*loc, "module")} for p in problems)
    actions: list[ActionSpec] = []
    for index, action in enumerate(doc.actions):
        spec, action_problems = check_action(action, doc, (*loc, "actions", index), check_target=known_target)
        problems += action_problems
        if spec is not None:
            actions.append(spec)
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


def catalogue_problems(doc: RuleDoc, loc: Loc) -> list[Problem]:
    """Unknown source, module (for that source) or fields (for that module)."""
    source = sources.source_named(doc.source)
    if source is None:
        known = ", ".join(sorted(s.name for s in sources.all_sources()))
        return [Problem((*loc, "source"), f"unknown source {doc.source!r} (known sources: {known})")]
    module = source.module(doc.module)
    if module is None:
        known = ", ".join(sorted(m.name for m in source.modules))
        message = f"unknown module {doc.module!r} for {doc.source} (known modules: {known})"
        return [Problem((*loc, "module"), message)]
    fields = module.catalogue
    named: list[tuple[Loc, str]] = [((*loc, "when", "changed", i), f) for i, f in enumerate(doc.when.changed)]
    named += [((*loc, "conditions", i, "field"), c.field.split(".", 1)[0]) for i, c in enumerate(doc.conditions)]
    target = f"{doc.source}/{doc.module}"
    return [
        Problem(where, f"unknown field {name!r} for {target}{did_you_mean(name, fields)}")
        for where, name in named
        if name not in fields
    ]


def check_action(
    action: ActionDoc, doc: RuleDoc, loc: Loc, *, check_target: bool
) -> tuple[ActionSpec | None, list[Problem]]:
    """The action with its parameters validated by its type's model, or None and the problems found."""
    action_type = ACTION_TYPES.get(action.type)
    if action_type is None:
        known = sorted(ACTION_TYPES)
        hint = did_you_mean(action.type, known) or f" (known types: {', '.join(known)})"
        return None, [Problem((*loc, "type"), f"unknown action type {action.type!r}{hint}")]
    problems: list[Problem] = []
    if check_target and (doc.source, doc.module) not in action_type.targets:
        supported = ", ".join(sorted(f"{source}/{module}" for source, module in action_type.targets))
        message = f"action {action.type!r} cannot run on {doc.source}/{doc.module} (it supports: {supported})"
        problems.append(Problem((*loc, "type"), message))
    params: BaseModel | None = None
    try:
        params = action_type.params.model_validate(action.with_)
    except ValidationError as exc:
        problems += validation_problems(exc, action_type.params, (*loc, "with"))
    if problems or params is None:
        return None, problems
    return ActionSpec(type=action.type, params=params), []
