"""SandboxConfig: every knob of the Zoho CRM sandbox, built by the caller (never read from the environment)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timezone

from sandbox.zoho_time import parse_offset


@dataclass(frozen=True)
class SandboxConfig:
    """Settings for one sandbox instance.

    client_id, client_secret, refresh_token: the only OAuth client and refresh token the sandbox's
        `/oauth/v2/token` accepts.
    notify_url: when set, reset registers one default notification channel that POSTs Zoho callbacks for
        every `Appointments__s` insert and update to this URL. The channel lasts one week from reset (the
        longest Zoho allows); crmflow may replace it through `/crm/v7/actions/watch`.
    notify_token: the `token` echoed in the default channel's callbacks (Zoho allows at most 50 characters).
    channel_id: the default channel's `channel_id`.
    return_affected_field_values: whether the default channel's callbacks carry `affected_values`.
    timezone_offset: the UTC offset ("+05:30", "-08:00", "+00:00") in which the sandbox renders every
        datetime, as Zoho renders them in the API user's time zone.
    fault_seed: seed of the random generator behind probabilistic faults; reset re-seeds it.
    auto_history: when true, a reschedule of an appointment that had already been rescheduled moves the
        previous reschedule's details into a new Appointments_Rescheduled_History__s row, keeping the 20
        most recent rows per appointment. Whether Zoho does this is UNCONFIRMED, so it is off by default;
        the model follows Zoho's note that the history "will not have the current appointment time" and
        is empty while Reschedule_Count is 1.
    """

    client_id: str = "sandbox-client-id"
    client_secret: str = "sandbox-client-secret"
    refresh_token: str = "sandbox-refresh-token"
    notify_url: str | None = None
    notify_token: str | None = "sandbox-notify-token"
    channel_id: str = "1000000068001"
    return_affected_field_values: bool = True
    timezone_offset: str = "+00:00"
    fault_seed: int = 0
    auto_history: bool = False

    def __post_init__(self) -> None:
        parse_offset(self.timezone_offset)
        if self.notify_token is not None and len(self.notify_token) > 50:
            raise ValueError("notify_token: Zoho allows at most 50 characters")
        if not self.channel_id.isdigit():
            raise ValueError("channel_id: Zoho channel ids are numeric (long)")

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
