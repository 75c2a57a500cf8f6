"""SandboxConfig: every knob of the CRM sandbox (Zoho and HubSpot), built by the caller (never from the environment)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timezone
from typing import Literal

from sandbox.custom_fields import parse_specs
from sandbox.zoho.time import parse_offset


@dataclass(frozen=True)
class SandboxConfig:
    """Settings for one sandbox instance.

    client_id, client_secret, refresh_token: the only OAuth client and refresh token the sandbox's
        `/oauth/v2/token` accepts.
    zoho_scopes: the scopes the refresh token was granted (e.g. `ZohoCRM.modules.appointments.READ`); a Zoho
        API call outside them answers 401 OAUTH_SCOPE_MISMATCH (sandbox.zoho.scopes). None: every scope.
    notify_url: when set, reset registers one default notification channel that POSTs Zoho callbacks for
        every `Appointments__s` insert and update to this URL. The channel lasts one week from reset (the
        longest Zoho allows); crmflow may replace it through `/crm/v7/actions/watch`.
    notify_token: the `token` echoed in the default channel's callbacks (Zoho allows at most 50 characters).
    channel_id: the default channel's `channel_id`.
    return_affected_field_values: whether the default channel's callbacks carry `affected_values`.
    timezone_offset: the UTC offset ("+05:30", "-08:00", "+00:00") in which the sandbox renders every
        datetime, as Zoho renders them in the API user's time zone.
    fault_seed: seed of the random generator behind probabilistic faults; reset re-seeds it.
    zoho_max_concurrency: when set, at most this many Zoho API calls (/crm/v7/...) are served at once, as
        Zoho's per-org concurrency cap (docs/zoho-crm.md, "Errors and limits"): one more is answered 429
        TOO_MANY_REQUESTS at once. A fault's delay_ms counts as time being served. None: no cap.
    auto_history: when true, a reschedule of an appointment that had already been rescheduled moves the
        previous reschedule's details into a new Appointments_Rescheduled_History__s row, keeping the 20
        most recent rows per appointment. Whether Zoho does this is UNCONFIRMED, so it is off by default;
        the model follows Zoho's note that the history "will not have the current appointment time" and
        is empty while Reschedule_Count is 1.
    zoho_token_with_page: how GET Appointments__s takes a page_token. Zoho's page says both that `page`
        cannot be used with `page_token` (AMBIGUITY_DURING_PROCESSING, the default here) and that the token
        is passed "with param page=10"; true models the latter (a token without page=10 is refused).
    webhooks_enabled: whether Zoho callbacks and HubSpot webhook batches are sent at all (switched at run
        time with POST /_sandbox/webhooks; off models a receiver outage the CRM gave up on).
    custom_fields: custom fields the CRMs' field lists report besides the built-in ones, each
        `source:module:name[:type]` (e.g. `zoho:Appointments__s:Visit_Priority`, `hubspot:appointments:
        visit_priority:enumeration`; sandbox.custom_fields); POST /_sandbox/fields/{source}/{module} adds more
        until the next reset.

    HubSpot (served on the same host; see sandbox.hubspot.api):
    hubspot_access_token: the private-app token the HubSpot API paths accept as `Authorization: Bearer ...`.
    hubspot_client_secret: the app's client secret; it signs webhook requests (v1 and v3 signatures).
    hubspot_scopes: the scopes the token was granted (e.g. `crm.objects.appointments.read`); a HubSpot API
        call outside them answers 403 MISSING_SCOPES (sandbox.hubspot.scopes). None: every scope.
    hubspot_webhook_url: where signed webhook batches are POSTed; None sends none. The v3 signature covers
        this URL as configured (only the escapes HubSpot's guide lists are decoded, see sandbox.hubspot.signing).
    hubspot_portal_id: the portal (account, hub) id in webhook events and error bodies.
    hubspot_app_id: the app id in webhook events; history entries and events of API changes carry it as
        their INTEGRATION sourceId.
    hubspot_batch_window_ms: events raised within this many ms of the first pending one go out together
        (batches of at most 100).
    hubspot_retry_delays_s: the delays before retries 1..n of a failed delivery (at most 10, as HubSpot's;
        HubSpot spreads its 10 retries over 24 h, the default is a scaled-down schedule). () = no retries.
    hubspot_webhook_timeout_s: a delivery not answered within this time failed (HubSpot documents 5 s).
    hubspot_rate_limit_max: requests allowed per rolling 10 s (HubSpot's private-app burst limit is 190).
    hubspot_daily_limit: requests allowed per day (UTC); HubSpot's Enterprise private apps get 1,000,000.
    hubspot_search_per_s: search requests allowed per rolling second (HubSpot: five per second per
        account); search is exempt from the ten-secondly limit but counts against the daily one.
    hubspot_webhook_datetime_format: how webhook `propertyValue` renders datetime properties, "epoch_ms"
        (default) or "iso" like the API; HubSpot's choice is UNCONFIRMED.
    hubspot_creation_property_events: whether creating an appointment also raises propertyChange events
        for the subscribed properties it sets (UNCONFIRMED; on by default).
    """

    client_id: str = "sandbox-client-id"
    client_secret: str = "sandbox-client-secret"
    refresh_token: str = "sandbox-refresh-token"
    zoho_scopes: frozenset[str] | None = None
    notify_url: str | None = None
    notify_token: str | None = "sandbox-notify-token"
    channel_id: str = "1000000068001"
    return_affected_field_values: bool = True
    timezone_offset: str = "+00:00"
    fault_seed: int = 0
    auto_history: bool = False
    zoho_token_with_page: bool = False
    webhooks_enabled: bool = True
    zoho_max_concurrency: int | None = None
    custom_fields: tuple[str, ...] = ()
    hubspot_access_token: str = "sandbox-hubspot-token"
    hubspot_client_secret: str = "sandbox-hubspot-client-secret"
    hubspot_scopes: frozenset[str] | None = None
    hubspot_webhook_url: str | None = None
    hubspot_portal_id: int = 62515
    hubspot_app_id: int = 54321
    hubspot_batch_window_ms: int = 50
    hubspot_retry_delays_s: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 60.0, 120.0, 300.0, 600.0)
    hubspot_webhook_timeout_s: float = 5.0
    hubspot_rate_limit_max: int = 190
    hubspot_search_per_s: int = 5
    hubspot_daily_limit: int = 1_000_000
    hubspot_webhook_datetime_format: Literal["epoch_ms", "iso"] = "epoch_ms"
    hubspot_creation_property_events: bool = True

    def __post_init__(self) -> None:
        parse_offset(self.timezone_offset)
        if self.notify_token is not None and len(self.notify_token) > 50:
            raise ValueError("notify_token: Zoho allows at most 50 characters")
        if self.zoho_max_concurrency is not None and self.zoho_max_concurrency < 1:
            raise ValueError("zoho_max_concurrency must be at least 1 (or None for no cap)")
        if not (self.client_id and self.client_secret and self.refresh_token):
            raise ValueError("client_id, client_secret and refresh_token must not be empty")
        if not self.channel_id.isdigit():
            raise ValueError("channel_id: Zoho channel ids are numeric (long)")
        parse_specs(self.custom_fields)
        self._check_hubspot()

    def _check_hubspot(self) -> None:
        if not self.hubspot_access_token or not self.hubspot_client_secret:
            raise ValueError("hubspot_access_token and hubspot_client_secret must not be empty")
        if len(self.hubspot_retry_delays_s) > 10 or any(delay < 0 for delay in self.hubspot_retry_delays_s):
            raise ValueError("hubspot_retry_delays_s: at most 10 delays (HubSpot retries 10 times), none negative")
        if self.hubspot_batch_window_ms < 0 or self.hubspot_webhook_timeout_s <= 0:
            raise ValueError("hubspot_batch_window_ms must be >= 0 and hubspot_webhook_timeout_s > 0")
        if (
            min(self.hubspot_rate_limit_max, self.hubspot_daily_limit, self.hubspot_search_per_s) < 1
            or min(self.hubspot_portal_id, self.hubspot_app_id) < 1
        ):
            raise ValueError("HubSpot limits and ids must be positive")

    def refresh_form(self) -> dict[str, str]:
        """The refresh-grant form a client of this sandbox POSTs to /oauth/v2/token."""
        return {
            "grant_type": "refresh_token",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "refresh_token": self.refresh_token,
        }

    @property
    def tz(self) -> timezone:
        """The rendering time zone parsed from `timezone_offset`."""
        return parse_offset(self.timezone_offset)
