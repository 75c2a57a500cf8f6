"""Receiver load: distinct valid Zoho callbacks and signed HubSpot batches, driven by wrk; its output parsed."""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.stack import CHANNEL_ID, HUBSPOT_SECRET, NOTIFY_TOKEN
from sandbox.hubspot.signing import signature_v3

ZOHO_PATH = "/webhooks/zoho"
HUBSPOT_PATH = "/webhooks/hubspot"
# wrk's request script. A data file line is timestamp, signature and body (no timestamp for Zoho). A body holding
# ID_MARK is a template: every request gets it with a record id of its own (thread number and a per-thread counter,
# RECORD_PREFIX first: 19 digits like Zoho's), so no request repeats however long the run. Other lines are
# pre-formatted requests, each thread taking every threads-th one from its own offset and sending them in turn
# (they repeat only when a thread has sent them all).
ID_MARK = "@RECORD_ID@"
RECORD_PREFIX = "554597410"
LUA = """
local requests, template, counter = {}, nil, 0
local threads = 0
function setup(thread)
  thread:set("offset", threads)
  threads = threads + 1
end
local function format(ts, sig, body)
  local headers = {["Content-Type"] = "application/json"}
  if ts ~= "" then
    headers["X-HubSpot-Request-Timestamp"] = ts
    headers["X-HubSpot-Signature-v3"] = sig
  end
  return wrk.format("POST", "%(path)s", headers, body)
end
function init(args)
  local n = 0
  for line in io.lines("%(data)s") do
    local ts, sig, body = line:match("^([^\\t]*)\\t([^\\t]*)\\t(.*)$")
    if body:find("%(mark)s", 1, true) then
      template = body
    elseif n %% %(threads)d == offset then
      requests[#requests + 1] = format(ts, sig, body)
    end
    n = n + 1
  end
end
function request()
  counter = counter + 1
  if template then
    local id = string.format("%(prefix)s%%d%%09d", offset + 1, counter)
    return format("", "", (template:gsub("%(mark)s", id)))
  end
  return requests[((counter - 1) %% #requests) + 1]
end
"""

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def zoho_template(now_ms: int) -> list[str]:
    """The data file of Zoho's run: one update callback as the default channel sends it, its record id ID_MARK
    (the Lua script gives each request a record of its own)."""
    return zoho_bodies(1, now_ms, record_ids=[ID_MARK])


def zoho_bodies(count: int, now_ms: int, record_ids: list[str] | None = None) -> list[str]:
    """`count` update callbacks as the default channel sends them, each for another appointment."""
    lines = []
    for n in range(count):
        record = record_ids[n] if record_ids else str(int(RECORD_PREFIX + "1" + "0" * 9) + n)
        body = {
            "server_time": now_ms,
            "query_params": {},
            "module": "Appointments__s",
            "resource_uri": "https://www.zohoapis.com/crm/v7/Appointments__s",
            "ids": [record],
            "affected_fields": [{record: ["Appointment_Start_Time", "Modified_Time"]}],
            "operation": "update",
            "channel_id": CHANNEL_ID,
            "token": NOTIFY_TOKEN,
        }
        lines.append("\t\t" + orjson.dumps(body).decode())
    return lines


def hubspot_bodies(count: int, now_ms: int, url: str, first_id: int = 51204100001) -> list[str]:
    """`count` batches (start and end of one appointment each), signed v3 for `url` at `now_ms`."""
    lines = []
    for n in range(count):
        common = {
            "portalId": 62515,
            "appId": 54321,
            "occurredAt": now_ms - 1000,
            "subscriptionType": "object.propertyChange",
            "attemptNumber": 0,
            "objectId": first_id + n,
            "objectTypeId": "0-421",
            "changeSource": "CRM_UI",
            "sourceId": "userId:98499705",
            "isSensitive": False,
        }
        events = [
            common | {"eventId": 2 * n + 1, "subscriptionId": 7662269, "propertyName": "hs_appointment_start"},
            common | {"eventId": 2 * n + 2, "subscriptionId": 7662270, "propertyName": "hs_appointment_end"},
        ]
        events[0]["propertyValue"] = "2027-01-13T15:00:00.000Z"
        events[1]["propertyValue"] = "2027-01-13T16:00:00.000Z"
        body = orjson.dumps(events)
        timestamp = str(now_ms)
        lines.append(f"{timestamp}\t{signature_v3(HUBSPOT_SECRET, 'POST', url, body, timestamp)}\t{body.decode()}")
    return lines


def write_script(workdir: Path, name: str, lines: list[str], path: str, threads: int) -> Path:
    data = workdir / f"{name}.data"
    data.write_text("\n".join(lines) + "\n")
    script = workdir / f"{name}.lua"
    values = {"data": data, "path": path, "threads": threads, "mark": ID_MARK, "prefix": RECORD_PREFIX}
    script.write_text(LUA % values)
    return script


def to_ms(value: str) -> float:
    """wrk's `4.90ms`, `812.00us`, `1.02s` in milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value.strip())
    if match is None:
        raise ValueError(f"not a wrk duration: {value!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str) -> dict[str, Any]:
    """Requests, seconds, req/s, p50/p90/p99 (ms), non-2xx/3xx answers and socket errors from `wrk --latency`."""
    found = re.search(r"(\d+) requests in ([\d.]+)(\w+),", output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if found is None or rate is None:
        raise ValueError(f"no wrk summary in:\n{output}")
    percentiles = {int(p): to_ms(v) for p, v in re.findall(r"^\s+(\d+)%\s+(\S+)\s*$", output, re.MULTILINE)}
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {
        "requests": int(found.group(1)),
        "seconds": to_ms(found.group(2) + found.group(3)) / 1000,
        "req_per_s": float(rate.group(1)),
        "p50_ms": percentiles.get(50),
        "p90_ms": percentiles.get(90),
        "p99_ms": percentiles.get(99),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": sum(int(g) for g in errors.groups()) if errors else 0,
    }


@dataclass(frozen=True)
class Load:
    threads: int = 2
    connections: int = 64
    seconds: float = 10.0


def run_wrk(base_url: str, path: str, script: Path, load: Load) -> dict[str, Any]:
    """One wrk run against `base_url + path`; its parsed result plus the command's wall time."""
    command = [
        *("wrk", f"-t{load.threads}", f"-c{load.connections}", f"-d{load.seconds:g}s", "--latency"),
        *("--timeout", "10s", "-s", str(script), base_url + path),
    ]
    began = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=load.seconds + 60, check=True)
    result = parse_wrk(done.stdout)
    return result | {"wall_s": round(time.monotonic() - began, 2)}


def now_ms() -> int:
    return int(time.time() * 1000)
