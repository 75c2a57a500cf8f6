"""HubSpot association routes: type labels, default and typed associations, and an object's associations.

    GET {assoc}/2026-03/{from}/{to}/labels                                 association types between two types
    GET {objects}/{type}/{id}/associations/{toType}                        associated ids with their types
    PUT {objects}/{type}/{id}/associations/default/{toType}/{toId}         default (unlabelled) association
    PUT {objects}/{type}/{id}/associations/{toType}/{toId}                 body [AssociationSpec]  -> 201
    PUT {objects}/{type}/{id}/associations/{toType}/{toId}/{typeId}        the notes guide's form  -> 200
{assoc} = /crm/associations, {objects} = /crm/objects/2026-03. Types: notes|note|0-46, appointments|appointment|0-421.

Shapes: labels `{"results":[{category,typeId,label}]}`; the list `{"results":[{toObjectId,associationTypes}]}`
with string ids as in the 2026-03 spec (v4 used integers); the default association answers
BatchResponsePublicDefaultAssociation with both directions (as HubSpot's v4 example shows); the body form
answers LabelsBetweenObjectPair (201). The typed form is not in the 2026-03 spec; it answers like v3 did
(200, the object with its `associations`) - UNCONFIRMED. Unknown ids in the path answer 404 OBJECT_NOT_FOUND.
The list is not paged (HubSpot pages at 500).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sandbox.hubspot.associations import (
    HUBSPOT_DEFINED,
    invalid_association_type,
    labels,
    spec,
    target_for_spec,
    target_of,
    type_id_between,
    v3_type_name,
)
from sandbox.hubspot.catalogue import ObjectType
from sandbox.hubspot.errors import invalid_json, method_not_allowed, route_not_found, validation_error
from sandbox.hubspot.http import guarded, hubspot_response, json_body, object_type_param
from sandbox.hubspot.records import HubRecord
from sandbox.hubspot.runtime import HubSpotRuntime
from sandbox.hubspot.time import format_iso

ASSOCIATIONS_VERSIONS = frozenset({"2026-03"})


def _only(request: Request, method: str) -> None:
    if request.method != method:
        raise method_not_allowed(request.method)


class AssociationHandlers:
    """Endpoint functions bound to one HubSpot runtime (`v3`: mounted at /crm/v3/objects)."""

    def __init__(self, hubspot: HubSpotRuntime, *, v3: bool) -> None:
        self.hubspot = hubspot
        self.v3 = v3

    def _pair(self, request: Request) -> tuple[ObjectType, ObjectType]:
        from_type = object_type_param(request, "object_type", v3=self.v3)
        return from_type, object_type_param(request, "to_type", v3=self.v3)

    def _with_associations(self, record: HubRecord, to_type: ObjectType) -> dict[str, Any]:
        body = record.render()
        name = v3_type_name(record.object_type, to_type)
        related = self.hubspot.store.related(record, to_type)
        body["associations"] = {to_type.name: {"results": [{"id": other, "type": name} for other in related]}}
        return body

    @guarded
    async def labels(self, request: Request) -> Response:
        _only(request, "GET")
        if request.path_params["version"] not in ASSOCIATIONS_VERSIONS:
            raise route_not_found(request.method, request.url.path)
        from_type = object_type_param(request, "from_type")
        to_type = object_type_param(request, "to_type")
        return hubspot_response({"results": labels(from_type, to_type)})

    @guarded
    async def listing(self, request: Request) -> Response:
        _only(request, "GET")
        from_type, to_type = self._pair(request)
        record = self.hubspot.store.get(from_type, request.path_params["object_id"])
        types = labels(from_type, to_type)
        results = [
            {"toObjectId": other, "associationTypes": types} for other in self.hubspot.store.related(record, to_type)
        ]
        return hubspot_response({"results": results})

    @guarded
    async def default(self, request: Request) -> Response:
        _only(request, "PUT")
        from_type, to_type = self._pair(request)
        if type_id_between(from_type, to_type) is None:
            raise validation_error(
                f"There is no default association type from {from_type.type_id} to {to_type.type_id}"
            )
        from_id, to_id = request.path_params["object_id"], request.path_params["to_id"]
        self.hubspot.store.associate(from_type, from_id, to_type, to_id)
        now = format_iso(self.hubspot.now())
        results = [
            {"from": {"id": from_id}, "to": {"id": to_id}, "associationSpec": spec(from_type, to_type)},
            {"from": {"id": to_id}, "to": {"id": from_id}, "associationSpec": spec(to_type, from_type)},
        ]
        return hubspot_response({"status": "COMPLETE", "results": results, "startedAt": now, "completedAt": now})

    @guarded
    async def with_specs(self, request: Request) -> Response:
        _only(request, "PUT")
        from_type, to_type = self._pair(request)
        specs = await json_body(request)
        if not isinstance(specs, list) or not specs:
            raise invalid_json("expected a non-empty array of AssociationSpec")
        for raw_spec in specs:
            target_for_spec(from_type, raw_spec, to_type)
        from_id, to_id = request.path_params["object_id"], request.path_params["to_id"]
        self.hubspot.store.associate(from_type, from_id, to_type, to_id)
        body = {
            "fromObjectTypeId": from_type.type_id,
            "fromObjectId": from_id,
            "toObjectTypeId": to_type.type_id,
            "toObjectId": to_id,
            "labels": [],
        }
        return hubspot_response(body, 201)

    @guarded
    async def typed(self, request: Request) -> Response:
        _only(request, "PUT")
        from_type, to_type = self._pair(request)
        type_id: str = request.path_params["type_id"]
        named = type_id == v3_type_name(from_type, to_type)
        if not named and (not type_id.isdigit() or target_of(from_type, HUBSPOT_DEFINED, int(type_id)) is not to_type):
            raise invalid_association_type(from_type, HUBSPOT_DEFINED, type_id, to_type)
        record = self.hubspot.store.associate(
            from_type, request.path_params["object_id"], to_type, request.path_params["to_id"]
        )
        return hubspot_response(self._with_associations(record, to_type))
