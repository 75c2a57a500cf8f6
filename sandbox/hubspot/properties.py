"""HubSpot's properties API, read side: GET /crm/properties/2026-03/{objectType}, every property of a type.

The answer is `{"results": [Property, ...]}` (HubSpot's 2026-03 properties spec, CollectionResponsePropertyNoPaging:
no paging), each Property with `name`, `label`, `type`, `fieldType`, `groupName`, `description`, `options`,
`displayOrder`, `hubspotDefined`, `calculated`, `externalOptions`, `hasUniqueValue`, `hidden`, `formField`,
`archived`, `dataSensitivity` and `modificationMetadata`. The built-in properties are the sandbox's catalogue
(sandbox.hubspot.catalogue); appointments' custom properties (sandbox.custom_fields) follow, with
`hubspotDefined: false`. The group names and field types of the built-in properties are the sandbox's reading
(UNCONFIRMED). Only `2026-03` is served; `archived=true` lists nothing (the sandbox archives no property).

Errors: the gate's (401, 429, 403 MISSING_SCOPES: the spec accepts any of many scopes, among them
crm.schemas.appointments.read and crm.objects.appointments.read; sandbox.hubspot.scopes), 400
VALIDATION_ERROR for an unknown object type, 404 for another version or path, 405 for another method.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router, request_response

from sandbox.custom_fields import CustomField, CustomFields
from sandbox.hubspot.catalogue import APPOINTMENTS, ObjectType, PropertySpec
from sandbox.hubspot.errors import method_not_allowed, route_not_found
from sandbox.hubspot.gate import HubSpotGate
from sandbox.hubspot.http import guarded, hubspot_response, object_type_param, query_flag
from sandbox.hubspot.runtime import HubSpotRuntime

VERSIONS = frozenset({"2026-03"})
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
_FIELD_TYPES = {
    "string": "text",
    "number": "number",
    "bool": "booleancheckbox",
    "date": "date",
    "datetime": "date",
    "enumeration": "select",
    "phone_number": "phonenumber",
}
# A built-in property's kind as HubSpot types it: (type, fieldType).
_KINDS = {
    "string": ("string", "text"),
    "datetime": ("datetime", "date"),
    "enumeration": ("enumeration", "select"),
    "number": ("number", "number"),
    "owner": ("enumeration", "select"),
}


def _property(name: str, label: str, kind: str, field_type: str, group: str, order: int) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": kind,
        "fieldType": field_type,
        "groupName": group,
        "description": "",
        "options": [],
        "displayOrder": order,
        "calculated": False,
        "externalOptions": False,
        "hasUniqueValue": False,
        "hidden": False,
        "formField": False,
        "archived": False,
        "dataSensitivity": "non_sensitive",
    }


def built_in_property(object_type: ObjectType, spec: PropertySpec, order: int) -> dict[str, Any]:
    kind, field_type = _KINDS[spec.kind]
    label = spec.name.removeprefix("hs_").replace("_", " ").capitalize()
    rendered = _property(spec.name, label, kind, field_type, f"{object_type.singular}_information", order)
    rendered["options"] = [
        {"label": value.replace("_", " ").capitalize(), "value": value, "displayOrder": i, "hidden": False}
        for i, value in enumerate(spec.options)
    ]
    if spec.kind == "owner":
        rendered |= {"externalOptions": True, "referencedObjectType": "OWNER"}
    rendered["hubspotDefined"] = True
    rendered["modificationMetadata"] = {
        "archivable": False,
        "readOnlyDefinition": True,
        "readOnlyValue": spec.read_only,
    }
    return rendered


def custom_property(object_type: ObjectType, field: CustomField, order: int) -> dict[str, Any]:
    rendered = _property(
        field.name, field.label, field.type, _FIELD_TYPES[field.type], f"{object_type.singular}_information", order
    )
    rendered["hubspotDefined"] = False
    rendered["formField"] = True
    rendered["modificationMetadata"] = {"archivable": True, "readOnlyDefinition": False, "readOnlyValue": False}
    return rendered


def properties_of(object_type: ObjectType, custom: tuple[CustomField, ...]) -> dict[str, Any]:
    """The `{"results": [...]}` answer: built-in properties, then custom ones."""
    results = [built_in_property(object_type, spec, i) for i, spec in enumerate(object_type.properties.values())]
    start = len(results)
    results += [custom_property(object_type, field, start + i) for i, field in enumerate(custom)]
    return {"results": results}


class PropertyHandlers:
    """The properties routes bound to the HubSpot runtime and the custom fields."""

    def __init__(self, hubspot: HubSpotRuntime, custom_fields: CustomFields) -> None:
        self.hubspot = hubspot
        self.custom_fields = custom_fields

    @guarded
    async def collection(self, request: Request) -> Response:
        if request.path_params["version"] not in VERSIONS:
            raise route_not_found(request.method, request.url.path)
        object_type = object_type_param(request, "object_type")
        if request.method != "GET":
            raise method_not_allowed(request.method)
        if query_flag(request.query_params, "archived"):
            return hubspot_response({"results": []})
        custom = self.custom_fields.of("hubspot", object_type.name) if object_type is APPOINTMENTS else ()
        return hubspot_response(properties_of(object_type, custom))

    async def not_found(self, request: Request) -> Response:
        return hubspot_response(route_not_found(request.method, request.url.path).body(), 404)


def properties_app(hubspot: HubSpotRuntime, custom_fields: CustomFields) -> HubSpotGate:
    """The gated app mounted at /crm/properties."""
    handlers = PropertyHandlers(hubspot, custom_fields)
    routes = [Route("/{version}/{object_type}", handlers.collection, methods=ALL_METHODS)]
    return HubSpotGate(Router(routes, default=request_response(handlers.not_found)), hubspot)
