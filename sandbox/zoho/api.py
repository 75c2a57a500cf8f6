"""Zoho's `/crm/{version}/...` routes: authentication, dispatch, and translation between HTTP and the store.

Served paths (any of Zoho's API versions v2..v8):
    GET  /crm/{v}/Appointments__s?fields=                       list (page or page_token, sort_by
                                                                id, Created_Time or Modified_Time)
    PUT  /crm/{v}/Appointments__s                               update or reschedule (<= 100 records)
    GET  /crm/{v}/Appointments__s/{id}                          one record (optional fields=)
    PUT  /crm/{v}/Appointments__s/{id}                          update one (data array of one)
    GET  /crm/{v}/Appointments__s/{id}/Appointments_Rescheduled_History__s    related list
    GET  /crm/{v}/Appointments__s/{id}/Notes?fields=            the appointment's notes (oldest first)
    POST /crm/{v}/Appointments__s/{id}/Notes                    add notes to it (<= 100)
    GET  /crm/{v}/Appointments_Rescheduled_History__s?fields=   list
    POST /crm/{v}/Appointments_Rescheduled_History__s           add rows (<= 100)
    GET  /crm/{v}/Appointments_Rescheduled_History__s/{id}      one row
    GET  /crm/{v}/Notes?fields=                                 every note (oldest first)
    POST /crm/{v}/Notes                                         add notes, parent in Parent_Id (<= 100)
    GET  /crm/{v}/Notes/{id}                                    one note
    GET  /crm/{v}/settings/fields?module=Appointments__s         field metadata, custom fields included
                                                                (sandbox.zoho.fields)
    *    /crm/{v}/actions/watch                                 see sandbox.zoho.watch_api
Other methods on these paths answer INVALID_REQUEST_METHOD, other modules INVALID_MODULE, anything else
INVALID_URL_PATTERN; every path first requires a valid `Zoho-oauthtoken`, then the scope the call needs
(401 OAUTH_SCOPE_MISMATCH when the sandbox was not told to grant it: sandbox.zoho.scopes).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Awaitable, Callable

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router, request_response

from sandbox.ids import is_record_id
from sandbox.responses import json_response
from sandbox.runtime import SandboxRuntime
from sandbox.zoho import watch_api
from sandbox.zoho.errors import (
    ZohoApiError,
    invalid_id_in_url,
    invalid_module,
    invalid_request_method,
    invalid_url_pattern,
)
from sandbox.zoho.fields import field_list
from sandbox.zoho.listing import ListQuery, parse_fields, parse_list_query
from sandbox.zoho.notes import MAX_NOTES_PER_CALL, Parent
from sandbox.zoho.payload import parse_json_body, records_array
from sandbox.zoho.responses import error_response, page_response, write_response
from sandbox.zoho.scopes import needed_scope
from sandbox.zoho.store import (
    APPOINTMENT_SORT_FIELDS,
    APPOINTMENTS,
    HISTORY,
    HISTORY_SORT_FIELDS,
    NOTE_SORT_FIELDS,
    NOTES,
)
from sandbox.zoho.writes import WriteOutcome

API_VERSIONS = frozenset({"v2", "v2.1", "v3", "v4", "v5", "v6", "v7", "v8"})
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
MAX_RECORDS_PER_WRITE = 100
MODULES = (APPOINTMENTS, HISTORY, NOTES)

Handler = Callable[["CrmHandlers", Request], Awaitable[Response]]


def _guarded(handler: Handler) -> Handler:
    """Authenticate, check the API version, and turn ZohoApiError into Zoho's error answer."""

    @functools.wraps(handler)
    async def run(self: CrmHandlers, request: Request) -> Response:
        try:
            self.runtime.authenticate(request.headers.get("authorization"))
            self.runtime.check_scope(needed_scope(handler.__name__, request.path_params, request.method))
            if request.path_params.get("version", "v7") not in API_VERSIONS:
                raise invalid_url_pattern()
            return await handler(self, request)
        except ZohoApiError as error:
            return error_response(error)

    return run


def _known_module(module: str) -> str:
    if module not in MODULES:
        raise invalid_module()
    return module


def _notes_query(request: Request) -> ListQuery:
    """A notes list query: `fields` is mandatory (v3 and later) and notes come oldest first unless sorted."""
    params = request.query_params
    query = parse_list_query(params, fields_required=True, sortable=NOTE_SORT_FIELDS)
    if "sort_by" not in params:
        query = dataclasses.replace(query, sort_by="Created_Time", sort_order=params.get("sort_order", "asc"))
    return query


