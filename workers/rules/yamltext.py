"""YAML text to data: safe types only, YAML 1.2 scalars, duplicate keys rejected. Pure."""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable
from typing import Any, ClassVar

import yaml
from yaml import SafeLoader
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, ScalarNode
from yaml.reader import ReaderError

_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_MERGE = "tag:yaml.org,2002:merge"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_NULL = "tag:yaml.org,2002:null"
_STR = "tag:yaml.org,2002:str"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"

# YAML 1.2 core schema, where PyYAML follows YAML 1.1: only true/false are booleans (a picklist value such as
# Yes, No, On or Off stays text); integers are decimal (0x1F, 1_000 and 1:30 stay text, 010 is ten); there is
# no timestamp type (dates and times stay text, the way the CRM sends them).
_CORE_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_CORE_INT = re.compile(r"^[-+]?[0-9]+$")
_CORE_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)


def _checked(pattern: re.Pattern[str], kind: str, construct: Callable[[SafeLoader, ScalarNode], Any]) -> Any:
    def constructor(loader: SafeLoader, node: ScalarNode) -> Any:
        text = loader.construct_scalar(node)
        if not pattern.match(text):
            raise ConstructorError(None, None, f"{text!r} is not {kind}", node.start_mark)
        return construct(loader, node)

    return constructor


def _decimal(loader: SafeLoader, node: ScalarNode) -> int:
    return int(loader.construct_scalar(node))


def _core_resolvers() -> dict[Any, list[tuple[str, re.Pattern[str]]]]:
    resolvers = {
        first: [(tag, regexp) for tag, regexp in entries if tag not in {_BOOL, _INT, _FLOAT, _TIMESTAMP}]
        for first, entries in SafeLoader.yaml_implicit_resolvers.items()
    }
    for tag, regexp, firsts in (
        (_BOOL, _CORE_BOOL, "tTfF"),
        (_INT, _CORE_INT, "-+0123456789"),
        (_FLOAT, _CORE_FLOAT, "-+.0123456789"),
    ):
        for first in firsts:
            resolvers.setdefault(first, []).append((tag, regexp))
    return resolvers


class StrictLoader(SafeLoader):
    """SafeLoader with YAML 1.2 core scalars, JSON types only, that refuses a mapping with a key twice."""

    yaml_implicit_resolvers = _core_resolvers()
    # Explicit tags (!!int, !!float, !!bool) get the same checks; tags of non-JSON types (!!set, ...) are unknown.
    yaml_constructors: ClassVar[dict[str | None, Any]] = {
        **{tag: SafeLoader.yaml_constructors[tag] for tag in (_NULL, _STR, _SEQ, _MAP, None)},
        _BOOL: _checked(_CORE_BOOL, "true or false", SafeLoader.construct_yaml_bool),
        _INT: _checked(_CORE_INT, "a decimal integer", _decimal),
        _FLOAT: _checked(_CORE_FLOAT, "a number", SafeLoader.construct_yaml_float),
    }

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        first_lines: dict[Hashable, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE:
                continue  # '<<: *defaults' may override keys on purpose.
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                continue  # SafeConstructor reports unhashable keys itself.
            if key in first_lines:
                raise ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first defined at line {first_lines[key]})",
                    key_node.start_mark,
                )
            first_lines[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str) -> Any:
    """The data in one YAML document (None when it is empty); raises yaml.YAMLError."""
    return yaml.load(text, Loader=StrictLoader)  # StrictLoader is a SafeLoader: no Python objects


def describe_yaml_error(exc: yaml.YAMLError, text: str) -> str:
    """One line for a YAML error in `text`: 'line L, column C: problem' whenever the position is known."""
    if isinstance(exc, ReaderError):
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        return f"{_position(text, exc.position)}: character {char} is not allowed in YAML"
    if isinstance(exc, yaml.MarkedYAMLError) and (mark := exc.problem_mark or exc.context_mark) is not None:
        problem = ": ".join(part for part in (exc.context, exc.problem) if part)
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return f"invalid YAML: {' '.join(str(exc).split())}"


def _position(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"line {line}, column {column}"
