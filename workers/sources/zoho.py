"""Source zoho: Zoho CRM's Appointments__s module, fetched with ZohoClient; reschedules logged as history rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workers.actions.add_note import add_zoho_note
from workers.actions.base import ActionResult
from workers.actions.notify import notify
from workers.actions.update_record import update_record as update_fields
from workers.actions.zoho_history import log_zoho_reschedule
from workers.crm import zoho_models
from workers.crm.limits import LEASE_MARGIN_S, CallCounter, ZohoLimiter
from workers.crm.zoho import ZohoClient
from workers.crm.zoho_auth import ZohoTokens
from workers.record import Record
from workers.rules.model import LogRescheduleHistoryParams
from workers.sources.base import ActionRun, Source, SourceModule
from workers.sweep_paging import zoho_modified

if TYPE_CHECKING:
    import httpx
    from pydantic import SecretStr
    from redis.asyncio import Redis

    from workers.config import WorkerConfig

# Appointments__s fields, from GET /crm/v7/Appointments__s/{id} (docs/zoho-crm.md, "Appointments API").
# Meta keys such as $editable are not fields and are left out.
APPOINTMENT_FIELDS: frozenset[str] = frozenset(
    {
        "Owner",
        "Appointment_Name",
        "Appointment_Start_Time",
        "Appointment_End_Time",
        "Duration",
        "Status",
        "Service_Name",
        "Appointment_For",
        "Location",
        "Address",
        "Remind_At",
        "Additional_Information",
        "Rescheduled_From",
        "Rescheduled_To",
        "Rescheduled_Time",
        "Rescheduled_By",
        "Reschedule_Reason",
        "Reschedule_Note",
        "Reschedule_Count",
        "Cancelled_Time",
        "Cancelled_By",
        "Cancellation_Reason",
        "Cancellation_Note",
        "Job_Sheet_Name__s",
        "Job_Sheet_Created__s",
        "Job_Sheet_Section__s",
        "Job_Sheet_Description__s",
        "Created_Time",
        "Created_By",
        "Modified_Time",
        "Modified_By",
        "Tag",
        "Last_Activity_Time",
        "Record_Status__s",
        "Contact_Name__s",
        "id",
    }
)


def connect(config: WorkerConfig, redis: Redis, http: httpx.AsyncClient) -> ZohoClient | None:
    """A Zoho client sharing its access token and the org's concurrency cap through Redis, when configured."""
    if not (config.zoho_client_id and config.zoho_client_secret and config.zoho_refresh_token):
        return None
    return zoho_client(
        redis,
        http,
        api_domain=config.zoho_api_domain,
        accounts_url=config.zoho_accounts_url,
        client_id=config.zoho_client_id,
        client_secret=config.zoho_client_secret,
        refresh_token=config.zoho_refresh_token,
        http_timeout_s=config.http_timeout_s,
        concurrency=config.zoho_concurrency,
        max_wait_s=config.crm_limit_wait_s,
    )


def zoho_client(
    redis: Redis,
    http: httpx.AsyncClient,
    *,
    api_domain: str,
    accounts_url: str,
    client_id: str,
    client_secret: SecretStr,
    refresh_token: SecretStr,
    http_timeout_s: float,
    concurrency: int,
    max_wait_s: float,
) -> ZohoClient:
    """A Zoho client whose calls pass the org's shared limiter and are counted (workers, `crmflow zoho`)."""
    tokens = ZohoTokens(
        redis,
        http,
        accounts_url=accounts_url,
        client_id=client_id,
        client_secret=client_secret,
        refresh_token=refresh_token,
        request_timeout_s=http_timeout_s,
        gate=CallCounter(redis, "zoho", kind="token"),
    )
    # A slot's lease outlasts any call: the limiter cuts a call off at twice the HTTP timeout.
    limiter = ZohoLimiter(
        redis,
        tokens.account,
        concurrency=concurrency,
        lease_s=http_timeout_s * 2 + LEASE_MARGIN_S,
        max_wait_s=max_wait_s,
    )
    return ZohoClient(http, api_domain=api_domain, tokens=tokens, gate=limiter)


async def fetch_appointment(zoho: ZohoClient, record_id: str, fields: frozenset[str]) -> Record:
    """Zoho returns every field of the record, whatever the rules read."""
    return await zoho.get_appointment(record_id)


async def log_reschedule_history(zoho: ZohoClient, run: ActionRun) -> ActionResult:
    params = run.params
    assert isinstance(params, LogRescheduleHistoryParams)
    return await log_zoho_reschedule(
        zoho, run.ledger, run.record, run.change, params, now=run.now, checkpoint=run.checkpoint
    )


async def update_record(zoho: ZohoClient, run: ActionRun) -> ActionResult:
    return await update_fields(zoho.update_appointment, run)


async def add_note(zoho: ZohoClient, run: ActionRun) -> ActionResult:
    return await add_zoho_note(zoho, run)


async def read_field_names(zoho: ZohoClient, module: str) -> frozenset[str]:
    """The CRM's own list of the module's fields, custom ones included."""
    return await zoho.field_names(module)


SOURCE: Source[ZohoClient] = Source(
    name="zoho",
    modules=(
        SourceModule(
            name=zoho_models.APPOINTMENTS,
            catalogue=APPOINTMENT_FIELDS,
            fetch=fetch_appointment,
            start_field="Appointment_Start_Time",
            remembered=frozenset({"Appointment_Start_Time", "Reschedule_Count"}),
            # What an update by the API moves besides the fields written (docs/zoho-crm.md "Updating one").
            system_fields=frozenset({"Modified_Time", "Modified_By", "Last_Activity_Time"}),
            infer_previous=zoho_models.inferred_previous,
            actions={
                "log_reschedule_history": log_reschedule_history,
                "notify": notify,
                "update_record": update_record,
                "add_note": add_note,
            },
            list_modified=zoho_modified,
            field_names=read_field_names,
        ),
    ),
    connect=connect,
    settings_hint="Zoho is not configured in this worker (ZOHO_CLIENT_ID, ...)",
)
