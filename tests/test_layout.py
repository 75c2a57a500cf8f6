"""The layout's promises, checked on the source text: who may import what, and where Redis keys are spelt."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def modules(*folders: str) -> Iterator[Path]:
    for folder in folders:
        yield from sorted((REPO / folder).rglob("*.py"))


def imported(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def importers(prefix: str, *folders: str) -> list[str]:
    return [
        str(path.relative_to(REPO))
        for path in modules(*folders)
        if any(name == prefix or name.startswith(f"{prefix}.") for name in imported(path))
    ]


def test_product_code_never_imports_the_sandbox() -> None:
    assert importers("sandbox", "receiver", "workers", "crmflow", "console") == []


def test_the_console_is_apart_from_the_receiver() -> None:
    # A process of its own, never served where webhooks are: neither imports the other.
    assert importers("console", "receiver", "workers") == []
    assert importers("receiver", "console") == []


def test_the_queue_producer_is_the_workers_not_the_receivers() -> None:
    assert not (REPO / "receiver" / "enqueue.py").exists()
    assert importers("receiver.enqueue", "crmflow", "tests", "receiver", "workers") == []


def test_workers_never_import_the_receiver() -> None:
    assert importers("receiver", "workers") == []


def test_redis_keys_are_spelt_only_in_the_inventory() -> None:
    spelt = re.compile(r"""["'](crmflow|arq):[a-z]""")
    places = [
        f"{path.relative_to(REPO)}:{number}"
        for path in modules("receiver", "workers", "crmflow", "console")
        if path != REPO / "workers" / "keys.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if spelt.search(line)
    ]
    assert places == []
