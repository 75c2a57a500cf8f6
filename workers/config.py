"""Worker settings from the environment (and .env); built only by the entry point."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from workers.crm.limits import edition_concurrency

# Zoho CRM editions, whose concurrency caps workers/crm/limits.py knows.
Edition = Literal["free", "standard", "professional", "enterprise", "ultimate"]

_ZOHO = ("ZOHO_CLIENT_ID", "ZOHO_CLIENT_SECRET", "ZOHO_REFRESH_TOKEN")


class WorkerConfig(BaseSettings):
    """What an arq worker needs: Redis, rules, CRM credentials and the retry policy.

    A CRM is served only when its credentials are present: Zoho with all of ZOHO_CLIENT_ID,
    ZOHO_CLIENT_SECRET and ZOHO_REFRESH_TOKEN, HubSpot with HUBSPOT_ACCESS_TOKEN.
    """

    # An empty value (`NAME=` in .env or the environment) means "not set", so a CRM left blank is simply off.
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False, env_ignore_empty=True)

    redis_url: str = Field(default="redis://127.0.0.1:6379/0", validation_alias="REDIS_URL")
    rules_path: str = Field(default="rules/default.yaml", validation_alias="RULES_PATH")

    zoho_api_domain: str = Field(default="https://www.zohoapis.com", validation_alias="ZOHO_API_DOMAIN")
    zoho_accounts_url: str = Field(default="https://accounts.zoho.com", validation_alias="ZOHO_ACCOUNTS_URL")
    zoho_client_id: str | None = Field(default=None, min_length=1, validation_alias="ZOHO_CLIENT_ID")
    zoho_client_secret: SecretStr | None = Field(default=None, validation_alias="ZOHO_CLIENT_SECRET")
    zoho_refresh_token: SecretStr | None = Field(default=None, validation_alias="ZOHO_REFRESH_TOKEN")

    hubspot_api_base: str = Field(default="https://api.hubapi.com", validation_alias="HUBSPOT_API_BASE")
    # A private app's access token (Bearer); scopes crm.objects.appointments.read and notes write.
    hubspot_access_token: SecretStr | None = Field(default=None, validation_alias="HUBSPOT_ACCESS_TOKEN")

    # Zoho watch-channel upkeep (workers/channels.py): with PUBLIC_BASE_URL and ZOHO_CHANNEL_IDS set, workers
    # enable a missing channel and renew one near its expiry every ZOHO_CHANNEL_CHECK_S seconds (0: never);
    # the channel's callbacks go to PUBLIC_BASE_URL/webhooks/zoho carrying ZOHO_NOTIFY_TOKEN.
    public_base_url: str | None = Field(default=None, validation_alias="PUBLIC_BASE_URL")
    zoho_channel_ids: Annotated[tuple[str, ...], NoDecode] = Field(default=(), validation_alias="ZOHO_CHANNEL_IDS")
    zoho_notify_token: SecretStr | None = Field(default=None, validation_alias="ZOHO_NOTIFY_TOKEN")
    zoho_channel_check_s: int = Field(default=3600, ge=0, le=86_400, validation_alias="ZOHO_CHANNEL_CHECK_S")

    # Reconciliation sweep (workers/sweep.py): every SWEEP_INTERVAL_S seconds (0: never) one worker lists each
    # source's records modified since the last sweep ended (SWEEP_LOOKBACK_S back on the first) and queues them.
    sweep_interval_s: int = Field(default=600, ge=0, validation_alias="SWEEP_INTERVAL_S")
    sweep_lookback_s: int = Field(default=86_400, ge=1, validation_alias="SWEEP_LOOKBACK_S")

    # CRM limits shared by every worker process (workers/crm/limits.py): Zoho's concurrency cap per org
    # (unset: by ZOHO_EDITION, whose caps docs/zoho-crm.md lists) and HubSpot's requests per ten-second window.
    zoho_edition: Edition = Field(default="professional", validation_alias="ZOHO_EDITION")
    zoho_max_concurrency: int | None = Field(default=None, ge=1, le=100, validation_alias="ZOHO_MAX_CONCURRENCY")
    hubspot_requests_per_10s: int = Field(default=100, ge=1, le=1000, validation_alias="HUBSPOT_REQUESTS_PER_10S")

    http_timeout_s: float = Field(default=10.0, gt=0, le=120, validation_alias="CRM_HTTP_TIMEOUT_S")

    # arq tuning: a ~10 ms poll keeps pick-up latency in milliseconds; a job held by a killed worker is
    # picked up again after job_timeout_s + 10 s (arq's in-progress key), so well within a minute.
    # Jobs at once per worker. Measured (docs/configuration.md, "How many jobs at once"): 25 carries 86 reschedules/s
    # at 50 ms CRM latency against 53 with 10, bound there by Zoho Professional's 15 calls at once; but with 25 the
    # soak (tests/e2e/test_soak.py) failed once in two runs: HubSpot jobs deferred by the full 10 s window after
    # their first call repeat it when they run again, and more jobs at once waste more of the window. Kept at 10
    # until that is fixed.
    max_jobs: int = Field(default=25, ge=1, le=500, validation_alias="WORKER_MAX_JOBS")
    poll_delay_s: float = Field(default=0.01, gt=0, le=5, validation_alias="WORKER_POLL_DELAY_S")
    job_timeout_s: float = Field(default=30.0, ge=5, le=300, validation_alias="WORKER_JOB_TIMEOUT_S")
    keep_result_s: int = Field(default=86_400, ge=60, validation_alias="WORKER_KEEP_RESULT_S")

    # On SIGTERM: stop taking jobs, give running ones this long to finish, then hand them back to the queue.
    shutdown_grace_s: int = Field(default=25, ge=0, le=600, validation_alias="WORKER_SHUTDOWN_GRACE_S")

    # Retries of transient failures: exponential backoff with full jitter, then a dead letter.
    max_tries: int = Field(default=12, ge=1, le=100, validation_alias="WORKER_MAX_TRIES")
    # Nor retried past this age (counted from when the job was queued); arq forgets a job 24 h after that.
    max_age_s: int = Field(default=72_000, ge=60, le=82_800, validation_alias="WORKER_MAX_AGE_S")
    retry_base_s: float = Field(default=2.0, gt=0, validation_alias="WORKER_RETRY_BASE_S")
    retry_cap_s: float = Field(default=300.0, gt=0, validation_alias="WORKER_RETRY_CAP_S")

    # How long a Redis outage (restart, failover, maxmemory, read-only) is waited out before a command fails.
    redis_outage_s: float = Field(default=30.0, gt=0, le=600, validation_alias="WORKER_REDIS_OUTAGE_S")

    # The event log (workers/eventlog.py): entries older than this, and the oldest beyond this many, are dropped.
    event_log_max_age_s: int = Field(default=604_800, ge=60, validation_alias="EVENT_LOG_MAX_AGE_S")
    event_log_max_entries: int = Field(default=100_000, ge=1, validation_alias="EVENT_LOG_MAX_ENTRIES")
    # Prometheus metrics of this worker process on http://0.0.0.0:WORKER_METRICS_PORT/metrics (0: none); each
    # worker process on a host needs a port of its own (workers/metrics_server.py).
    metrics_port: int = Field(default=0, ge=0, le=65_535, validation_alias="WORKER_METRICS_PORT")

    # Test hook (workers/checkpoints.py): hold jobs at this named point so a test can kill the worker there.
    test_pause_at: str | None = Field(default=None, validation_alias="CRMFLOW_TEST_PAUSE_AT")

    @field_validator("zoho_api_domain", "zoho_accounts_url", "hubspot_api_base")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return base_url(value)

    @field_validator("public_base_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        return public_url(value)

    @field_validator("zoho_channel_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        return channel_ids(value)

    @field_validator("zoho_notify_token")
    @classmethod
    def _token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        return notify_token(value)

    @field_validator("zoho_client_secret", "zoho_refresh_token", "hubspot_access_token")
    @classmethod
    def _not_blank(cls, value: SecretStr | None) -> SecretStr | None:
        return not_blank(value)

    @model_validator(mode="after")
    def _sources(self) -> Self:
        given = [self.zoho_client_id, self.zoho_client_secret, self.zoho_refresh_token]
        if any(value is not None for value in given) and not all(value is not None for value in given):
            missing = ", ".join(name for name, value in zip(_ZOHO, given, strict=True) if value is None)
            raise ValueError(f"{missing}: not set; Zoho needs all of {', '.join(_ZOHO)}")
        if not self.sources:
            raise ValueError(
                "no source is configured: set ZOHO_CLIENT_ID, ZOHO_CLIENT_SECRET and ZOHO_REFRESH_TOKEN (Zoho) "
                "and/or HUBSPOT_ACCESS_TOKEN (HubSpot)"
            )
        return self

    @model_validator(mode="after")
    def _channel_upkeep(self) -> Self:
        # The workers keep the channels alive (workers/channels.py); a channel without the token would have
        # its callbacks refused by the receiver, so the token is required rather than left out.
        upkeep = self.zoho_client_id is not None and self.public_base_url and self.zoho_channel_ids
        if upkeep and self.zoho_channel_check_s > 0 and self.zoho_notify_token is None:
            raise ValueError(
                "ZOHO_NOTIFY_TOKEN: is not set; workers keep the Zoho channels in ZOHO_CHANNEL_IDS alive (with "
                "PUBLIC_BASE_URL set) and each channel needs the token the receiver checks "
                "(or set ZOHO_CHANNEL_CHECK_S=0 to leave channel upkeep to `crmflow zoho renew`)"
            )
        return self

    @property
    def zoho_concurrency(self) -> int:
        """Zoho's concurrency cap for this org: ZOHO_MAX_CONCURRENCY, else the ZOHO_EDITION's (Professional: 15)."""
        return self.zoho_max_concurrency or edition_concurrency(self.zoho_edition)

    @property
    def crm_limit_wait_s(self) -> float:
        """How long one CRM call may wait for the shared limiter: a sixth of a job's time (5 s by default)."""
        return self.job_timeout_s / 6

    @property
    def sources(self) -> list[str]:
        """The CRMs this worker serves."""
        active = ["zoho"] if self.zoho_client_id is not None else []
        return [*active, "hubspot"] if self.hubspot_access_token is not None else active


