"""The benchmark suite's smoke run, for real: `python -m bench --smoke` writes every section with positive numbers."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.processes import REPO

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk (apt-get install wrk; .ci/run installs it)"),
]


@pytest.mark.timeout(300)
def test_the_smoke_run_measures_every_section(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result: dict[str, Any] = orjson.loads((tmp_path / "latest.json").read_bytes())

    for section in ("settings", "machine", "receiver", "e2e", "peak_rss_mb", "profiles"):
        assert section in result, section
    assert result["machine"]["cores"] > 0 and result["machine"]["redis"]
    for source in ("zoho", "hubspot"):
        entry = result["receiver"][source]
        assert entry["ratio"] > 0
        for target in ("receiver", "bare"):
            assert entry[target]["req_per_s"] > 0 and entry[target]["p99_ms"] > 0
            assert entry[target]["non_2xx"] == 0, f"{source} {target}: requests refused"
        # Every request was new: no repeat measured the receiver's cheap duplicate path (review finding 3).
        assert entry["receiver"]["duplicates"] == 0, f"{source}: requests repeated"
    for kind in ("saturation", "e2e_saturation", "fixed", "sweep"):
        runs = result["e2e"][kind]
        assert runs, kind
        for run in runs:
            assert run["missing_rows"] == 0 and run["rows"] > 0, run
            assert run["callback_errors"] == 0
            if kind == "saturation":  # the worker drain rate: its latency would include the pause
                assert "p50_ms" not in run and run["rows_per_s"] > 0
            else:
                assert run["p50_ms"] > 0 and run["p99_ms"] >= run["p50_ms"]
                assert run["wait_p99_ms"] is not None and run["wait_p99_ms"] <= run["p99_ms"]
    for run in result["e2e"]["saturation"]:
        cpu = run["cpu_ms_per_reschedule"]
        assert cpu["receiver"] > 0 and cpu["workers"] > 0 and cpu["product"] > 0
    assert all(mb > 0 for mb in result["peak_rss_mb"].values())
    assert result["peak_rss_mb"]["receiver"] > 0 and any(k.startswith("worker-") for k in result["peak_rss_mb"])
    for name in ("latest.md", "latency.png", "profile-worker.svg", "profile-worker.txt", "profile-receiver.svg"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert "samples" in (tmp_path / "profile-receiver.txt").read_text()
