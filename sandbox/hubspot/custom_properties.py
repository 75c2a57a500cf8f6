"""The portal's custom appointment properties as property specs and webhook subscriptions. Pure.

Custom fields registered for hubspot/appointments (sandbox.custom_fields) become writable properties checked
by their type like built-in ones: string and phone_number as strings, number, bool ("true"/"false"), date
(YYYY-MM-DD), datetime. An `enumeration` custom field has no registered options, so any string is accepted
(the sandbox's choice). Each custom property gets an object.propertyChange subscription of its own, numbered
after the built-in ones in the order the fields were added, so changing one raises a webhook like a built-in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

from sandbox.custom_fields import CustomField
from sandbox.hubspot.catalogue import APPOINTMENTS, PropertyKind, PropertySpec
from sandbox.hubspot.events import Subscription

FIRST_CUSTOM_SUBSCRIPTION_ID = 4150101
_KINDS: Mapping[str, PropertyKind] = {
    "string": "string",
    "phone_number": "string",
    "enumeration": "string",
    "number": "number",
    "bool": "bool",
    "date": "date",
    "datetime": "datetime",
}


def custom_specs(fields: Sequence[CustomField]) -> Mapping[str, PropertySpec]:
    """The writable property spec of each custom field, by name."""
    return MappingProxyType({f.name: PropertySpec(f.name, _KINDS[f.type], confirmed=False) for f in fields})


def custom_subscriptions(fields: Sequence[CustomField]) -> tuple[Subscription, ...]:
    """One appointments propertyChange subscription per custom field."""
    return tuple(
        Subscription(FIRST_CUSTOM_SUBSCRIPTION_ID + index, "object.propertyChange", APPOINTMENTS.type_id, field.name)
        for index, field in enumerate(fields)
    )