# Checks shared with other settings that read the same variables (crmflow/zoho_cli.py).


def base_url(value: str) -> str:
    """An http(s) URL, without a trailing slash."""
    AnyHttpUrl(value)  # raises a ValidationError naming the setting when it is not an http(s) URL
    return value.rstrip("/")


def public_url(value: str | None) -> str | None:
    """PUBLIC_BASE_URL: an http(s) base URL without query or fragment, without a trailing slash."""
    if value is None:
        return None
    AnyHttpUrl(value)
    if "?" in value or "#" in value:
        raise ValueError("must be a base URL without query or fragment")
    return value.rstrip("/")


def channel_ids(value: object) -> object:
    """ZOHO_CHANNEL_IDS: comma-separated numbers, as a tuple without duplicates."""
    if isinstance(value, str):
        ids = tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
        if any(not part.isdigit() for part in ids):
            raise ValueError("must be comma-separated numbers (Zoho's channel_id is a long)")
        return ids
    return value


def notify_token(value: SecretStr | None) -> SecretStr | None:
    """ZOHO_NOTIFY_TOKEN: 1 to 50 characters."""
    if value is not None and not 1 <= len(value.get_secret_value()) <= 50:
        raise ValueError("must be 1 to 50 characters (Zoho's limit for a channel token)")
    return value


def not_blank(value: SecretStr | None) -> SecretStr | None:
    """A secret that, when set, is not empty."""
    if value is not None and not value.get_secret_value().strip():
        raise ValueError("must not be empty")
    return value
