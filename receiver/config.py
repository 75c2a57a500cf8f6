"""Receiver settings from the environment (and .env); built only by the entry point."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class ReceiverConfig(BaseSettings):
    """What the webhook receiver needs to run."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    redis_url: str = Field(default="redis://127.0.0.1:6379/0", validation_alias="REDIS_URL")
    # Zoho echoes this token (set when the watch channel was enabled, at most 50 characters) in every callback.
    zoho_notify_token: SecretStr = Field(validation_alias="ZOHO_NOTIFY_TOKEN")
    # When set, only callbacks from these watch channels are accepted (comma-separated channel ids).
    zoho_channel_ids: Annotated[frozenset[str] | None, NoDecode] = Field(
        default=None, validation_alias="ZOHO_CHANNEL_IDS"
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1024, validation_alias="RECEIVER_MAX_BODY_BYTES")

    @field_validator("zoho_notify_token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        if not 1 <= len(value.get_secret_value()) <= 50:
            raise ValueError("must be 1 to 50 characters (Zoho's limit for a channel token)")
        return value

    @field_validator("zoho_channel_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            ids = frozenset(part.strip() for part in value.split(",") if part.strip())
            return ids or None
        return value
