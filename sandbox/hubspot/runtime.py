"""The HubSpot half of the sandbox's live state: portal store, rate limiter, event ids and webhook sender."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

import httpx
from pydantic import JsonValue

from sandbox.config import SandboxConfig
from sandbox.custom_fields import CustomFields
from sandbox.hubspot.catalogue import APPOINTMENTS, ObjectType, PropertySpec
from sandbox.hubspot.custom_properties import custom_specs, custom_subscriptions
from sandbox.hubspot.errors import RatePolicy
from sandbox.hubspot.events import EventIds, EventSettings, events_for
from sandbox.hubspot.faults import fault_policy, hubspot_fault_answer
from sandbox.hubspot.ratelimit import RateLimiter, SecondlyLimiter
from sandbox.hubspot.records import Source
from sandbox.hubspot.store import HubSpotStore, ObjectChange
from sandbox.hubspot.time import truncate_ms
from sandbox.hubspot.values import NO_CUSTOM
from sandbox.hubspot.webhooks import WebhookSender, WebhookSettings

BEARER = "bearer "


class HubSpotRuntime:
    """Everything the HubSpot routes and control endpoints share; `reset()` returns it to the seed state."""

    def __init__(
        self,
        config: SandboxConfig,
        *,
        clock: Callable[[], datetime],
        http: Callable[[], httpx.AsyncClient],
        custom_fields: CustomFields,
    ) -> None:
        self.config = config
        self._clock = clock
        self.custom_fields = custom_fields
        self.store = HubSpotStore(config.hubspot_portal_id, self.custom_properties)
        self.limiter = RateLimiter(config.hubspot_rate_limit_max, config.hubspot_daily_limit)
        self.search_limiter = SecondlyLimiter(config.hubspot_search_per_s)
        # Off: changes raise no webhook events at all, as after an outage HubSpot gave up retrying.
        self.webhooks_enabled = config.webhooks_enabled
        self.event_ids = EventIds()
        self.event_settings = EventSettings(
            portal_id=config.hubspot_portal_id,
            app_id=config.hubspot_app_id,
            datetime_format=config.hubspot_webhook_datetime_format,
            creation_property_events=config.hubspot_creation_property_events,
        )
        self.webhooks = WebhookSender(
            WebhookSettings(
                url=config.hubspot_webhook_url,
                client_secret=config.hubspot_client_secret,
                batch_window_s=config.hubspot_batch_window_ms / 1000,
                retry_delays_s=config.hubspot_retry_delays_s,
                timeout_s=config.hubspot_webhook_timeout_s,
            ),
            http,
            clock,
        )

    def custom_properties(self, object_type: ObjectType) -> Mapping[str, PropertySpec]:
        """The type's custom properties as registered right now (only appointments have any)."""
        if object_type is not APPOINTMENTS:
            return NO_CUSTOM
        return custom_specs(self.custom_fields.of("hubspot", APPOINTMENTS.name))

    def now(self) -> datetime:
        """The clock to the millisecond, as HubSpot keeps times."""
        return truncate_ms(self._clock())

    @property
    def api_source(self) -> Source:
        """Changes made through the API: INTEGRATION by the configured app."""
        return Source.integration(self.config.hubspot_app_id)

    def reset(self) -> None:
        """Seed data, fresh limits and event ids, no pending or logged webhook deliveries."""
        self.store.reset(self.now())
        self.limiter.reset()
        self.search_limiter.reset()
        self.webhooks_enabled = self.config.webhooks_enabled
        self.event_ids.reset()
        self.webhooks.reset()

    def authenticate(self, authorization: str | None) -> bool:
        """Whether the header is `Bearer <hubspot_access_token>` (scheme case-insensitive)."""
        if authorization is None or not authorization.lower().startswith(BEARER):
            return False
        token = authorization[len(BEARER) :].strip()
        return hmac.compare_digest(token.encode(), self.config.hubspot_access_token.encode())

    def fault_answer(
        self, status: int, body: JsonValue, policy: RatePolicy | None
    ) -> tuple[bytes, str, dict[str, str]]:
        """A fault's bytes, media type and headers, in HubSpot's shape.

        4xx answers carry the current rate-limit headers (nothing is counted; a 429 reports its policy's
        remaining as 0); 5xx answers carry none, as if they came from in front of the API layer.
        """
        exhausted = fault_policy(status, body, policy)
        content, media_type = hubspot_fault_answer(status, body, exhausted, self.config.hubspot_portal_id)
        headers = self.limiter.headers(self.now(), exhausted) if status < 500 else {}
        return content, media_type, headers

    def publish(self, changes: Sequence[ObjectChange]) -> None:
        """Turn changes into webhook events and queue them (nothing is sent without a webhook URL or while off)."""
        if not self.webhooks_enabled:
            return
        fields = self.custom_fields.of("hubspot", APPOINTMENTS.name)
        extra, custom = custom_subscriptions(fields), custom_specs(fields)
        events = events_for(changes, self.event_settings, self.event_ids, extra=extra, custom=custom)
        if events:
            self.webhooks.enqueue(events)

    async def aclose(self) -> None:
        await self.webhooks.aclose()
