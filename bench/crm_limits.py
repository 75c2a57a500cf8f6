"""Benchmark: four `crmflow worker` processes under load against a sandbox that enforces both CRMs' limits.

Starts a private Redis, `crmflow sandbox` (Zoho's concurrency cap and HubSpot's rolling 10-second window
enforced), `crmflow receiver` and WORKERS `crmflow worker` processes, then drives reschedules for one CRM
at a time, keeping a backlog of jobs queued so that the workers always have work, and measures from the
sandbox's request log what the workers achieved against the limit and how many of their calls were
answered 429. Writes a JSON result. Run: `.venv/bin/python -m bench.crm_limits` (bench/README.md).

Zoho: every API call crmflow makes is answered after `--zoho-latency-ms` (a sandbox delay fault), so the
cap of C concurrent calls allows at most C / latency calls per second; the sandbox's own processing time
comes on top, so 100 % is out of reach by a few percent. The load driver reschedules appointments with
Zoho's API as the org's users would (one call at a time); the sandbox's cap is C + 1, the one extra for the
driver, and the workers get ZOHO_MAX_CONCURRENCY=C. HubSpot: the driver reschedules through the sandbox's
control API (not an API call), the window is N per 10 s for both sandbox and workers.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis

from bench import stack
from tests.processes import wait_until_idle
from workers import keys
from workers.contract import QUEUE_NAME

ZOHO_TOKEN_FORM = {
    "grant_type": "refresh_token",
    "client_id": "sandbox-client-id",
    "client_secret": "sandbox-client-secret",
    "refresh_token": "sandbox-refresh-token",
}
ZOHO_BATCH = 50  # appointments rescheduled per PUT by the driver
HUBSPOT_BATCH = 10  # appointments rescheduled per round by the driver
# The window starts empty, so the first 10 s admit a burst: measure from the steady state after it.
HUBSPOT_WARMUP_S = 12.0


@dataclass(frozen=True)
class Settings:
    workers: int
    seconds: float
    warmup_s: float
    zoho_cap: int
    zoho_latency_ms: int
    hubspot_per_10s: int
    zoho_pool: int
    hubspot_pool: int
    backlog: int
    out: Path


def parse(argv: Sequence[str]) -> Settings:
    parser = argparse.ArgumentParser(prog="python -m bench.crm_limits", description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30.0, help="measured time per CRM")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring")
    parser.add_argument("--zoho-cap", type=int, default=15, help="Zoho's concurrency cap (Professional: 15)")
    parser.add_argument("--zoho-latency-ms", type=int, default=200, help="how long Zoho takes per call")
    parser.add_argument("--hubspot-per-10s", type=int, default=100, help="HubSpot's rolling 10 s window")
    parser.add_argument("--zoho-pool", type=int, default=800, help="Zoho appointments the driver reschedules")
    parser.add_argument("--hubspot-pool", type=int, default=150, help="HubSpot appointments rescheduled")
    parser.add_argument("--backlog", type=int, default=120, help="jobs kept queued while measuring")
    parser.add_argument("--out", type=Path, default=Path("bench/results/crm_limits.json"))
    args = parser.parse_args(argv)
    return Settings(
        workers=args.workers,
        seconds=args.seconds,
        warmup_s=args.warmup,
        zoho_cap=args.zoho_cap,
        zoho_latency_ms=args.zoho_latency_ms,
        hubspot_per_10s=args.hubspot_per_10s,
        zoho_pool=args.zoho_pool,
        hubspot_pool=args.hubspot_pool,
        backlog=args.backlog,
        out=args.out,
    )


@dataclass
class Stack:
    sandbox: httpx.Client
    store: redis.Redis
    logs: Path

    def log_tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.logs.glob("*.log")))

    def backlog(self) -> int:
        waiting: int = self.store.zcard(QUEUE_NAME)  # type: ignore[assignment]
        return waiting

    def crm_requests(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = self.sandbox.get("/_sandbox/requests").json()["requests"]
        return entries

    def clear_requests(self) -> None:
        self.sandbox.delete("/_sandbox/requests").raise_for_status()

    def settle(self, what: str) -> None:
        wait_until_idle(self.store, what, timeout_s=300, recheck_s=1.0)


@contextmanager
def running(settings: Settings, workdir: Path) -> Iterator[Stack]:
    """Redis, sandbox (enforcing both limits), receiver and the workers (bench/stack.py), stopped on the way out."""
    env = {
        "ZOHO_MAX_CONCURRENCY": str(settings.zoho_cap),
        "HUBSPOT_REQUESTS_PER_10S": str(settings.hubspot_per_10s),
    }
    sandbox_args = [
        *("--zoho-max-concurrency", str(settings.zoho_cap + 1)),  # one for the load driver
        *("--hubspot-requests-per-10s", str(settings.hubspot_per_10s)),
    ]
    with stack.running(workdir, workers=settings.workers, env=env, sandbox_args=sandbox_args) as shared:
        yield Stack(shared.sandbox, shared.store, workdir)


def zoho_auth(sandbox: httpx.Client) -> dict[str, str]:
    token = sandbox.post("/oauth/v2/token", data=ZOHO_TOKEN_FORM).json()["access_token"]
    return {"Authorization": f"Zoho-oauthtoken {token}"}


def create_zoho_pool(stack: Stack, count: int) -> list[str]:
    ids: list[str] = []
    for n in range(count):
        answer = stack.sandbox.post("/_sandbox/appointments", json={"Appointment_Name": f"Bench {n}"})
        answer.raise_for_status()
        ids.append(str(answer.json()["data"][0]["id"]))
    return ids


def create_hubspot_pool(stack: Stack, count: int) -> list[str]:
    ids: list[str] = []
    for n in range(count):
        answer = stack.sandbox.post(
            "/_sandbox/hubspot/appointments", json={"properties": {"hs_appointment_name": f"Bench {n}"}}
        )
        answer.raise_for_status()
        ids.append(str(answer.json()["id"]))
    return ids


def drive(
    stack: Stack, settings: Settings, reschedule: Callable[[int], int], warmup_s: float
) -> tuple[float, float, int]:
    """Keep `settings.backlog` jobs queued for `warmup_s` plus the measured time; return the measured span
    (epoch seconds) and how many reschedules were made."""
    began = time.time()
    measured_from, until = began + warmup_s, began + warmup_s + settings.seconds
    made = 0
    while time.time() < until:
        if stack.backlog() < settings.backlog:
            made += reschedule(made)
        else:
            time.sleep(0.02)
    return measured_from, until, made


def future(n: int) -> datetime:
    """A distinct start time for the n-th reschedule (minutes apart, days ahead, on the minute)."""
    base = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=30)
    return base + timedelta(minutes=n)


def zoho_rescheduler(stack: Stack, pool: list[str]) -> Callable[[int], int]:
    auth = zoho_auth(stack.sandbox)

    def reschedule(made: int) -> int:
        chosen = [pool[(made + i) % len(pool)] for i in range(ZOHO_BATCH)]
        data = [
            {"id": record, "Appointment_Start_Time": future(made + i).isoformat(timespec="seconds")}
            for i, record in enumerate(chosen)
        ]
        answer = stack.sandbox.put("/crm/v7/Appointments__s", json={"data": data}, headers=auth)
        if answer.status_code == 401:
            auth.update(zoho_auth(stack.sandbox))
            return 0
        if answer.status_code == 429:  # the driver's own call met the cap: try again
            time.sleep(0.01)
            return 0
        answer.raise_for_status()
        return len(chosen)

    return reschedule


def hubspot_rescheduler(stack: Stack, pool: list[str]) -> Callable[[int], int]:
    def reschedule(made: int) -> int:
        for i in range(HUBSPOT_BATCH):
            record = pool[(made + i) % len(pool)]
            start = future(made + i).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            change = {"properties": {"hs_appointment_start": start}}
            stack.sandbox.patch(f"/_sandbox/hubspot/appointments/{record}", json=change).raise_for_status()
        return HUBSPOT_BATCH

    return reschedule


def measure(
    entries: list[dict[str, Any]], is_ours: Callable[[dict[str, Any]], bool], span: tuple[float, float]
) -> dict[str, Any]:
    """crmflow's calls answered within the measured span: how many, how fast, and how many were 429."""
    ours = [e for e in entries if is_ours(e)]
    within = [e for e in ours if span[0] <= datetime.fromisoformat(e["at"]).timestamp() <= span[1]]
    seconds = span[1] - span[0]
    refused = sum(1 for e in within if e["status"] == 429)
    moments = sorted(datetime.fromisoformat(e["at"]).timestamp() for e in ours if e["status"] != 429)
    ahead = 0
    most = 0
    for behind, moment in enumerate(moments):  # the most calls answered in any 10 s
        while ahead < len(moments) and moments[ahead] < moment + 10:
            ahead += 1
        most = max(most, ahead - behind)
    return {
        "calls": len(within),
        "most_in_any_10s": most,
        "calls_429": refused,
        "share_429": refused / len(within) if within else 0.0,
        "calls_per_s": len(within) / seconds,
        "calls_whole_phase": len(ours),
        "calls_429_whole_phase": sum(1 for e in ours if e["status"] == 429),
    }


