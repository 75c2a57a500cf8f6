"""Templated: an action's templates rendered with what its rule saw (record, previous, change, reschedule, rule).

A template that cannot be rendered raises TemplateError (workers/rules/templates.py), which is final: the
action becomes a dead letter before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping

from workers.rules.templates import render
from workers.sources.base import ActionRun


def rendered(run: ActionRun, templates: Mapping[str, str]) -> dict[str, str]:
    """Each template of `templates` rendered, under the same name, in the same order."""
    variables = run.context.variables()
    return {name: render(template, variables) for name, template in templates.items()}
