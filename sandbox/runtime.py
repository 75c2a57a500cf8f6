"""The sandbox's live state behind the HTTP layer: Zoho store, tokens, channels, faults, logs, clock, HubSpot."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import httpx

from sandbox.config import SandboxConfig
from sandbox.custom_fields import CustomFields, parse_specs
from sandbox.faults import FaultPlan
from sandbox.hubspot.runtime import HubSpotRuntime
from sandbox.request_log import RequestLog
from sandbox.zoho.errors import invalid_token
from sandbox.zoho.notify import Delivery, Notifier, plan_deliveries
from sandbox.zoho.oauth import TokenRegistry
from sandbox.zoho.scopes import allowed, scope_mismatch
from sandbox.zoho.store import ZohoStore
from sandbox.zoho.watch import Channel, ChannelRegistry
from sandbox.zoho.writes import RecordChange

AUTH_SCHEME = "Zoho-oauthtoken "
DEFAULT_CHANNEL_LIFETIME = timedelta(days=7)
CALLBACK_TIMEOUT = httpx.Timeout(10.0)


def utc_now() -> datetime:
    return datetime.now(UTC)


class SandboxRuntime:
    """One sandbox instance. All state lives here; `reset()` returns it to the configured start."""

    def __init__(
        self,
        config: SandboxConfig,
        *,
        clock: Callable[[], datetime] = utc_now,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.config = config
        self._clock = clock
        self._http = http
        self._own_http: httpx.AsyncClient | None = None
        self.store = ZohoStore(config.tz, auto_history=config.auto_history)
        self.tokens = TokenRegistry(config.client_id, config.client_secret, config.refresh_token)
        self.channels = ChannelRegistry()
        self.faults = FaultPlan(config.fault_seed)
        self.requests = RequestLog()
        self.notifier = Notifier(self.http_client, self.clock)
        # Both CRMs' custom fields, as their field lists report them (HubSpot's records carry them too).
        self.custom_fields = CustomFields(parse_specs(config.custom_fields))
        self.hubspot = HubSpotRuntime(config, clock=self.clock, http=self.http_client, custom_fields=self.custom_fields)
        # Off: Zoho sends no callbacks at all (see set_webhooks).
        self.zoho_webhooks_enabled = config.webhooks_enabled
        self.reset()

    def clock(self) -> datetime:
        """The injected clock's reading in UTC (it must return aware datetimes)."""
        current = self._clock()
        if current.tzinfo is None:
            raise ValueError("the sandbox clock must return timezone-aware datetimes")
        return current.astimezone(UTC)

    def now(self) -> datetime:
        """The clock to the second, as Zoho stores times."""
        return self.clock().replace(microsecond=0)

    def http_client(self) -> httpx.AsyncClient:
        """The injected client for callbacks, or one the sandbox owns (closed by `aclose`)."""
        if self._http is not None:
            return self._http
        if self._own_http is None:
            self._own_http = httpx.AsyncClient(timeout=CALLBACK_TIMEOUT)
        return self._own_http

    async def aclose(self) -> None:
        """Stop HubSpot deliveries (pending and in flight), then close the client the sandbox owns."""
        await self.hubspot.aclose()
        if self._own_http is not None:
            await self._own_http.aclose()
            self._own_http = None

    def reset(self) -> None:
        """Seed data, no tokens, no faults (generator re-seeded), empty logs, only the config's channel and
        custom fields.

        The HubSpot portal goes back to its seed too, with fresh limits and no pending webhook deliveries.
        """
        now = self.now()
        self.store.reset(now)
        self.tokens.reset()
        self.faults.reset()
        self.requests.clear()
        self.notifier.log.clear()
        self.channels.reset(self._default_channel(now))
        self.zoho_webhooks_enabled = self.config.webhooks_enabled
        self.hubspot.reset()
        self.custom_fields.reset()

    def set_webhooks(self, enabled: bool, crm: str | None = None) -> dict[str, bool]:
        """Switch Zoho's callbacks and/or HubSpot's webhook batches on or off; the state of both afterwards.

        While off, changes are not notified at all, and not later either: as when the receiver was down for
        longer than the CRM retries (Zoho documents no retries; HubSpot gives up after 24 hours).
        """
        if crm in (None, "zoho"):
            self.zoho_webhooks_enabled = enabled
        if crm in (None, "hubspot"):
            self.hubspot.webhooks_enabled = enabled
        return self.webhooks_state()

    def webhooks_state(self) -> dict[str, bool]:
        return {"zoho": self.zoho_webhooks_enabled, "hubspot": self.hubspot.webhooks_enabled}

    def _default_channel(self, now: datetime) -> Channel | None:
        if self.config.notify_url is None:
            return None
        return Channel(
            channel_id=self.config.channel_id,
            events=("Appointments__s.all",),
            notify_url=self.config.notify_url,
            token=self.config.notify_token,
            expires_at=now + DEFAULT_CHANNEL_LIFETIME,
            return_affected_field_values=self.config.return_affected_field_values,
            # As `crmflow zoho subscribe` makes it (Zoho's default is true; crmflow asks for false): a channel
            # the workers find as they want it and leave alone.
            notify_on_related_action=False,
        )

    def authenticate(self, authorization: str | None) -> None:
        """Accept `Authorization: Zoho-oauthtoken <active token>`, else raise INVALID_TOKEN (401)."""
        if authorization is None or not authorization.startswith(AUTH_SCHEME):
            raise invalid_token()
        if not self.tokens.is_valid(authorization[len(AUTH_SCHEME) :].strip(), self.now()):
            raise invalid_token()

    def check_scope(self, scope: str | None) -> None:
        """Raise OAUTH_SCOPE_MISMATCH (401) when the configured grant lacks `scope` (None: nothing to check)."""
        granted = self.config.zoho_scopes
        if scope is not None and granted is not None and not allowed(scope, granted):
            raise scope_mismatch()

    def deliveries_for(self, changes: Sequence[RecordChange]) -> list[Delivery]:
        """The callbacks these changes cause on the channels active now (none while Zoho's are switched off)."""
        if not changes or not self.zoho_webhooks_enabled:
            return []
        return plan_deliveries(changes, self.channels.active(self.now()), self.clock())