def is_zoho_call(entry: dict[str, Any]) -> bool:
    path = entry["path"]
    driver = entry["method"] == "PUT" and path == "/crm/v7/Appointments__s"
    return path.startswith("/crm/v7/") and not driver


def is_hubspot_call(entry: dict[str, Any]) -> bool:
    path = entry["path"]
    return path.startswith("/crm/") and not path.startswith("/crm/v7/")


def crm_calls_today(store: redis.Redis) -> dict[str, dict[str, int]]:
    day = datetime.now(UTC).date().isoformat()
    found: dict[str, dict[str, int]] = {}
    for source in ("zoho", "hubspot"):
        raw: dict[bytes, bytes] = store.hgetall(keys.crm_calls(source, day))  # type: ignore[assignment]
        found[source] = {k.decode(): int(v) for k, v in raw.items()}
    return found


def run(settings: Settings) -> dict[str, Any]:
    result: dict[str, Any] = {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(settings).items()}}
    with tempfile.TemporaryDirectory(prefix="crmflow-bench-") as tmp, running(settings, Path(tmp)) as stack:
        latency = {"delay_ms": settings.zoho_latency_ms}
        rules = [
            {"method": "GET", "path_prefix": "/crm/v7/", **latency},
            {"method": "POST", "path_prefix": "/crm/v7/Appointments_Rescheduled_History__s", **latency},
        ]
        stack.sandbox.post("/_sandbox/faults", json=rules).raise_for_status()
        zoho_pool = create_zoho_pool(stack, settings.zoho_pool)
        hubspot_pool = create_hubspot_pool(stack, settings.hubspot_pool)
        stack.settle(f"the new appointments' jobs\n{stack.log_tail()}")
        before = crm_calls_today(stack.store)

        stack.clear_requests()
        start_zoho, end_zoho, zoho_made = drive(stack, settings, zoho_rescheduler(stack, zoho_pool), settings.warmup_s)
        zoho = measure(stack.crm_requests(), is_zoho_call, (start_zoho, end_zoho))
        limit = settings.zoho_cap / (settings.zoho_latency_ms / 1000)
        result["zoho"] = zoho | {
            "limit": f"{settings.zoho_cap} concurrent calls of {settings.zoho_latency_ms} ms",
            "limit_calls_per_s": limit,
            "of_limit": zoho["calls_per_s"] / limit,
            "reschedules_driven": zoho_made,
        }
        stack.settle(f"the Zoho backlog\n{stack.log_tail()}")

        stack.clear_requests()
        start_hs, end_hs, hubspot_made = drive(
            stack, settings, hubspot_rescheduler(stack, hubspot_pool), max(settings.warmup_s, HUBSPOT_WARMUP_S)
        )
        hubspot = measure(stack.crm_requests(), is_hubspot_call, (start_hs, end_hs))
        limit = settings.hubspot_per_10s / 10
        result["hubspot"] = hubspot | {
            "limit": f"{settings.hubspot_per_10s} calls per rolling 10 s",
            "limit_calls_per_s": limit,
            "of_limit": hubspot["calls_per_s"] / limit,
            "reschedules_driven": hubspot_made,
        }
        stack.settle(f"the HubSpot backlog\n{stack.log_tail()}")
        after = crm_calls_today(stack.store)
        result["crm_calls_during_load"] = {
            source: {k: v - before[source].get(k, 0) for k, v in counts.items()} for source, counts in after.items()
        }
    ok = all(result[crm]["of_limit"] >= 0.9 and result[crm]["share_429"] <= 0.01 for crm in ("zoho", "hubspot"))
    result["passed"] = ok
    return result


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse(sys.argv[1:] if argv is None else argv)
    result = run(settings)
    settings.out.parent.mkdir(parents=True, exist_ok=True)
    settings.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    for crm in ("zoho", "hubspot"):
        r = result[crm]
        print(
            f"{crm}: {r['calls_per_s']:.1f} calls/s = {r['of_limit']:.1%} of the limit ({r['limit']}); "
            f"{r['calls_429']} of {r['calls']} calls answered 429 ({r['share_429']:.2%})"
        )
    print(
        f"{'passed' if result['passed'] else 'FAILED'}: >= 90 % of each limit, <= 1 % 429s; written to {settings.out}"
    )
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
