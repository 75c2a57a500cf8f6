"""Load settings for an entry point, turning validation errors into one line per setting, named as in the env."""

from __future__ import annotations

from typing import TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings

SettingsT = TypeVar("SettingsT", bound=BaseSettings)


class SettingsError(Exception):
    """One or more settings are missing or invalid; the message names each of them."""


def describe(exc: ValidationError) -> list[str]:
    """One line per failing setting: its environment variable name and what is wrong (never its value)."""
    lines = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        name = ".".join(str(part) for part in error["loc"]).upper()
        problem = "is not set" if error["type"] == "missing" else error["msg"]
        # A check across settings names them itself, as "Value error, NAME: ...".
        lines.append(f"{name}: {problem}" if name else problem.removeprefix("Value error, "))
    return lines


def load_settings(cls: type[SettingsT]) -> SettingsT:
    """Read `cls` from the environment and .env, or raise SettingsError naming every bad setting."""
    try:
        return cls()
    except ValidationError as exc:
        raise SettingsError("\n".join(describe(exc))) from None
