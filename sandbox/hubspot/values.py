"""Property writes checked against a catalogue: canonical string values or HubSpot's property errors. Pure.

Values may be JSON strings, numbers or booleans (HubSpot stores every value as a string); `null` and ""
clear a property ("Properties values can be cleared by passing an empty string"). Datetimes are stored in
the rendering of sandbox.hubspot.time. Error codes PROPERTY_DOESNT_EXIST, READ_ONLY_VALUE, INVALID_OPTION
and INVALID_OWNER_ID are HubSpot's; INVALID_DATETIME, INVALID_DATE, INVALID_BOOLEAN, INVALID_STRING_LENGTH,
INVALID_NUMBER, INVALID_PROPERTY_VALUE and REQUIRED_PROPERTY are the sandbox's names for cases no HubSpot source
quotes. Custom properties' `bool` values are stored as "true"/"false", `date` values as YYYY-MM-DD.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import date, time, timedelta
from decimal import Decimal, InvalidOperation
from types import MappingProxyType

from sandbox.hubspot.catalogue import ObjectType, PropertySpec
from sandbox.hubspot.errors import PropertyProblem, invalid_json, property_errors
from sandbox.hubspot.time import format_iso, parse_datetime

Check = Callable[[PropertySpec, str, Collection[str]], "str | PropertyProblem"]
NO_CUSTOM: Mapping[str, PropertySpec] = MappingProxyType({})
DATE_LENGTH = len("2026-03-02")


def _as_text(raw: object) -> str | None:
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int | float | str):
        return str(raw)
    return None


def _string(spec: PropertySpec, text: str, owners: Collection[str]) -> str | PropertyProblem:
    if spec.max_length is not None and len(text) > spec.max_length:
        message = f"{spec.name} is {len(text)} characters long; the maximum length is {spec.max_length}"
        return PropertyProblem(spec.name, "INVALID_STRING_LENGTH", message)
    return text


def _datetime(spec: PropertySpec, text: str, owners: Collection[str]) -> str | PropertyProblem:
    parsed = parse_datetime(text)
    if parsed is None:
        message = f"{text} is not a valid datetime: give ISO 8601 with a zone or epoch milliseconds"
        return PropertyProblem(spec.name, "INVALID_DATETIME", message)
    return format_iso(parsed)


def _enumeration(spec: PropertySpec, text: str, owners: Collection[str]) -> str | PropertyProblem:
    if text not in spec.options:
        message = f"{text} was not one of the allowed options: [{', '.join(spec.options)}]"
        return PropertyProblem(spec.name, "INVALID_OPTION", message)
    return text


def _number(spec: PropertySpec, text: str, owners: Collection[str]) -> str | PropertyProblem:
    try:
        Decimal(text)
    except InvalidOperation:
        return PropertyProblem(spec.name, "INVALID_NUMBER", f"{text} was not a valid number.")
    return text


def _bool(spec: PropertySpec, text: str, owners: Collection[str]) -> str | PropertyProblem:
    if text.lower() not in ("true", "false"):
        return PropertyProblem(spec.name, "INVALID_BOOLEAN", f"{text} is not a valid boolean: give true or false")
    return text.lower()


def _calendar_date(text: str) -> date | None:
    """A YYYY-MM-DD date, or the date of a UTC midnight given as ISO or epoch milliseconds."""
    if len(text) == DATE_LENGTH:
        try:
            return date.fromisoformat(text)
        except ValueError:
            return None
    parsed = parse_datetime(text)
    if parsed is None or parsed.time() != time(0) or parsed.utcoffset() != timedelta(0):
        return None
    return parsed.date()


def _date(spec: PropertySpec, text: str, owners: Collection[str]) -> str | PropertyProblem:
    found = _calendar_date(text)
    if found is None:
        message = f"{text} is not a valid date: give YYYY-MM-DD or the epoch milliseconds of a UTC midnight"
        return PropertyProblem(spec.name, "INVALID_DATE", message)
    return found.isoformat()


def _owner(spec: PropertySpec, text: str, owners: Collection[str]) -> str | PropertyProblem:
    if text not in owners:
        return PropertyProblem(spec.name, "INVALID_OWNER_ID", f"{text} is not a valid owner id")
    return text


_CHECKS: Mapping[str, Check] = {
    "string": _string,
    "datetime": _datetime,
    "enumeration": _enumeration,
    "number": _number,
    "bool": _bool,
    "date": _date,
    "owner": _owner,
}


def normalise(spec: PropertySpec, raw: object, owners: Collection[str]) -> str | PropertyProblem:
    """The stored string for `raw`, "" for a cleared value, or why it is refused."""
    text = _as_text(raw)
    if text is None:
        return PropertyProblem(spec.name, "INVALID_PROPERTY_VALUE", f"{spec.name} must be a string, number or boolean")
    if text == "":
        return ""
    return _CHECKS[spec.kind](spec, text, owners)


def _check_one(
    spec: PropertySpec | None, name: str, raw: object, owners: Collection[str], allow_read_only: bool
) -> str | PropertyProblem:
    if spec is None:
        return PropertyProblem(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
    if spec.read_only and not allow_read_only:
        return PropertyProblem(name, "READ_ONLY_VALUE", f'"{name}" is a read only property; its value cannot be set.')
    return normalise(spec, raw, owners)


def checked_properties(
    object_type: ObjectType,
    raw: object,
    owners: Collection[str],
    portal_id: int,
    *,
    creating: bool = False,
    allow_read_only: bool = False,
    custom: Mapping[str, PropertySpec] = NO_CUSTOM,
) -> dict[str, str]:
    """The canonical values of a `properties` object, or HubSpotApiError listing every problem at once.

    `creating` also requires the type's required properties to be present and non-empty. `custom`: the
    portal's custom properties of the type (sandbox.hubspot.custom_properties), checked by their type like
    built-in ones; any other name is PROPERTY_DOESNT_EXIST.
    """
    if not isinstance(raw, dict):
        raise invalid_json("`properties` must be an object of property names to values")
    values: dict[str, str] = {}
    problems: list[PropertyProblem] = []
    for name, value in raw.items():
        spec = object_type.properties.get(name) or custom.get(name)
        result = _check_one(spec, name, value, owners, allow_read_only)
        if isinstance(result, PropertyProblem):
            problems.append(result)
        else:
            values[name] = result
    if creating:
        for name in object_type.required:
            if name not in raw or values.get(name) == "":
                problems.append(PropertyProblem(name, "REQUIRED_PROPERTY", f'Property "{name}" is required'))
    if problems:
        raise property_errors(problems, portal_id)
    return values
