"""Debian's chromium for the console's browser test and screenshot: where it is, and how it must be started here."""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# As root, and on a machine whose network is closed: no sandbox, and none of chromium's background connections.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium() -> None:
    """Skip, saying why, when Debian's chromium is not installed (CI installs it: .ci/run)."""
    if not CHROMIUM.exists():
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (`apt-get install chromium`; .ci/run does)")
