"""Custom fields: what the sandbox's CRMs report in their field lists besides their built-in fields. Pure.

Set at start-up (`crmflow sandbox --custom-field zoho:Appointments__s:Visit_Priority`, SandboxConfig.custom_fields)
or at run time (POST /_sandbox/fields/{source}/{module}); `reset` goes back to the configured ones. The field
lists show them (Zoho's GET /crm/v7/settings/fields, HubSpot's GET /crm/properties/2026-03/{objectType}) and the
records carry them: Zoho's GET of an appointment (null until set), HubSpot's appointment properties
(sandbox.hubspot.custom_properties: written by type, with history and webhooks).

Names follow each CRM's rule for API names: Zoho `^[A-Za-z][A-Za-z0-9_]*$`, at most 50 characters (Zoho's
field metadata schema); HubSpot lower-case letters, digits and underscores, starting with a letter (HubSpot's
rule for internal property names), at most 100 characters (the sandbox's cap). Types are the CRM's own
names (Zoho `data_type`, HubSpot `type`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sandbox.hubspot.catalogue import APPOINTMENT_PROPERTIES
from sandbox.zoho.fields import BUILT_IN_FIELDS as ZOHO_APPOINTMENT_FIELDS

# The modules whose field lists the sandbox serves, with their built-in fields.
BUILT_IN: Mapping[tuple[str, str], frozenset[str]] = {
    ("zoho", "Appointments__s"): ZOHO_APPOINTMENT_FIELDS,
    ("hubspot", "appointments"): frozenset(APPOINTMENT_PROPERTIES),
}
NAME_PATTERNS = {"zoho": re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,49}$"), "hubspot": re.compile(r"^[a-z][a-z0-9_]{0,99}$")}
TYPES: Mapping[str, tuple[str, ...]] = {
    "zoho": ("text", "textarea", "integer", "double", "currency", "boolean", "date", "datetime", "picklist", "email"),
    "hubspot": ("string", "number", "bool", "date", "datetime", "enumeration", "phone_number"),
}
DEFAULT_TYPE = {"zoho": "text", "hubspot": "string"}


@dataclass(frozen=True)
class CustomField:
    """One custom field as its CRM's field list shows it."""

    name: str
    type: str
    label: str


def custom_field(source: str, module: str, raw: Any) -> CustomField:
    """A custom field from `{"name": ..., "type": ..., "label": ...}` (type and label optional); ValueError."""
    built_in = BUILT_IN.get((source, module))
    if built_in is None:
        known = ", ".join(f"{s}/{m}" for s, m in BUILT_IN)
        raise ValueError(f"no field list for {source}/{module} in the sandbox (it has: {known})")
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise ValueError('expected {"name": <API name>, "type": <type>, "label": <label>} (type and label optional)')
    name: str = raw["name"]
    if not NAME_PATTERNS[source].match(name):
        raise ValueError(f"{name!r} is not a valid {source} API name ({NAME_PATTERNS[source].pattern})")
    if name in built_in:
        raise ValueError(f"{name!r} is a built-in field of {source}/{module}")
    kind = raw.get("type", DEFAULT_TYPE[source])
    if kind not in TYPES[source]:
        raise ValueError(f"type {kind!r}: expected one of {', '.join(TYPES[source])}")
    label = raw.get("label", name.replace("_", " ").strip().title())
    if not isinstance(label, str) or not label:
        raise ValueError("label: expected a non-empty string")
    return CustomField(name, kind, label)


def parse_specs(specs: tuple[str, ...]) -> dict[tuple[str, str], tuple[CustomField, ...]]:
    """`source:module:name[:type]` each (the --custom-field option) as the fields of each module; ValueError."""
    found: dict[tuple[str, str], dict[str, CustomField]] = {}
    for text in specs:
        parts = text.split(":")
        if len(parts) not in (3, 4) or not all(parts):
            raise ValueError(f"custom field {text!r}: expected SOURCE:MODULE:NAME or SOURCE:MODULE:NAME:TYPE")
        raw = {"name": parts[2], **({"type": parts[3]} if len(parts) == 4 else {})}
        try:
            field = custom_field(parts[0], parts[1], raw)
        except ValueError as exc:
            raise ValueError(f"custom field {text!r}: {exc}") from None
        found.setdefault((parts[0], parts[1]), {})[field.name] = field
    return {key: tuple(fields.values()) for key, fields in found.items()}


class CustomFields:
    """The custom fields of each (source, module), in the order they were added."""

    def __init__(self, configured: Mapping[tuple[str, str], tuple[CustomField, ...]]) -> None:
        self._configured = dict(configured)
        self._fields: dict[tuple[str, str], dict[str, CustomField]] = {}
        self.reset()

    def reset(self) -> None:
        """Back to the configured fields."""
        self._fields = {key: {f.name: f for f in fields} for key, fields in self._configured.items()}

    def add(self, source: str, module: str, fields: list[CustomField]) -> None:
        """Add (or redefine, by name) fields of a module."""
        known = self._fields.setdefault((source, module), {})
        for field in fields:
            known[field.name] = field

    def clear(self, source: str, module: str) -> None:
        self._fields.pop((source, module), None)

    def of(self, source: str, module: str) -> tuple[CustomField, ...]:
        return tuple(self._fields.get((source, module), {}).values())

    def snapshot(self) -> dict[str, dict[str, list[dict[str, str]]]]:
        """{source: {module: [{"name", "type", "label"}, ...]}} for the control API."""
        shown: dict[str, dict[str, list[dict[str, str]]]] = {}
        for (source, module), fields in sorted(self._fields.items()):
            if fields:
                shown.setdefault(source, {})[module] = [
                    {"name": f.name, "type": f.type, "label": f.label} for f in fields.values()
                ]
        return shown
