"""Stack: a private redis-server, `crmflow sandbox`, `crmflow receiver` and N `crmflow worker` on loopback."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis

from crmflow.embedded_redis import EmbeddedRedis, free_port
from tests.processes import answers, stack_env, start, stop, wait_for
from workers.contract import QUEUE_NAME

NOTIFY_TOKEN = "bench-notify-token"
CHANNEL_ID = "1000000068001"
HUBSPOT_SECRET = "sandbox-hubspot-client-secret"


@dataclass
class Stack:
    """The running processes and clients to them; `start_workers`/`stop_workers` change the worker count."""

    redis_url: str
    redis_pid: int
    sandbox_url: str
    receiver_url: str
    env: dict[str, str]
    logs: Path
    sandbox: httpx.Client
    store: redis.Redis
    sandbox_process: subprocess.Popen[bytes]
    receiver_process: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _started: int = 0

    def start_workers(self, count: int, **env: str) -> None:
        """Start `count` workers (with `env` added to the stack's) and wait until each has checked in."""
        self.stop_workers()
        self.store.delete(f"{QUEUE_NAME}:health-check")
        for _ in range(count):
            self._started += 1
            log = self.logs / f"worker-{self._started}.log"
            self.workers.append(start(["worker"], self.env | env, self.logs, log))
        wait_for(lambda: bool(self.store.exists(f"{QUEUE_NAME}:health-check")), "a worker", timeout_s=30)

    def stop_workers(self) -> None:
        for process in self.workers:
            stop(process)
        self.workers = []

    def pause_workers(self) -> None:
        """SIGSTOP every worker: jobs queue up without being taken."""
        for process in self.workers:
            process.send_signal(signal.SIGSTOP)

    def resume_workers(self) -> None:
        for process in self.workers:
            process.send_signal(signal.SIGCONT)

    def pids(self) -> dict[str, int]:
        """Each process by role: receiver, sandbox, redis, worker-1..N."""
        found = {"receiver": self.receiver_process.pid, "sandbox": self.sandbox_process.pid, "redis": self.redis_pid}
        return found | {f"worker-{n}": p.pid for n, p in enumerate(self.workers, start=1)}

    def backlog(self) -> int:
        waiting: int = self.store.zcard(QUEUE_NAME)  # type: ignore[assignment]
        return waiting

    def log_tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.logs.glob("*.log")))


def server_info(store: redis.Redis) -> dict[str, Any]:
    """Redis's INFO server section (version, pid)."""
    info: dict[str, Any] = store.info("server")  # type: ignore[assignment]
    return info


@contextmanager
def running(
    workdir: Path,
    *,
    workers: int = 0,
    env: Mapping[str, str] | None = None,
    sandbox_args: Sequence[str] = (),
) -> Iterator[Stack]:
    """Redis, sandbox, receiver (and `workers` workers), all started with the real CLI; stopped on the way out."""
    with ExitStack() as stack:
        embedded = stack.enter_context(EmbeddedRedis())
        sandbox_port, receiver_port = free_port(), free_port()
        sandbox_url, receiver_url = f"http://127.0.0.1:{sandbox_port}", f"http://127.0.0.1:{receiver_port}"
        settings = {
            "ZOHO_NOTIFY_TOKEN": NOTIFY_TOKEN,
            "ZOHO_CHANNEL_IDS": CHANNEL_ID,
            "HUBSPOT_CLIENT_SECRET": HUBSPOT_SECRET,
            "PUBLIC_BASE_URL": receiver_url,
            "LOG_LEVEL": "WARNING",
        } | dict(env or {})
        full_env = stack_env(embedded.url, sandbox_url, **settings)
        args = [
            *("sandbox", "--port", str(sandbox_port), "--notify-token", NOTIFY_TOKEN),
            *("--notify-url", f"{receiver_url}/webhooks/zoho"),
            *("--hubspot-webhook-url", f"{receiver_url}/webhooks/hubspot"),
            *sandbox_args,
        ]
        sandbox_process = start(args, full_env, workdir, workdir / "sandbox.log")
        stack.callback(stop, sandbox_process)
        receiver_process = start(
            ["receiver", "--port", str(receiver_port)], full_env, workdir, workdir / "receiver.log"
        )
        stack.callback(stop, receiver_process)
        store = redis.Redis.from_url(embedded.url)
        stack.callback(store.close)
        wait_for(lambda: answers(f"{sandbox_url}/_sandbox/history"), "the sandbox")
        wait_for(lambda: answers(f"{receiver_url}/readyz"), "the receiver")
        sandbox = stack.enter_context(httpx.Client(base_url=sandbox_url, timeout=60))
        redis_pid = int(server_info(store)["process_id"])
        running_stack = Stack(
            embedded.url,
            redis_pid,
            sandbox_url,
            receiver_url,
            full_env,
            workdir,
            sandbox,
            store,
            sandbox_process,
            receiver_process,
        )
        stack.callback(running_stack.stop_workers)
        if workers:
            running_stack.start_workers(workers)
        yield running_stack
