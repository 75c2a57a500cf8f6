"""Report: the results as JSON, a Markdown table with each issue-13 target's verdict, a latency plot, the docs."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

DOCS_START = "<!-- bench:results:start -->"
DOCS_END = "<!-- bench:results:end -->"


@dataclass(frozen=True)
class Target:
    """One target of issue 13: what it is, the bound, whether more is better, and where its value is."""

    name: str
    bound: float
    unit: str
    higher_is_better: bool
    value: Callable[[Mapping[str, Any]], float | None]


def _get(result: Mapping[str, Any], *path: str) -> Any:
    current: Any = result
    for step in path:
        if (isinstance(current, Mapping) and step in current) or (
            isinstance(current, list) and isinstance(step, int) and step < len(current)
        ):
            current = current[step]
        else:
            return None
    return current


def e2e_run(result: Mapping[str, Any], kind: str, workers: int, latency_ms: int) -> Mapping[str, Any] | None:
    for run in result.get("e2e", {}).get(kind, []):
        if run["workers"] == workers and run["latency_ms"] == latency_ms:
            found: Mapping[str, Any] = run
            return found
    return None


def _ratio(source: str) -> Callable[[Mapping[str, Any]], float | None]:
    def value(result: Mapping[str, Any]) -> float | None:
        ratio = _get(result, "receiver", source, "ratio")
        return None if ratio is None else 100 * float(ratio)

    return value


def _product_cpu(result: Mapping[str, Any]) -> float | None:
    run = e2e_run(result, "saturation", 1, 0)
    return None if run is None else _get(run, "cpu_ms_per_reschedule", "product")


def _throughput(result: Mapping[str, Any]) -> float | None:
    """End to end (everything running), not the workers' drain rate of a queue built beforehand."""
    run = e2e_run(result, "e2e_saturation", 2, 0)
    return None if run is None else run.get("rows_per_s")


def _p99_at_100(result: Mapping[str, Any]) -> float | None:
    run = e2e_run(result, "fixed", 1, 50)
    if run is None or run.get("rate") != 100 or run.get("p99_ms") is None:
        return None
    # A run that did not keep up has missed the target whatever its p99: count it as unbounded.
    return float(run["p99_ms"]) if run.get("kept_up") else float("inf")


def _rss(role: str) -> Callable[[Mapping[str, Any]], float | None]:
    def value(result: Mapping[str, Any]) -> float | None:
        peaks: dict[str, float] = result.get("peak_rss_mb", {})
        found = [v for k, v in peaks.items() if k == role or k.startswith(f"{role}-")]
        return max(found) if found else None

    return value


TARGETS = (
    Target("receiver vs bare Starlette, Zoho", 60.0, "% of bare", True, _ratio("zoho")),
    Target("receiver vs bare Starlette, HubSpot", 60.0, "% of bare", True, _ratio("hubspot")),
    Target("product CPU per reschedule (receiver + worker, 1 worker, 0 ms)", 2.0, "ms", False, _product_cpu),
    Target("reschedules/s end to end at saturation, 2 workers, 0 ms", 300.0, "/s", True, _throughput),
    Target("p99 change to row at 100/s, 1 worker, 50 ms, kept up", 250.0, "ms", False, _p99_at_100),
    Target("receiver peak RSS", 80.0, "MB", False, _rss("receiver")),
    Target("worker peak RSS (largest)", 120.0, "MB", False, _rss("worker")),
)


def verdict(target: Target, value: float | None) -> str:
    """`met`, `missed by X unit (Y %)`, or `not measured`."""
    if value is None:
        return "not measured"
    if value == float("inf"):
        return "missed: did not keep up"
    ok = value >= target.bound if target.higher_is_better else value <= target.bound
    if ok:
        return "met"
    gap = abs(value - target.bound)
    return f"missed by {gap:,.1f} {target.unit} ({100 * gap / target.bound:.0f} % of the target)"


