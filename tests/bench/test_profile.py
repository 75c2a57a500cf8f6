"""bench/profile.py: the top functions from py-spy's collapsed stacks."""

from __future__ import annotations

from bench.profile import top_functions

COLLAPSED = """main (app.py:1);handle (app.py:10);parse (json.py:5) 30
main (app.py:1);handle (app.py:10);write (redis.py:7) 60
main (app.py:1);idle (loop.py:3) 10
not a stack line
"""


def test_self_and_total_shares() -> None:
    text = top_functions(COLLAPSED)
    lines = text.splitlines()
    assert lines[0] == "100 samples"
    own = lines[3 : lines.index("", 3)]
    assert own[0].split() == ["60.0", "write", "(redis.py:7)"]
    assert own[1].split() == ["30.0", "parse", "(json.py:5)"]
    total = lines[lines.index("total %  function (file:line)") + 1 :]
    assert total[0].split() == ["100.0", "main", "(app.py:1)"]
    assert total[1].split() == ["90.0", "handle", "(app.py:10)"]


def test_no_samples() -> None:
    assert top_functions("").startswith("0 samples")
