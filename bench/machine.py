"""Machine: what the benchmark ran on (CPU model, cores, RAM, kernel, Python, Redis) and how busy it was."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def cpu_model(cpuinfo: str) -> str:
    """The first `model name` in /proc/cpuinfo's text, else the platform's processor string."""
    for line in cpuinfo.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def mem_total_mb(meminfo: str) -> float:
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def describe(redis_version: str) -> dict[str, Any]:
    """The machine now; `load_before`/`load_after` are added by the run around the measurements."""
    return {
        "cpu": cpu_model(_read("/proc/cpuinfo")),
        "cores": os.cpu_count() or 0,
        "ram_mb": round(mem_total_mb(_read("/proc/meminfo"))),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "redis": redis_version,
        "hostname": platform.node(),
    }