def verdicts(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for target in TARGETS:
        value = target.value(result)
        bound = f"{'>=' if target.higher_is_better else '<='} {target.bound:g} {target.unit}"
        shown = None if value is None or value == float("inf") else round(value, 2)
        rows.append({"target": target.name, "bound": bound, "value": shown, "verdict": verdict(target, value)})
    return rows


def _n(value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_n(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_line(machine: Mapping[str, Any]) -> str:
    return (
        f"{machine.get('cpu')}, {machine.get('cores')} cores, {_n(machine.get('ram_mb'), 0)} MB RAM; "
        f"Linux {machine.get('kernel')}; Python {machine.get('python')}; Redis {machine.get('redis')}; "
        f"load average before {machine.get('load_before')}, after {machine.get('load_after')}"
    )


def _receiver_rows(result: Mapping[str, Any]) -> list[list[Any]]:
    rows = []
    for source in ("zoho", "hubspot"):
        entry = result.get("receiver", {}).get(source)
        if not entry:
            continue
        for target in ("receiver", "bare"):
            r = entry[target]
            repeats = r.get("duplicates") if target == "receiver" else None
            rows.append(
                [f"{source}, {target}", r["req_per_s"], r["p50_ms"], r["p99_ms"], r["non_2xx"], r["requests"], repeats]
            )
        rows.append([f"{source}, receiver / bare", f"{100 * entry['ratio']:.0f} %", "", "", "", "", ""])
    return rows


def _e2e_rows(result: Mapping[str, Any]) -> list[list[Any]]:
    rows = []
    for run in result.get("e2e", {}).get("saturation", []):
        fixed = e2e_run(result, "fixed", run["workers"], run["latency_ms"]) or {}
        whole = e2e_run(result, "e2e_saturation", run["workers"], run["latency_ms"]) or {}
        rows.append(
            [
                run["workers"],
                run["latency_ms"],
                whole.get("rows_per_s"),
                run.get("rows_per_s"),
                fixed.get("offered_per_s"),
                fixed.get("p50_ms"),
                fixed.get("p99_ms"),
                fixed.get("wait_p99_ms"),
                fixed.get("kept_up"),
                fixed.get("backlog_at_end"),
                _get(run, "cpu_ms_per_reschedule", "product"),
            ]
        )
    return rows


def markdown(result: Mapping[str, Any], plot: str = "latency.png") -> str:
    """The results as Markdown: targets with verdicts, then each measurement's table."""
    settings = result.get("settings", {})
    parts = [
        f"Mode `{settings.get('mode')}`, {result.get('finished_at', '')}, commit {result.get('commit', '?')}.",
        "",
        f"Machine: {machine_line(result.get('machine', {}))}.",
        "",
        *([f"Note: {result['note']}", ""] if result.get("note") else []),
        "**Issue 13's targets**",
        "",
        table(["target", "bound", "measured", "verdict"], [list(v.values()) for v in verdicts(result)]),
        "",
        f"**Receiver** (wrk -t{settings.get('wrk_threads')} -c{settings.get('wrk_connections')}, "
        f"{settings.get('receiver_seconds')} s a run, distinct valid requests; bare = Starlette that only reads the "
        "body, same uvicorn settings; repeats = requests minus jobs queued, must be 0)",
        "",
        table(["endpoint", "req/s", "p50 ms", "p99 ms", "non-2xx", "requests", "repeats"], _receiver_rows(result)),
        "",
        f"**End to end** (end-to-end saturation: {settings.get('e2e_count')} reschedules offered open loop at "
        f"{settings.get('e2e_rate')}/s with everything running, rows/s from the first change to the last row; "
        f"worker drain rate: {settings.get('saturation_count')} reschedules queued with the workers paused, then "
        f"drained, first row to last; fixed: {settings.get('fixed_rate')}/s for {settings.get('fixed_seconds')} s, "
        "open loop; latency from the change (the callback queued in the sandbox) to the history row's POST, both on "
        "the sandbox's clock; sandbox wait = change to callback sent)",
        "",
        table(
            [
                "workers",
                "CRM ms",
                "end-to-end saturation rows/s",
                "worker drain rows/s",
                "fixed offered/s",
                "p50 ms",
                "p99 ms",
                "sandbox wait p99 ms",
                "kept up",
                "backlog at end",
                "product CPU ms/resched.",
            ],
            _e2e_rows(result),
        ),
        "",
        "**CPU ms per reschedule by process** (worker drain runs) **and peak RSS**",
        "",
        _cpu_table(result),
        "",
        "**Latency against offered load**",
        "",
        table(
            [
                "workers",
                "CRM ms",
                "offered/s",
                "achieved offered/s",
                "rows/s",
                "p50 ms",
                "p99 ms",
                "sandbox wait p99 ms",
                "kept up",
            ],
            [
                [
                    r["workers"],
                    r["latency_ms"],
                    r["rate"],
                    r.get("offered_per_s"),
                    r.get("rows_per_s"),
                    r.get("p50_ms"),
                    r.get("p99_ms"),
                    r.get("wait_p99_ms"),
                    r.get("kept_up"),
                ]
                for r in result.get("e2e", {}).get("sweep", [])
            ],
        ),
        "",
        f"![latency against offered load]({plot})",
        "",
        "Profiles at saturation (py-spy): " + ", ".join(f"`{p}`" for p in result.get("profiles", {}).values()),
    ]
    return "\n".join(parts) + "\n"


def _cpu_table(result: Mapping[str, Any]) -> str:
    runs = result.get("e2e", {}).get("saturation", [])
    roles = ["receiver", "workers", "product", "sandbox", "redis"]
    rows = [
        [f"{r['workers']} w, {r['latency_ms']} ms", *(_get(r, "cpu_ms_per_reschedule", k) for k in roles)] for r in runs
    ]
    peaks = result.get("peak_rss_mb", {})
    rows.append(
        ["peak RSS MB", peaks.get("receiver"), _rss("worker")(result), None, peaks.get("sandbox"), peaks.get("redis")]
    )
    return table(["run", *roles], rows)


def plot(result: Mapping[str, Any], out: Path) -> None:
    """p50 and p99 from callback to row against offered load, one line pair per sweep series (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5))
    series: dict[tuple[int, int], list[Mapping[str, Any]]] = {}
    for point in result.get("e2e", {}).get("sweep", []):
        series.setdefault((point["workers"], point["latency_ms"]), []).append(point)
    for (workers, latency), points in sorted(series.items()):
        points = sorted((p for p in points if p.get("p50_ms") is not None), key=lambda p: p["rate"])
        rates = [p["rate"] for p in points]
        label = f"{workers} worker{'s' if workers > 1 else ''}, CRM {latency} ms"
        (line,) = axes.plot(rates, [p["p99_ms"] for p in points], marker="o", label=f"{label}: p99")
        axes.plot(
            rates,
            [p["p50_ms"] for p in points],
            marker=".",
            linestyle="--",
            color=line.get_color(),
            label=f"{label}: p50",
        )
    axes.axhline(250, color="grey", linewidth=0.8, linestyle=":", label="target p99 250 ms")
    axes.set_yscale("log")
    axes.set_xlabel("offered reschedules per second")
    axes.set_ylabel("change to history row, ms")
    axes.set_title("crmflow end to end: latency against offered load")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)


def write(result: Mapping[str, Any], out_dir: Path, name: str) -> dict[str, Path]:
    """NAME.json, NAME.md and the plot in `out_dir` (the plot is latency.png for `latest`, NAME-latency.png else)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / ("latency.png" if name == "latest" else f"{name}-latency.png")
    paths = {"json": out_dir / f"{name}.json", "md": out_dir / f"{name}.md", "png": png}
    paths["json"].write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    paths["md"].write_text(markdown(result, png.name))
    plot(result, png)
    return paths


def replace_between_markers(text: str, content: str) -> str:
    """`text` with what lies between DOCS_START and DOCS_END replaced by `content`; ValueError without them."""
    start, end = text.find(DOCS_START), text.find(DOCS_END)
    if start < 0 or end < start:
        raise ValueError(f"no {DOCS_START} ... {DOCS_END} markers")
    return text[: start + len(DOCS_START)] + "\n" + content.rstrip("\n") + "\n" + text[end:]


def update_docs(result: Mapping[str, Any], docs: Path, plot_path: str) -> None:
    """Rewrite docs/performance.md's results section from a result (the plot linked at `plot_path`)."""
    docs.write_text(replace_between_markers(docs.read_text(), markdown(result, plot_path)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__.splitlines()[0])
    parser.add_argument("json", type=Path, nargs="?", default=Path("bench/results/latest.json"))
    parser.add_argument("--docs", type=Path, default=Path("docs/performance.md"), help="the page to update")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    result = orjson.loads(args.json.read_bytes())
    name = args.json.stem
    png = args.json.parent / ("latency.png" if name == "latest" else f"{name}-latency.png")
    update_docs(result, args.docs, os.path.relpath(png.resolve(), args.docs.resolve().parent))
    print(f"updated {args.docs} from {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
