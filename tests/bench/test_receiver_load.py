"""bench/receiver_load.py: wrk's output parsed, and the generated requests valid for the receiver's checks."""

from __future__ import annotations

import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import pytest

from bench.receiver_load import (
    HUBSPOT_PATH,
    ZOHO_PATH,
    Load,
    hubspot_bodies,
    parse_wrk,
    run_wrk,
    to_ms,
    write_script,
    zoho_bodies,
    zoho_template,
)
from bench.stack import CHANNEL_ID, NOTIFY_TOKEN
from receiver.verify import hubspot_v3_signature, verify_zoho

WRK_OUTPUT = """Running 5s test @ http://127.0.0.1:8000/webhooks/zoho
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    26.31ms   10.40ms 127.55ms   81.34%
    Req/Sec     1.23k   146.92     1.52k    72.00%
  Latency Distribution
     50%   24.88ms
     75%   29.01ms
     90%   37.30ms
     99%    1.02s
  12253 requests in 5.01s, 1.89MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:   2445.66
Transfer/sec:    386.21KB
"""


def test_wrk_output_is_parsed() -> None:
    assert parse_wrk(WRK_OUTPUT) == {
        "requests": 12253,
        "seconds": 5.01,
        "req_per_s": 2445.66,
        "p50_ms": 24.88,
        "p90_ms": 37.3,
        "p99_ms": 1020.0,
        "non_2xx": 7,
        "socket_errors": 3,
    }


def test_a_clean_run_has_no_errors_and_a_broken_one_is_refused() -> None:
    clean = "\n".join(line for line in WRK_OUTPUT.splitlines() if "errors" not in line and "Non-2xx" not in line)
    assert parse_wrk(clean)["non_2xx"] == 0
    assert parse_wrk(clean)["socket_errors"] == 0
    with pytest.raises(ValueError, match="no wrk summary"):
        parse_wrk("unable to connect to 127.0.0.1:8000 Connection refused")


@pytest.mark.parametrize(
    ("text", "ms"), [("812.00us", 0.812), ("4.90ms", 4.9), ("1.50s", 1500.0), ("2.00m", 120_000.0)]
)
def test_wrk_durations_in_milliseconds(text: str, ms: float) -> None:
    assert to_ms(text) == pytest.approx(ms)


def test_zoho_callbacks_are_distinct_updates_the_receiver_accepts() -> None:
    bodies = [orjson.loads(line.split("\t")[2]) for line in zoho_bodies(3, 1_800_000_000_000)]
    assert len({body["ids"][0] for body in bodies}) == 3
    assert all(body["operation"] == "update" for body in bodies)
    for body in bodies:
        verify_zoho(body, expected_token=NOTIFY_TOKEN, channel_ids={CHANNEL_ID})  # raises when refused
    assert all(line.startswith("\t\t") for line in zoho_bodies(2, 0))


def test_hubspot_batches_carry_a_v3_signature_of_their_own_body() -> None:
    url = "http://127.0.0.1:8000/webhooks/hubspot"
    lines = hubspot_bodies(2, 1_800_000_000_000, url)
    bodies = set()
    for line in lines:
        timestamp, signature, body = line.split("\t")
        # The receiver's own computation (receiver/verify.py), not the sandbox's that made it.
        assert signature == hubspot_v3_signature("sandbox-hubspot-client-secret", "POST", url, body.encode(), timestamp)
        bodies.add(body)
    assert len(bodies) == 2


def _wrk_bodies(tmp_path: Path, lines: list[str], path: str) -> list[bytes]:
    """What wrk, driven by write_script's Lua for 1 s over 2 threads, POSTed to a recording server."""
    bodies: list[bytes] = []

    class Recorder(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        script = write_script(tmp_path, "t", lines, path, threads=2)
        run_wrk(f"http://127.0.0.1:{server.server_address[1]}", path, script, Load(2, 4, 1))
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    return bodies


@pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk")
def test_every_zoho_request_names_a_record_of_its_own_however_many(tmp_path: Path) -> None:
    """Review finding 3: requests beyond the data file were redeliveries (the receiver's cheap duplicate path)."""
    bodies = _wrk_bodies(tmp_path, zoho_template(1_800_000_000_000), ZOHO_PATH)
    assert len(bodies) > 100
    records = [orjson.loads(body)["ids"][0] for body in bodies]
    assert len(set(records)) == len(records)
    for body in bodies[:50]:
        parsed = orjson.loads(body)
        assert len(parsed["ids"][0]) == 19 and parsed["ids"][0].isdigit()
        assert list(parsed["affected_fields"][0]) == parsed["ids"]
        verify_zoho(parsed, expected_token=NOTIFY_TOKEN, channel_ids={CHANNEL_ID})


@pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk")
def test_hubspot_threads_share_the_signed_requests_out_and_repeat_only_past_them(tmp_path: Path) -> None:
    lines = hubspot_bodies(2000, 1_800_000_000_000, "http://x/webhooks/hubspot")
    bodies = _wrk_bodies(tmp_path, lines, HUBSPOT_PATH)
    repeats = len(bodies) - len(set(bodies))
    # Each thread sends its own 1,000 in turn: a repeat only from a thread past its share, and then counted (run.py
    # compares jobs queued with requests).
    assert len(bodies) > 100
    assert repeats <= max(0, len(bodies) - 1000)
