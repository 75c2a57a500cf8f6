"""Procs: CPU time and peak RSS (VmHWM) of the stack's processes, by pid."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import psutil


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds the process has used so far (0 when it is gone)."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


def vm_hwm_mb(status: str) -> float:
    """The peak resident set size from /proc/<pid>/status text, in MB (MiB)."""
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb(pid: int) -> float:
    try:
        return vm_hwm_mb(Path(f"/proc/{pid}/status").read_text())
    except OSError:
        return 0.0


def cpu_snapshot(pids: Mapping[str, int]) -> dict[str, float]:
    return {role: cpu_seconds(pid) for role, pid in pids.items()}


def cpu_ms_per_unit(before: Mapping[str, float], after: Mapping[str, float], units: int) -> dict[str, float]:
    """CPU milliseconds per unit of work for each role, plus `workers` (their sum) and `product` (receiver
    and workers): the share of the work crmflow's own processes cost."""
    per = {role: (after[role] - before.get(role, 0.0)) * 1000 / max(units, 1) for role in after}
    workers = sum(v for role, v in per.items() if role.startswith("worker-"))
    return {
        k: round(v, 3) for k, v in (per | {"workers": workers, "product": workers + per.get("receiver", 0.0)}).items()
    }


def peak_rss(pids: Mapping[str, int]) -> dict[str, float]:
    return {role: round(peak_rss_mb(pid), 1) for role, pid in pids.items()}
