"""Profile: py-spy record of one process for a while: a flamegraph SVG and a text summary of the top functions."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from subprocess import DEVNULL

TOP = 25


def top_functions(collapsed: str, top: int = TOP) -> str:
    """From py-spy's raw (collapsed) stacks: the functions with the most samples on CPU themselves (self) and
    anywhere on the stack (total), as a text table."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        samples += count
        frames = [f for f in stack.split(";") if f]
        if not frames:
            continue
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    lines = [f"{samples} samples", "", "self %  function (file:line)"]
    lines += [f"{100 * n / max(samples, 1):6.1f}  {frame}" for frame, n in own.most_common(top)]
    lines += ["", "total %  function (file:line)"]
    lines += [f"{100 * n / max(samples, 1):6.1f}  {frame}" for frame, n in total.most_common(top)]
    return "\n".join(lines) + "\n"


class Recording:
    """Two py-spy recorders on `pid` (an SVG flamegraph and raw stacks), started now, ended by `finish`."""

    def __init__(self, pid: int, seconds: float, svg: Path, txt: Path, rate: int = 100) -> None:
        self.svg, self.txt = svg, txt
        self.raw = txt.with_suffix(".collapsed")
        common = ["record", "--pid", str(pid), "--duration", str(max(1, round(seconds))), "--rate", str(rate)]
        common.append("--nonblocking")
        spy = py_spy()
        self.processes = [
            subprocess.Popen([spy, *common, "--format", fmt, "-o", str(path)], stdout=DEVNULL, stderr=DEVNULL)
            for fmt, path in (("flamegraph", svg), ("raw", self.raw))
        ]

    def finish(self, timeout_s: float = 120) -> str:
        """Wait for both recorders; write the text summary; the summary's first lines."""
        for process in self.processes:
            process.wait(timeout=timeout_s)
        summary = top_functions(self.raw.read_text() if self.raw.exists() else "")
        self.txt.write_text(summary)
        self.raw.unlink(missing_ok=True)
        return summary


def py_spy() -> str:
    beside = Path(sys.executable).parent / "py-spy"
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise RuntimeError("py-spy not found: install the bench extra (make install)")
    return found
