"""Receiver settings from the environment (and .env); built only by the entry point."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class ReceiverConfig(BaseSettings):
    """What the webhook receiver needs to run. A source is served only when its settings are present."""

    # An empty value (`NAME=` in .env or the environment) means "not set", so a CRM left blank is simply off.
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False, env_ignore_empty=True)

    redis_url: str = Field(default="redis://127.0.0.1:6379/0", validation_alias="REDIS_URL")
    max_body_bytes: int = Field(default=1_048_576, ge=1024, validation_alias="RECEIVER_MAX_BODY_BYTES")
    # The whole body must arrive within this many seconds of the route starting to read it (else 408), so a
    # sender that trickles its body or stops mid-way does not hold the request open.
    body_timeout_s: float = Field(default=10.0, gt=0, le=300, validation_alias="RECEIVER_BODY_TIMEOUT_S")
    # The connection layer (receiver/server.py). A connection must send a complete request head within this many
    # seconds of opening (or of its next request's first byte), else it is closed.
    header_timeout_s: float = Field(default=10.0, gt=0, le=300, validation_alias="RECEIVER_HEADER_TIMEOUT_S")
    # Requests served at once; more get a JSON 503 at once. Bounds memory to about this many times the body cap.
    max_requests: int = Field(default=200, ge=1, validation_alias="RECEIVER_MAX_REQUESTS")
    # Open sockets, idle or not; a connection beyond this gets a JSON 503 and is closed.
    max_connections: int = Field(default=1000, ge=1, validation_alias="RECEIVER_MAX_CONNECTIONS")

    # Zoho echoes this token (chosen when the watch channel was enabled, at most 50 characters) in callbacks.
    zoho_notify_token: SecretStr | None = Field(default=None, validation_alias="ZOHO_NOTIFY_TOKEN")
    # When set, only callbacks from these watch channels are accepted (comma-separated channel ids).
    zoho_channel_ids: Annotated[frozenset[str] | None, NoDecode] = Field(
        default=None, validation_alias="ZOHO_CHANNEL_IDS"
    )

    # The HubSpot app's client secret: the key of X-HubSpot-Signature-v3.
    hubspot_client_secret: SecretStr | None = Field(default=None, validation_alias="HUBSPOT_CLIENT_SECRET")
    # The externally visible base URL of this receiver (what HubSpot calls, before any TLS proxy).
    public_base_url: str | None = Field(default=None, validation_alias="PUBLIC_BASE_URL")
    # Accept HubSpot's legacy v1/v2 signatures (no timestamp, so replayable) when a request has no v3 one.
    hubspot_accept_v1: bool = Field(default=False, validation_alias="HUBSPOT_ACCEPT_V1")

    @field_validator("zoho_notify_token")
    @classmethod
    def _token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not 1 <= len(value.get_secret_value()) <= 50:
            raise ValueError("must be 1 to 50 characters (Zoho's limit for a channel token)")
        return value

    @field_validator("zoho_channel_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            ids = frozenset(part.strip() for part in value.split(",") if part.strip())
            return ids or None
        return value

    @field_validator("public_base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        AnyHttpUrl(value)
        if "?" in value or "#" in value:
            raise ValueError("must be a base URL without query or fragment")
        return value.rstrip("/")

    @field_validator("hubspot_client_secret")
    @classmethod
    def _secret_not_blank(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value

    @model_validator(mode="after")
    def _sources(self) -> Self:
        if self.hubspot_client_secret is not None and self.public_base_url is None:
            raise ValueError(
                "PUBLIC_BASE_URL: is not set; HubSpot signs the URL it calls, so HUBSPOT_CLIENT_SECRET needs it"
            )
        if not self.sources:
            raise ValueError(
                "no source is configured: set ZOHO_NOTIFY_TOKEN (Zoho) and/or "
                "HUBSPOT_CLIENT_SECRET with PUBLIC_BASE_URL (HubSpot)"
            )
        return self

    @property
    def sources(self) -> list[str]:
        """The sources this receiver serves."""
        active = ["zoho"] if self.zoho_notify_token is not None else []
        return [*active, "hubspot"] if self.hubspot_client_secret is not None else active
