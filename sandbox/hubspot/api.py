"""The HubSpot API routes for appointments and notes: read, batch read, create, update, archive, associations.

Served paths ({base} = /crm/objects/2026-03 (also /crm/objects/v3) or /crm/v3/objects):
    GET    {base}/{type}/{id}?properties=&propertiesWithHistory=&associations=&archived=&idProperty=
    PATCH  {base}/{type}/{id}          body {properties}; read-only/unknown properties answer 400
    DELETE {base}/{type}/{id}          archive (204); appointments raise object.deletion
    POST   {base}/{type}               body {properties, associations?} -> 201
    POST   {base}/{type}/batch/read    body {inputs, properties, propertiesWithHistory} -> 200 or 207
    POST   {base}/{type}/search        body {filterGroups, sorts, properties, limit, after} -> 200 (see
                                       sandbox.hubspot.search; its own limit of 5 a second, in the gate)
    association paths                  see sandbox.hubspot.associations_api
{type}: appointments | appointment | 0-421 | notes | note | 0-46; on /crm/v3/objects appointments only as 0-421.
Every path first passes sandbox.hubspot.gate (token, rate limits). API changes are INTEGRATION changes by the
configured app; appointment changes are published as webhook events after the state changed, in the
background. Unknown paths answer 404, other methods on known paths 405, both in HubSpot's error shape.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router, request_response

from sandbox.hubspot.associations import parse_associations, v3_type_name
from sandbox.hubspot.associations_api import AssociationHandlers
from sandbox.hubspot.batch import batch_read_answer, parse_batch_read
from sandbox.hubspot.catalogue import ObjectType, resolve_object_type
from sandbox.hubspot.errors import invalid_json, method_not_allowed, route_not_found, validation_error
from sandbox.hubspot.gate import HubSpotGate
from sandbox.hubspot.http import guarded, hubspot_response, json_body, object_type_param, query_flag, query_list
from sandbox.hubspot.records import HubRecord
from sandbox.hubspot.runtime import HubSpotRuntime
from sandbox.hubspot.search import parse_search, search

OBJECT_VERSIONS = frozenset({"2026-03", "v3"})
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


class ObjectHandlers:
    """Endpoint functions bound to one HubSpot runtime (`v3`: mounted at /crm/v3/objects)."""

    def __init__(self, hubspot: HubSpotRuntime, *, v3: bool) -> None:
        self.hubspot = hubspot
        self.v3 = v3

    def _type(self, request: Request) -> ObjectType:
        if request.path_params.get("version", "v3") not in OBJECT_VERSIONS:
            raise route_not_found(request.method, request.url.path)
        return object_type_param(request, "object_type", v3=self.v3)

    @guarded
    async def collection(self, request: Request) -> Response:
        object_type = self._type(request)
        if request.method != "POST":
            raise method_not_allowed(request.method)
        body = await json_body(request)
        if not isinstance(body, dict):
            raise invalid_json("expected an object with `properties`")
        associations = parse_associations(object_type, body.get("associations"))
        record, changes = self.hubspot.store.create(
            object_type, body.get("properties"), self.hubspot.api_source, self.hubspot.now(), associations=associations
        )
        self.hubspot.publish(changes)
        custom = self.hubspot.custom_properties(object_type)
        return hubspot_response(record.render(list(body["properties"]), custom=custom), 201)

    @guarded
    async def batch_read(self, request: Request) -> Response:
        object_type = self._type(request)
        if request.method != "POST":
            raise method_not_allowed(request.method)
        batch = parse_batch_read(await json_body(request))
        archived = query_flag(request.query_params, "archived")
        status, body = batch_read_answer(
            self.hubspot.store, object_type, batch, archived=archived, now=self.hubspot.now()
        )
        return hubspot_response(body, status)

    @guarded
    async def search(self, request: Request) -> Response:
        object_type = self._type(request)
        if request.method != "POST":
            raise method_not_allowed(request.method)
        query = parse_search(await json_body(request))
        return hubspot_response(search(self.hubspot.store.all(object_type), query))

    @guarded
    async def item(self, request: Request) -> Response:
        object_type = self._type(request)
        object_id: str = request.path_params["object_id"]
        if request.method == "GET":
            return self._read(request, object_type, object_id)
        if request.method == "PATCH":
            return await self._update(request, object_type, object_id)
        if request.method == "DELETE":
            changes = self.hubspot.store.archive(object_type, object_id, self.hubspot.api_source, self.hubspot.now())
            self.hubspot.publish(changes)
            return Response(status_code=204)
        raise method_not_allowed(request.method)

    def _read(self, request: Request, object_type: ObjectType, object_id: str) -> Response:
        query = request.query_params
        if query.get("idProperty", "hs_object_id") != "hs_object_id":
            raise validation_error(f"{query['idProperty']} is not a unique identifier property")
        record = self.hubspot.store.get(object_type, object_id, archived=query_flag(query, "archived"))
        body = record.render(
            query_list(query, "properties") or None,
            query_list(query, "propertiesWithHistory"),
            custom=self.hubspot.custom_properties(object_type),
        )
        associations = self._associations(record, query_list(query, "associations"))
        if associations:
            body["associations"] = associations
        return hubspot_response(body)

    def _associations(self, record: HubRecord, names: list[str]) -> dict[str, Any]:
        """`associations` of a single read; unknown object types and types without associations are left out."""
        found: dict[str, Any] = {}
        for name in names:
            to_type = resolve_object_type(name)
            related = self.hubspot.store.related(record, to_type) if to_type is not None else []
            if to_type is not None and related:
                kind = v3_type_name(record.object_type, to_type)
                found[to_type.name] = {"results": [{"id": other, "type": kind} for other in related]}
        return found

    async def _update(self, request: Request, object_type: ObjectType, object_id: str) -> Response:
        body = await json_body(request)
        if not isinstance(body, dict) or "properties" not in body:
            raise invalid_json("some of required attributes are not set [properties]")
        record, changed, changes = self.hubspot.store.update(
            object_type, object_id, body["properties"], self.hubspot.api_source, self.hubspot.now()
        )
        self.hubspot.publish(changes)
        custom = self.hubspot.custom_properties(object_type)
        return hubspot_response(record.render([*body["properties"], *changed], custom=custom))

    async def not_found(self, request: Request) -> Response:
        return hubspot_response(route_not_found(request.method, request.url.path).body(), 404)


def _object_routes(hubspot: HubSpotRuntime, *, v3: bool) -> Router:
    objects = ObjectHandlers(hubspot, v3=v3)
    links = AssociationHandlers(hubspot, v3=v3)
    base = "" if v3 else "/{version}"
    item = base + "/{object_type}/{object_id}/associations"
    routes = [
        Route(base + "/{object_type}", objects.collection, methods=ALL_METHODS),
        Route(base + "/{object_type}/batch/read", objects.batch_read, methods=ALL_METHODS),
        Route(base + "/{object_type}/search", objects.search, methods=ALL_METHODS),
        Route(base + "/{object_type}/{object_id}", objects.item, methods=ALL_METHODS),
        Route(item + "/{to_type}/{to_id}/{type_id}", links.typed, methods=ALL_METHODS),
    ]
    if not v3:
        routes[4:4] = [
            Route(item + "/{to_type}", links.listing, methods=ALL_METHODS),
            Route(item + "/default/{to_type}/{to_id}", links.default, methods=ALL_METHODS),
            Route(item + "/{to_type}/{to_id}", links.with_specs, methods=ALL_METHODS),
        ]
    return Router(routes, default=request_response(objects.not_found))


def objects_app(hubspot: HubSpotRuntime, *, v3: bool = False) -> HubSpotGate:
    """The gated app mounted at /crm/objects (or, with `v3`, at /crm/v3/objects)."""
    return HubSpotGate(_object_routes(hubspot, v3=v3), hubspot)


def associations_app(hubspot: HubSpotRuntime) -> HubSpotGate:
    """The gated app mounted at /crm/associations (association type labels)."""
    links = AssociationHandlers(hubspot, v3=False)
    objects = ObjectHandlers(hubspot, v3=False)
    routes = [Route("/{version}/{from_type}/{to_type}/labels", links.labels, methods=ALL_METHODS)]
    return HubSpotGate(Router(routes, default=request_response(objects.not_found)), hubspot)
