"""Deterministic 19-digit record ids in the shape Zoho uses ("5545974000002556034")."""

from __future__ import annotations

FIRST_GENERATED_ID = 5545974000003000001


class IdSequence:
    """Hands out increasing numeric ids as strings, starting after the seed data's ids."""

    def __init__(self, start: int = FIRST_GENERATED_ID) -> None:
        self._next = start

    def next_id(self) -> str:
        value = self._next
        self._next += 1
        return str(value)


def is_record_id(value: str) -> bool:
    """Zoho record ids are long integers; anything else cannot name a record."""
    return value.isdigit() and 0 < len(value) <= 19
