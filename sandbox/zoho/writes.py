"""Results of multi-record writes: per-record successes and errors, the HTTP status, and what changed. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sandbox.zoho.errors import RecordError

Operation = Literal["insert", "update", "delete"]


@dataclass(frozen=True)
class RecordSuccess:
    """One record written: `{"code":"SUCCESS","details":{...},"message":...,"status":"success"}`."""

    message: str
    details: dict[str, Any]

    def body(self) -> dict[str, Any]:
        return {"code": "SUCCESS", "details": self.details, "message": self.message, "status": "success"}


@dataclass(frozen=True)
class RecordChange:
    """A record that changed, for notification callbacks. `values` are rendered (Zoho strings)."""

    module: str
    record_id: str
    operation: Operation
    fields: tuple[str, ...]
    values: dict[str, Any]


@dataclass(frozen=True)
class WriteOutcome:
    """Everything a multi-record write produced, in input order."""

    results: list[RecordSuccess | RecordError]
    changes: list[RecordChange] = field(default_factory=list)

    def body(self, key: str = "data") -> dict[str, Any]:
        return {key: [result.body() for result in self.results]}

    def status(self, success_status: int) -> int:
        """`success_status` when all succeeded, the first error's status when all failed, else 207."""
        return multi_status(self.results, success_status)


def multi_status(results: Sequence[RecordSuccess | RecordError], success_status: int) -> int:
    errors = [result for result in results if isinstance(result, RecordError)]
    if not errors:
        return success_status
    if len(errors) == len(results):
        return errors[0].status
    return 207
