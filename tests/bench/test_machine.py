"""bench/machine.py: the CPU model and RAM read from /proc text, and this machine described."""

from __future__ import annotations

from bench.machine import cpu_model, describe, mem_total_mb


def test_cpu_model_and_ram_from_proc_text() -> None:
    assert cpu_model("processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: fpu\n") == "AMD EPYC 7B13"
    assert mem_total_mb("MemTotal:       2048000 kB\nMemFree: 1 kB\n") == 2000.0


def test_this_machine() -> None:
    found = describe("7.0.15")
    assert found["cores"] >= 1 and found["ram_mb"] > 0 and found["redis"] == "7.0.15"
    assert found["python"].count(".") == 2
