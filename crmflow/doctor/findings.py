"""Doctor findings: one per check (the setting at fault, ok/warn/fail/skip, what was found, how to fix it). Pure.

A finding names settings, never their values. Only `fail` makes `crmflow doctor` exit non-zero; `warn` is
something to look at, `skip` a check that could not run (its cause is a failure of its own).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

Status = Literal["ok", "warn", "fail", "skip"]
LABELS: dict[Status, str] = {"ok": "ok", "warn": "WARN", "fail": "FAIL", "skip": "skip"}


@dataclass(frozen=True)
class Finding:
    """What one check found. `setting`: the environment variable(s) at fault, comma-separated ("" for none)."""

    check: str
    status: Status
    message: str
    setting: str = ""
    fix: str = ""


def ok(check: str, message: str, setting: str = "") -> Finding:
    return Finding(check, "ok", message, setting)


def warn(check: str, message: str, setting: str = "", fix: str = "") -> Finding:
    return Finding(check, "warn", message, setting, fix)


def fail(check: str, message: str, setting: str = "", fix: str = "") -> Finding:
    return Finding(check, "fail", message, setting, fix)


def skip(check: str, message: str, setting: str = "") -> Finding:
    return Finding(check, "skip", message, setting)


def failed(findings: Iterable[Finding]) -> bool:
    """Whether any check failed (warnings and skips do not fail)."""
    return any(finding.status == "fail" for finding in findings)


def line(finding: Finding) -> str:
    """`SETTING: message (fix: ...)`, the form start-up errors and logs use."""
    head = f"{finding.setting}: {finding.message}" if finding.setting else finding.message
    return f"{head} (fix: {finding.fix})" if finding.fix else head


def empty_request(status: int) -> str:
    """What a probe's empty write got, worded by its status: refused (4xx, as meant), or taken with nothing in
    it to create (2xx), or just its status."""
    if 400 <= status < 500:
        return f"the empty request was refused, HTTP {status}, as meant"
    if 200 <= status < 300:
        return f"the empty request was accepted, HTTP {status}, with nothing in it to create"
    return f"the empty request answered HTTP {status}"


def render_text(findings: Sequence[Finding]) -> str:
    """One line per finding (`ok    check: SETTING: message`), its fix indented below, then a summary."""
    lines = []
    for finding in findings:
        head = f"{finding.setting}: {finding.message}" if finding.setting else finding.message
        lines.append(f"{LABELS[finding.status]:<5} {finding.check}: {head}")
        if finding.fix:
            lines.append(f"      fix: {finding.fix}")
    lines.append(summary(findings))
    return "\n".join(lines)


def summary(findings: Sequence[Finding]) -> str:
    """`doctor: 1 failed, 2 warnings, 14 ok, 1 skipped`."""
    count = {status: sum(1 for f in findings if f.status == status) for status in LABELS}
    warnings = "warning" if count["warn"] == 1 else "warnings"
    return f"doctor: {count['fail']} failed, {count['warn']} {warnings}, {count['ok']} ok, {count['skip']} skipped"


def render_json(findings: Sequence[Finding]) -> str:
    """`{"ok": bool, "findings": [{check, status, setting, message, fix}, ...]}`."""
    return json.dumps({"ok": not failed(findings), "findings": [asdict(f) for f in findings]}, indent=2)
