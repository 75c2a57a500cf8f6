"""The YAML reader: YAML 1.2 core scalars, JSON types only, duplicate keys refused with their line."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from workers.rules.yamltext import describe_yaml_error, parse_yaml


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("[true, True, FALSE]", [True, True, False]),
        ("[yes, No, on, OFF, y, n]", ["yes", "No", "on", "OFF", "y", "n"]),
        ("[0, 12, -3, +4, 010]", [0, 12, -3, 4, 10]),
        ("[0x1F, 0o17, 1_000, '1', 1:30]", ["0x1F", "0o17", "1_000", "1", "1:30"]),
        ("[1.5, -0.5, .5, 1e3, 1.]", [1.5, -0.5, 0.5, 1000.0, 1.0]),
        ("[2024-05-01, 2024-05-01T10:00:00+05:30]", ["2024-05-01", "2024-05-01T10:00:00+05:30"]),
        ("[~, null, '', \"\"]", [None, None, "", ""]),
        ("[!!int '12', !!float 1, !!bool true, !!str 12]", [12, 1.0, True, "12"]),
        ("{base: &b {x: 1, y: 2}, copy: {<<: *b, y: 3}}", {"base": {"x": 1, "y": 2}, "copy": {"x": 1, "y": 3}}),
        ("", None),
        ("# nothing\n", None),
    ],
)
def test_values(text: str, value: Any) -> None:
    assert parse_yaml(text) == value


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a: 1\nb: 2\na: 3\n", "line 3, column 1: duplicate key 'a' (first defined at line 1)"),
        ("a:\n  b: 1\n  c: 2\n  b: 3\n", "line 4, column 3: duplicate key 'b' (first defined at line 2)"),
        ("{1: a, 1: b}", "line 1, column 8: duplicate key 1 (first defined at line 1)"),
        ("a: !!int 0x1F", "line 1, column 4: '0x1F' is not a decimal integer"),
        ("a: !!float x", "line 1, column 4: 'x' is not a number"),
        ("a: !!bool yes", "line 1, column 4: 'yes' is not true or false"),
        ("a: !!set {x}", "line 1, column 4: could not determine a constructor for the tag 'tag:yaml.org,2002:set'"),
        (
            "a: !!timestamp 2024-05-01",
            "line 1, column 4: could not determine a constructor for the tag 'tag:yaml.org,2002:timestamp'",
        ),
        ("a: !custom x", "line 1, column 4: could not determine a constructor for the tag '!custom'"),
        ("{[1]: a}", "line 1, column 2: while constructing a mapping: found unhashable key"),
        ("a: b: c", "line 1, column 5: mapping values are not allowed here"),
        (
            "a:\n\tb: 1",
            "line 2, column 1: while scanning for the next token: found character '\\t' that cannot start any token",
        ),
        ("a: 1\n\x00", "line 2, column 1: character U+0000 is not allowed in YAML"),
    ],
)
def test_errors(text: str, problem: str) -> None:
    with pytest.raises(yaml.YAMLError) as caught:
        parse_yaml(text)

    assert describe_yaml_error(caught.value, text) == problem
