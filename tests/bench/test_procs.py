"""bench/procs.py: peak RSS from /proc/<pid>/status, CPU per unit of work by role."""

from __future__ import annotations

import os

from bench.procs import cpu_ms_per_unit, cpu_seconds, peak_rss_mb, vm_hwm_mb

STATUS = "Name:\tpython\nVmPeak:\t  300000 kB\nVmHWM:\t   61440 kB\nVmRSS:\t   50000 kB\n"


def test_peak_rss_is_vm_hwm_in_mb() -> None:
    assert vm_hwm_mb(STATUS) == 60.0
    assert vm_hwm_mb("Name:\tkthreadd\n") == 0.0


def test_cpu_per_unit_adds_workers_and_product() -> None:
    before = {"receiver": 1.0, "worker-1": 2.0, "worker-2": 2.0, "sandbox": 5.0}
    after = {"receiver": 1.5, "worker-1": 4.0, "worker-2": 3.0, "sandbox": 6.0}
    per = cpu_ms_per_unit(before, after, 500)
    assert per == {"receiver": 1.0, "worker-1": 4.0, "worker-2": 2.0, "sandbox": 2.0, "workers": 6.0, "product": 7.0}


def test_this_process_is_measured_and_a_gone_one_is_zero() -> None:
    assert cpu_seconds(os.getpid()) > 0
    assert peak_rss_mb(os.getpid()) > 1
    assert cpu_seconds(2**22 + 7) == 0.0
    assert peak_rss_mb(2**22 + 7) == 0.0
