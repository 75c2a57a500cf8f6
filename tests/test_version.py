"""`crmflow --version`: the installed package's version."""

from __future__ import annotations

from importlib.metadata import version

from click.testing import CliRunner

from crmflow.cli import main


def test_version_names_the_installed_package() -> None:
    done = CliRunner().invoke(main, ["--version"])

    assert done.exit_code == 0
    assert done.output == f"crmflow {version('crmflow')}\n"
