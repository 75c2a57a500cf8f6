"""Templates: render the Jinja2 text of an action's parameters in a sandbox, and find their problems. Pure.

Templates run in Jinja2's sandbox (ImmutableSandboxedEnvironment: no private or internal attributes, no unsafe
methods, no changing a list or mapping they are given), with StrictUndefined: a name or field that is not there
is an error, never an empty string. `None` renders as the empty string and a date-time as ISO 8601. Compiled
templates are cached by their text.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from workers.errors import ActionNotApplicableError
from workers.rules.problems import did_you_mean

# The variables every template sees (workers/rules/context.py RuleContext.variables).
VARIABLES: tuple[str, ...] = ("record", "previous", "change", "reschedule", "rule")
# The keys of `reschedule` (a start-time change) and of `rule` (the rule whose action renders it).
RESCHEDULE_KEYS: tuple[str, ...] = ("old_start", "new_start", "notice_hours")
RULE_KEYS: tuple[str, ...] = ("name", "source", "module")
# Variables whose attributes are the module's fields.
FIELD_VARIABLES: tuple[str, ...] = ("record", "previous", "change")
_KEYS: Mapping[str, tuple[str, ...]] = {"reschedule": RESCHEDULE_KEYS, "rule": RULE_KEYS}


class TemplateError(ActionNotApplicableError):
    """A template cannot be rendered (an undefined name, a filter on the wrong type): final, a dead letter."""

    code = "TEMPLATE"


def _finalize(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return value


_ENV = ImmutableSandboxedEnvironment(
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    finalize=_finalize,
    keep_trailing_newline=True,
)


@functools.lru_cache(maxsize=1024)
def _compiled(source: str) -> jinja2.Template:
    return _ENV.from_string(source)


def render(source: str, variables: Mapping[str, Any]) -> str:
    """`source` rendered with `variables`; TemplateError when it cannot be (never a partial text).

    Exceptions that are not the template's fault (an ActionNotApplicableError from a replayed record that
    does not keep a field, for example) pass through unchanged.
    """
    try:
        template = _compiled(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax error: {exc.message} (line {exc.lineno})") from exc
    try:
        return template.render(variables)
    except ActionNotApplicableError:
        raise
    except jinja2.TemplateError as exc:
        raise TemplateError(f"template cannot be rendered: {exc.message}") from exc
    except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
        # The message may quote a record's value: only its kind is said.
        raise TemplateError(f"template cannot be rendered: {type(exc).__name__} in an expression or filter") from exc


_LOADS: dict[type[nodes.Node], str] = {
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "from ... import",
    nodes.Extends: "extends",
}


def template_problems(source: str, known_fields: Collection[str]) -> list[str]:
    """What is wrong with `source` as a template: a syntax error, or each unknown name it uses.

    Known: the VARIABLES; `record.X`, `previous.X` and `change.X` (or `["X"]`) for X in `known_fields`;
    `reschedule.` RESCHEDULE_KEYS and `rule.` RULE_KEYS. Names the template sets itself ({% set %}, loop
    variables) are its own. An empty list: the template is fine.
    """
    try:
        tree = _ENV.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        return [f"template syntax error: {exc.message} (line {exc.lineno})"]
    problems = [
        f"unknown filter {node.name!r}" for node in tree.find_all(nodes.Filter) if node.name not in _ENV.filters
    ]
    problems += [f"unknown test {node.name!r}" for node in tree.find_all(nodes.Test) if node.name not in _ENV.tests]
    # A rule's template has no other templates to load: these could only ever fail when rendered.
    problems += [
        f"{{% {_LOADS[type(node)]} %}} is not available: a rule's template cannot load another template"
        for node in tree.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends))
    ]
    if problems:
        return list(dict.fromkeys(problems))
    try:
        _compiled(source)  # anything else compiling finds
        undeclared = meta.find_undeclared_variables(tree)
    except jinja2.TemplateError as exc:
        line = f" (line {exc.lineno})" if isinstance(exc, jinja2.TemplateSyntaxError) else ""
        return [f"template syntax error: {exc.message}{line}"]
    for name in sorted(undeclared):
        if name not in VARIABLES:
            problems.append(f"unknown name {name!r} (templates see: {', '.join(VARIABLES)})")
    for variable, key in _attributes(tree):
        if variable in FIELD_VARIABLES:
            if key not in known_fields:
                problems.append(f"unknown field {variable}.{key}{did_you_mean(key, known_fields)}")
        elif key not in _KEYS[variable]:
            problems.append(f"unknown name {variable}.{key} ({variable} has: {', '.join(_KEYS[variable])})")
    return list(dict.fromkeys(problems))


def template_fields(source: str) -> frozenset[str]:
    """The fields `source` reads as `record.X`, `previous.X` or `change.X` (so snapshots keep them); none if it
    does not parse."""
    try:
        tree = _ENV.parse(source)
    except jinja2.TemplateSyntaxError:
        return frozenset()
    return frozenset(key for variable, key in _attributes(tree) if variable in FIELD_VARIABLES)


def _attributes(tree: nodes.Template) -> list[tuple[str, str]]:
    """(variable, key) for each `variable.key` or `variable["key"]` of the template variables, in order.

    Only top-level names the template does not assign itself count (a `{% set record = ... %}` shadows).
    """
    shadowed = {target.name for target in tree.find_all(nodes.Name) if target.ctx in ("store", "param")}
    found: list[tuple[str, str]] = []
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getattr):
            target, key = node.node, node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            target, key = node.node, node.arg.value
        else:
            continue
        if isinstance(target, nodes.Name) and target.name in _KNOWN and target.name not in shadowed:
            found.append((target.name, key))
    return found


_KNOWN = frozenset(VARIABLES)
