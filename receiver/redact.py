"""Redact: the configured secrets never reach an error answer or a log line, whatever a request echoes. Pure."""

from __future__ import annotations

import re

from receiver.config import ReceiverConfig

# Shorter secrets are not redacted: they would match ordinary words in messages (and are too short to be safe).
MIN_REDACTED_LENGTH = 8
REDACTED = "[redacted]"


def secret_pattern(config: ReceiverConfig) -> re.Pattern[str] | None:
    """A case-insensitive pattern matching any configured secret (Zoho's token, HubSpot's client secret)."""
    values = [
        secret.get_secret_value()
        for secret in (config.zoho_notify_token, config.hubspot_client_secret)
        if secret is not None and len(secret.get_secret_value()) >= MIN_REDACTED_LENGTH
    ]
    if not values:
        return None
    # Longest first, so that a secret containing another is replaced whole. re caches the compiled pattern.
    return re.compile("|".join(re.escape(value) for value in sorted(values, key=len, reverse=True)), re.IGNORECASE)


def redact(text: str, pattern: re.Pattern[str] | None) -> str:
    """`text` with every secret replaced by [redacted]."""
    return text if pattern is None else pattern.sub(REDACTED, text)