class CrmHandlers:
    """Endpoint functions bound to one runtime."""

    def __init__(self, runtime: SandboxRuntime) -> None:
        self.runtime = runtime

    @_guarded
    async def module(self, request: Request) -> Response:
        key = (_known_module(request.path_params["module"]), request.method)
        if key == (APPOINTMENTS, "GET"):
            query = parse_list_query(
                request.query_params,
                fields_required=True,
                sortable=APPOINTMENT_SORT_FIELDS,
                tokens=True,
                token_with_page=self.runtime.config.zoho_token_with_page,
            )
            return page_response(self.runtime.store.list_appointments(query, self.runtime.now()))
        if key == (APPOINTMENTS, "PUT"):
            return await self._update(request, None)
        if key == (HISTORY, "GET"):
            query = parse_list_query(request.query_params, fields_required=True, sortable=HISTORY_SORT_FIELDS)
            return page_response(self.runtime.store.list_history(query))
        if key == (HISTORY, "POST"):
            items = records_array(parse_json_body(await request.body()), MAX_RECORDS_PER_WRITE)
            return self._written(self.runtime.store.add_history(items, self.runtime.now()), 201)
        if key == (NOTES, "GET"):
            return page_response(self.runtime.store.list_notes(_notes_query(request)))
        if key == (NOTES, "POST"):
            return await self._add_notes(request, None)
        raise invalid_request_method()

    @_guarded
    async def record(self, request: Request) -> Response:
        module = _known_module(request.path_params["module"])
        record_id = request.path_params["record_id"]
        fields = parse_fields(request.query_params.get("fields"), required=False)
        if (module, request.method) == (APPOINTMENTS, "GET"):
            custom = [field.name for field in self.runtime.custom_fields.of("zoho", APPOINTMENTS)]
            return json_response({"data": [self.runtime.store.get_appointment(record_id, fields, custom)]})
        if (module, request.method) == (APPOINTMENTS, "PUT"):
            if not is_record_id(record_id):
                raise invalid_id_in_url(1)
            return await self._update(request, record_id)
        if (module, request.method) == (HISTORY, "GET"):
            return json_response({"data": [self.runtime.store.get_history(record_id, fields)]})
        if (module, request.method) == (NOTES, "GET"):
            return json_response({"data": [self.runtime.store.get_note(record_id, fields)]})
        raise invalid_request_method()

    @_guarded
    async def related(self, request: Request) -> Response:
        module = _known_module(request.path_params["module"])
        related = request.path_params["related"]
        record_id = request.path_params["record_id"]
        if module != APPOINTMENTS or related not in (HISTORY, NOTES):
            raise invalid_url_pattern()
        if (related, request.method) == (NOTES, "GET"):
            return page_response(self.runtime.store.related_notes(record_id, _notes_query(request)))
        if (related, request.method) == (NOTES, "POST"):
            return await self._add_notes(request, Parent(APPOINTMENTS, record_id))
        if request.method != "GET":
            raise invalid_request_method()
        query = parse_list_query(request.query_params, fields_required=False, sortable=HISTORY_SORT_FIELDS)
        return page_response(self.runtime.store.related_history(record_id, query))

    @_guarded
    async def fields(self, request: Request) -> Response:
        if request.method != "GET":
            raise invalid_request_method()
        module = request.query_params.get("module")
        return json_response(field_list(module, self.runtime.custom_fields.of("zoho", module or "")))

    @_guarded
    async def watch(self, request: Request) -> Response:
        return await watch_api.watch(self.runtime, request)

    @_guarded
    async def not_found(self, request: Request) -> Response:
        raise invalid_url_pattern()

    async def _update(self, request: Request, path_id: str | None) -> Response:
        if path_id is not None and not self.runtime.store.has_appointment(path_id):
            raise invalid_id_in_url(1)
        limit = 1 if path_id is not None else MAX_RECORDS_PER_WRITE
        items = records_array(parse_json_body(await request.body()), limit)
        return self._written(self.runtime.store.update_appointments(items, self.runtime.now(), path_id=path_id), 200)

    async def _add_notes(self, request: Request, parent: Parent | None) -> Response:
        items = records_array(parse_json_body(await request.body()), MAX_NOTES_PER_CALL)
        return self._written(self.runtime.store.add_notes(items, self.runtime.now(), parent=parent), 201)

    def _written(self, outcome: WriteOutcome, success_status: int) -> Response:
        deliveries = self.runtime.deliveries_for(outcome.changes)
        background = BackgroundTask(self.runtime.notifier.deliver, deliveries) if deliveries else None
        return write_response(outcome, success_status, background)


def crm_app(runtime: SandboxRuntime) -> Router:
    """The router mounted at /crm."""
    handlers = CrmHandlers(runtime)
    routes = [
        Route("/{version}/actions/watch", handlers.watch, methods=ALL_METHODS),
        Route("/{version}/settings/fields", handlers.fields, methods=ALL_METHODS),
        Route("/{version}/{module}", handlers.module, methods=ALL_METHODS),
        Route("/{version}/{module}/{record_id}", handlers.record, methods=ALL_METHODS),
        Route("/{version}/{module}/{record_id}/{related}", handlers.related, methods=ALL_METHODS),
    ]
    return Router(routes, default=request_response(handlers.not_found))
