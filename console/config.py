"""Console settings from the environment (and .env); built only by the entry point."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Below this many characters a token is too easy to guess; `openssl rand -hex 32` gives 64.
MIN_TOKEN_CHARS = 16


class ConsoleConfig(BaseSettings):
    """What `crmflow console` needs: its token, how long a login lasts, and the Redis it reads."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False, env_ignore_empty=True)

    # Required: the console refuses to start without it. Sent as `Authorization: Bearer <token>`, or typed into
    # the login form; also the key that signs session cookies, so changing it logs every session out.
    console_token: SecretStr = Field(validation_alias="CONSOLE_TOKEN")
    # How long a login lasts (the session cookie's and its Redis key's lifetime).
    session_s: int = Field(default=43_200, ge=60, le=30 * 86_400, validation_alias="CONSOLE_SESSION_S")
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", validation_alias="REDIS_URL")
    # Optional: the receiver's base URL as the console reaches it (e.g. http://receiver:8000), so that the health
    # page checks its /readyz. Unset: the page shows the receiver's last accepted notifications only.
    receiver_url: str | None = Field(default=None, validation_alias="CONSOLE_RECEIVER_URL")

    @field_validator("receiver_url")
    @classmethod
    def _receiver_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL, e.g. http://127.0.0.1:8000")
        return None if value is None else value.rstrip("/")

    @field_validator("console_token")
    @classmethod
    def _token_length(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value().strip()) < MIN_TOKEN_CHARS:
            raise ValueError(f"must be at least {MIN_TOKEN_CHARS} characters (e.g. `openssl rand -hex 32`)")
        return value
