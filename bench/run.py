"""Run: the benchmark suite (receiver against bare Starlette, end to end, CPU and memory, profiles), one command.

`python -m bench [--quick | --smoke] [--name NAME] [--out DIR]` (make bench): starts everything on loopback,
measures, writes NAME.json, NAME.md and the latency plot (docs/performance.md says what each figure means).
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import e2e, machine, procs, receiver_load, report
from bench.profile import Recording
from bench.stack import Stack, running, server_info
from crmflow.embedded_redis import free_port
from tests.processes import REPO, answers, stop, wait_for

# Reschedules per appointment over a whole run, below the sandbox's 20 history rows per appointment.
ROWS_PER_APPOINTMENT = 15


@dataclass(frozen=True)
class Plan:
    """How much of everything a mode measures."""

    mode: str
    receiver_seconds: float
    receiver_rounds: int
    workers: tuple[int, ...]
    latencies_ms: tuple[int, ...]
    saturation_count: int
    e2e_rate: float
    e2e_count: int
    fixed_rate: float
    fixed_seconds: float
    sweep_rates: tuple[float, ...]
    sweep_seconds: float
    sweep_series: tuple[tuple[int, int], ...]
    profile_seconds: float
    wrk_threads: int = 2
    wrk_connections: int = 64
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pool(self) -> int:
        """Appointments to create: each run reschedules each at most once, and no appointment is rescheduled more
        than ROWS_PER_APPOINTMENT times in all (the sandbox refuses a 21st history row for one appointment)."""
        most = max(self.saturation_count, self.e2e_count, int(self.fixed_rate * self.fixed_seconds))
        most = max(most, *(int(r * self.sweep_seconds) for r in self.sweep_rates))
        runs = len(self.workers) * len(self.latencies_ms)
        each = self.saturation_count + self.e2e_count + int(self.fixed_rate * self.fixed_seconds)
        total = runs * each + self.saturation_count
        total += len(self.sweep_series) * sum(int(r * self.sweep_seconds) for r in self.sweep_rates)
        return max(most, -(-total // ROWS_PER_APPOINTMENT))


# Zoho's requests are made in wrk's Lua script, each for a record of its own, however long the run. HubSpot's
# are signed when generated (wrk's Lua has no HMAC-SHA256): this many per second of run; a receiver faster than
# that would get repeats, which the run's `duplicates` (requests minus jobs queued) shows.
HIGHEST_REQ_PER_S = 12_000

# Sizes chosen for about 10-12 minutes (full) and 3-4 (quick) on a quiet 2-core machine (docs/performance.md).
FULL = Plan("full", 8, 2, (1, 2, 4), (0, 50), 600, 500, 600, 100, 8, (25, 50, 100, 200), 5, ((1, 50), (2, 0)), 8)
QUICK = Plan("quick", 4, 1, (1, 2), (0, 50), 300, 500, 300, 100, 4, (50, 100, 150), 3, ((1, 50), (2, 0)), 5)
SMOKE = Plan("smoke", 2, 1, (1,), (0, 50), 150, 200, 150, 50, 2, (25, 50), 2, ((1, 50),), 2)


def parse(argv: Sequence[str]) -> tuple[Plan, str, Path]:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="about 3 minutes: fewer workers, shorter runs")
    size.add_argument("--smoke", action="store_true", help="about 30 s: every section once, tiny (CI's smoke test)")
    parser.add_argument("--name", default="latest", help="write NAME.json, NAME.md (default latest)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results", help="where to write them")
    args = parser.parse_args(argv)
    plan = SMOKE if args.smoke else QUICK if args.quick else FULL
    return plan, args.name, args.out


_STARTED = time.monotonic()


def log(message: str) -> None:
    """A progress line: the clock and the time since the suite started."""
    elapsed = int(time.monotonic() - _STARTED)
    print(f"[bench {time.strftime('%H:%M:%S')} +{elapsed // 60}:{elapsed % 60:02d}] {message}", flush=True)


def measure_receiver(stack: Stack, plan: Plan, workdir: Path, bare_url: str) -> dict[str, Any]:
    """wrk against the receiver and the bare app, interleaved, the same request files for both."""
    load = receiver_load.Load(plan.wrk_threads, plan.wrk_connections, plan.receiver_seconds)
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        "zoho": {"receiver": [], "bare": []},
        "hubspot": {"receiver": [], "bare": []},
    }
    for round_ in range(plan.receiver_rounds):
        for source, path in (("zoho", receiver_load.ZOHO_PATH), ("hubspot", receiver_load.HUBSPOT_PATH)):
            now = receiver_load.now_ms()  # HubSpot's signatures are fresh for 5 minutes: made per round
            lines = (
                receiver_load.zoho_template(now)
                if source == "zoho"
                else receiver_load.hubspot_bodies(request_count(plan), now, stack.receiver_url + path)
            )
            script = receiver_load.write_script(workdir, f"{source}-{round_}", lines, path, plan.wrk_threads)
            order = [("receiver", stack.receiver_url), ("bare", bare_url)]
            for target, url in order if round_ % 2 == 0 else order[::-1]:
                stack.store.flushdb()
                result = receiver_load.run_wrk(url, path, script, load)
                if target == "receiver":
                    # Every request names new records: one job each at least, unless requests were repeated.
                    result["jobs_queued"] = stack.backlog()
                    result["duplicates"] = max(0, result["requests"] - result["jobs_queued"])
                log(
                    f"{source} {target}: {result['req_per_s']:.0f} req/s, p99 {result['p99_ms']} ms, "
                    f"non-2xx {result['non_2xx']}"
                    + (f", jobs queued {result['jobs_queued']}" if target == "receiver" else "")
                )
                if result.get("duplicates"):
                    log(f"WARNING: {result['duplicates']} requests were repeats: the ratio measured duplicates")
                runs[source][target].append(result)
    stack.store.flushdb()
    summary: dict[str, Any] = {}
    for source, by_target in runs.items():
        entry: dict[str, Any] = {"runs": by_target}
        for target, results in by_target.items():
            entry[target] = {
                key: round(sum(r[key] for r in results) / len(results), 2)
                for key in ("req_per_s", "p50_ms", "p90_ms", "p99_ms")
            } | {k: sum(r.get(k, 0) for r in results) for k in ("requests", "non_2xx", "socket_errors", "duplicates")}
        entry["ratio"] = round(entry["receiver"]["req_per_s"] / max(entry["bare"]["req_per_s"], 1e-9), 3)
        summary[source] = entry
    return summary


def request_count(plan: Plan) -> int:
    """Signed HubSpot requests to generate: enough for HIGHEST_REQ_PER_S over a run (and its wrk threads)."""
    return int(HIGHEST_REQ_PER_S * (plan.receiver_seconds + 1))


def saturation(stack: Stack, driver: e2e.Driver, plan: Plan, workers: int, latency_ms: int) -> dict[str, Any]:
    """Worker drain rate: the workers paused (SIGSTOP) while N reschedules are offered as fast as possible and their
    jobs queue, then resumed: rows/s is the rate at which they drain the backlog, first row to last, with nothing
    else running. No latency: it would include the pause."""
    e2e.fresh_logs(stack)
    before = procs.cpu_snapshot(stack.pids())
    stack.pause_workers()
    try:
        asyncio.run(driver.as_fast_as_possible(plan.saturation_count))
        e2e.wait_for_callbacks(stack, plan.saturation_count)
        queued = stack.backlog()
    finally:
        stack.resume_workers()
    e2e.settle(stack, plan.saturation_count)
    after = procs.cpu_snapshot(stack.pids())
    result = {
        k: v
        for k, v in e2e.collect(stack, offered=plan.saturation_count).items()
        if not k.endswith("_ms") and k not in ("offered_per_s", "backlog_at_end")
    }
    result |= {"queued_before_resume": queued, "rows_per_s": result.get("drain_rows_per_s")}
    cpu = procs.cpu_ms_per_unit(before, after, result["rows"])
    log(
        f"worker drain rate {workers} w {latency_ms} ms: {result.get('rows_per_s')} rows/s, "
        f"product CPU {cpu['product']} ms"
    )
    return {"workers": workers, "latency_ms": latency_ms} | result | {"cpu_ms_per_reschedule": cpu}


def e2e_saturation(stack: Stack, driver: e2e.Driver, plan: Plan, workers: int, latency_ms: int) -> dict[str, Any]:
    """End to end at saturation: N reschedules offered open loop above capacity with everything running (driver,
    sandbox, receiver, workers); rows/s is the rows written from the first change to the last row."""
    e2e.fresh_logs(stack)
    before = procs.cpu_snapshot(stack.pids())
    count, _ = asyncio.run(driver.paced(plan.e2e_rate, plan.e2e_count / plan.e2e_rate))
    e2e.settle(stack, count)
    after = procs.cpu_snapshot(stack.pids())
    result = e2e.collect(stack, offered=count)
    cpu = procs.cpu_ms_per_unit(before, after, result["rows"])
    log(
        f"end-to-end saturation {workers} w {latency_ms} ms: {result.get('rows_per_s')} rows/s "
        f"({result.get('offered_per_s')}/s offered), product CPU {cpu['product']} ms"
    )
    return (
        {"workers": workers, "latency_ms": latency_ms, "rate": plan.e2e_rate} | result | {"cpu_ms_per_reschedule": cpu}
    )


def paced(
    stack: Stack, driver: e2e.Driver, rate: float, seconds: float, workers: int, latency_ms: int
) -> dict[str, Any]:
    e2e.fresh_logs(stack)
    retried = driver.retried
    count, _ = asyncio.run(driver.paced(rate, seconds))
    queued_at_end = stack.backlog()
    e2e.settle(stack, count)
    result = e2e.collect(stack, offered=count)
    result |= {"kept_up": e2e.kept_up(result, rate), "queued_at_end": queued_at_end}
    result["driver_retries"] = driver.retried - retried
    log(
        f"{rate:g}/s {workers} w {latency_ms} ms: p50 {result.get('p50_ms')} ms, p99 {result.get('p99_ms')} ms "
        f"(sandbox wait p99 {result.get('wait_p99_ms')} ms), kept up {result['kept_up']}"
    )
    return {"workers": workers, "latency_ms": latency_ms, "rate": rate, "seconds": seconds} | result


def measure_e2e(stack: Stack, plan: Plan, peaks: dict[str, float]) -> tuple[dict[str, Any], e2e.Driver]:
    stack.start_workers(2)
    driver = e2e.Driver(stack, [])
    log(f"creating {plan.pool} appointments")
    asyncio.run(driver.create_pool(plan.pool))
    e2e.settle(stack, plan.pool)
    results: dict[str, list[dict[str, Any]]] = {"saturation": [], "e2e_saturation": [], "fixed": [], "sweep": []}
    series = {w: sorted({lat for sw, lat in plan.sweep_series if sw == w}) for w, _ in plan.sweep_series}
    for workers in sorted(set(plan.workers) | set(series)):
        stack.start_workers(workers)
        for latency in sorted(set(plan.latencies_ms) | set(series.get(workers, []))):
            e2e.set_latency(stack, latency)
            if workers in plan.workers and latency in plan.latencies_ms:
                results["saturation"].append(saturation(stack, driver, plan, workers, latency))
                results["e2e_saturation"].append(e2e_saturation(stack, driver, plan, workers, latency))
                results["fixed"].append(paced(stack, driver, plan.fixed_rate, plan.fixed_seconds, workers, latency))
            if latency in series.get(workers, []):
                for rate in plan.sweep_rates:
                    seconds = min(plan.sweep_seconds, len(driver.pool) / rate)  # the pool holds one run
                    results["sweep"].append(paced(stack, driver, rate, seconds, workers, latency))
        peaks |= {
            f"{role}@{workers}w": mb for role, mb in procs.peak_rss(stack.pids()).items() if role.startswith("worker-")
        }
    e2e.set_latency(stack, 0)
    return results, driver


def profile(stack: Stack, plan: Plan, driver: e2e.Driver, out: Path, name: str, workdir: Path) -> dict[str, str]:
    """py-spy on one worker at saturation, then on the receiver under wrk."""
    prefix = "" if name == "latest" else f"{name}-"
    stack.start_workers(1)
    e2e.fresh_logs(stack)
    stack.pause_workers()  # as in a saturation run: the backlog first, then the worker drains it, profiled
    try:
        asyncio.run(driver.as_fast_as_possible(plan.saturation_count))
        e2e.wait_for_callbacks(stack, plan.saturation_count)
        worker = Recording(
            stack.pids()["worker-1"],
            plan.profile_seconds,
            out / f"{prefix}profile-worker.svg",
            out / f"{prefix}profile-worker.txt",
        )
    finally:
        stack.resume_workers()
    worker.finish()
    e2e.settle(stack, plan.saturation_count)
    stack.stop_workers()
    lines = receiver_load.zoho_template(receiver_load.now_ms())
    script = receiver_load.write_script(workdir, "zoho-profile", lines, receiver_load.ZOHO_PATH, plan.wrk_threads)
    receiver = Recording(
        stack.pids()["receiver"],
        plan.profile_seconds,
        out / f"{prefix}profile-receiver.svg",
        out / f"{prefix}profile-receiver.txt",
    )
    load = receiver_load.Load(plan.wrk_threads, plan.wrk_connections, plan.profile_seconds + 1)
    receiver_load.run_wrk(stack.receiver_url, receiver_load.ZOHO_PATH, script, load)
    receiver.finish()
    stack.store.flushdb()
    return {"worker": worker.svg.name, "receiver": receiver.svg.name}


def commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "receiver", "workers", "sandbox", "crmflow"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def run(plan: Plan, name: str, out: Path) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"settings": asdict(plan) | {"pool": plan.pool}, "commit": commit()}
    with tempfile.TemporaryDirectory(prefix="crmflow-bench-") as tmp, running(Path(tmp)) as stack:
        workdir = Path(tmp)
        result["machine"] = machine.describe(str(server_info(stack.store)["redis_version"]))
        result["machine"]["load_before"] = machine.load_average()
        bare_port = free_port()
        bare = start_bare(stack, workdir, bare_port)
        try:
            log("receiver against bare Starlette")
            result["receiver"] = measure_receiver(stack, plan, workdir, f"http://127.0.0.1:{bare_port}")
        finally:
            stop(bare)
        peaks: dict[str, float] = {}
        result["e2e"], driver = measure_e2e(stack, plan, peaks)
        for point in result["e2e"]["sweep"]:
            point["kept_up"] = e2e.kept_up(point, point["rate"])
        log("profiles")
        result["profiles"] = profile(stack, plan, driver, out, name, workdir)
        result["peak_rss_mb"] = procs.peak_rss(stack.pids()) | peaks
        result["machine"]["load_after"] = machine.load_average()
    result["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return result


def start_bare(stack: Stack, workdir: Path, port: int) -> subprocess.Popen[bytes]:
    with (workdir / "bare.log").open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.bare_app", "--port", str(port)],
            env=stack.env,
            cwd=workdir,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    wait_for(lambda: _bare_answers(port), "the bare app")
    return process


def _bare_answers(port: int) -> bool:
    return answers(f"http://127.0.0.1:{port}/healthz")


def main(argv: Sequence[str] | None = None) -> int:
    plan, name, out = parse(sys.argv[1:] if argv is None else argv)
    began = time.monotonic()
    result = run(plan, name, out)
    result["wall_s"] = round(time.monotonic() - began, 1)
    paths = report.write(result, out, name)
    for row in report.verdicts(result):
        log(f"{row['target']}: {row['value']} ({row['verdict']})")
    log(f"written: {', '.join(str(p) for p in paths.values())} in {result['wall_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
