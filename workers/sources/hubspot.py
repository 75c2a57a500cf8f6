"""Source hubspot: HubSpot's appointments object, fetched with HubSpotClient; reschedules logged as notes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workers.actions.add_note import add_hubspot_note
from workers.actions.base import ActionResult
from workers.actions.hubspot_note import log_hubspot_reschedule
from workers.actions.notify import notify
from workers.actions.update_record import update_record as update_fields
from workers.crm import hubspot_models
from workers.crm.hubspot import HubSpotClient
from workers.crm.limits import HubSpotLimiter, account_of
from workers.record import Record
from workers.rules.model import LogRescheduleHistoryParams
from workers.sources.base import ActionRun, Source, SourceModule
from workers.sweep_paging import hubspot_modified

if TYPE_CHECKING:
    import httpx
    from redis.asyncio import Redis

    from workers.config import WorkerConfig

# Appointment (object type 0-421) property names (docs/hubspot.md, "Appointments, notes and associations
# API"). hs_appointment_name, _start, _end and _status appear in HubSpot's own examples; the others are
# HubSpot's standard object properties or were seen only in third-party code (UNCONFIRMED). A portal's
# custom properties come from HubSpot's own property list (workers/field_lists.py), not from here.
APPOINTMENT_PROPERTIES: frozenset[str] = frozenset(
    {
        "hs_appointment_name",
        "hs_appointment_start",
        "hs_appointment_end",
        "hs_appointment_status",
        "hs_appointment_location",
        "hs_duration",
        "hubspot_owner_id",
        "hs_pipeline",
        "hs_pipeline_stage",
        "hs_object_id",
        "hs_createdate",
        "hs_lastmodifieddate",
    }
)
# How HubSpot's webhooks name appointments: the generic format's objectTypeId and the legacy format's
# subscription type prefix ("appointment.propertyChange").
APPOINTMENT_ALIASES = frozenset({"0-421", "appointment"})


def connect(config: WorkerConfig, redis: Redis, http: httpx.AsyncClient) -> HubSpotClient | None:
    """A HubSpot client sharing the account's rate-limit window and pauses through Redis, when configured."""
    if config.hubspot_access_token is None:
        return None
    token = config.hubspot_access_token
    limiter = HubSpotLimiter(
        redis,
        account_of(config.hubspot_api_base, token.get_secret_value()),
        requests_per_10s=config.hubspot_requests_per_10s,
        call_timeout_s=config.http_timeout_s * 2,
        max_wait_s=config.crm_limit_wait_s,
    )
    return HubSpotClient(http, api_base=config.hubspot_api_base, token=token, gate=limiter)


async def fetch_appointment(hubspot: HubSpotClient, record_id: str, fields: frozenset[str]) -> Record:
    """HubSpot returns only the properties asked for: the usual ones and those the rules read."""
    return await hubspot.get_appointment(record_id, fields)


async def log_reschedule_history(hubspot: HubSpotClient, run: ActionRun) -> ActionResult:
    params = run.params
    assert isinstance(params, LogRescheduleHistoryParams)
    return await log_hubspot_reschedule(hubspot, run.ledger, run.record, run.change, params, checkpoint=run.checkpoint)


async def update_record(hubspot: HubSpotClient, run: ActionRun) -> ActionResult:
    return await update_fields(hubspot.update_appointment, run)


async def add_note(hubspot: HubSpotClient, run: ActionRun) -> ActionResult:
    return await add_hubspot_note(hubspot, run)


async def read_field_names(hubspot: HubSpotClient, module: str) -> frozenset[str]:
    """The CRM's own list of the module's fields, custom ones included."""
    return await hubspot.property_names(module)


SOURCE: Source[HubSpotClient] = Source(
    name="hubspot",
    modules=(
        SourceModule(
            name=hubspot_models.APPOINTMENTS,
            catalogue=APPOINTMENT_PROPERTIES,
            fetch=fetch_appointment,
            start_field=hubspot_models.START,
            remembered=frozenset({hubspot_models.START}),
            # What a PATCH moves besides the properties written (docs/hubspot.md).
            system_fields=frozenset({"hs_lastmodifieddate", "hs_updated_by_user_id"}),
            infer_previous=hubspot_models.inferred_previous,
            actions={
                "log_reschedule_history": log_reschedule_history,
                "notify": notify,
                "update_record": update_record,
                "add_note": add_note,
            },
            list_modified=hubspot_modified,
            field_names=read_field_names,
            aliases=APPOINTMENT_ALIASES,
        ),
    ),
    connect=connect,
    settings_hint="HubSpot is not configured in this worker (HUBSPOT_ACCESS_TOKEN)",
)
