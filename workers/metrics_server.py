"""Metrics server: a worker's /metrics on WORKER_METRICS_PORT, in a thread of its own (prometheus-client's).

It answers from a thread, not from the worker's event loop, so a scrape never waits for jobs and a busy loop
never delays a scrape; the shared state's gauges are read through a blocking Redis client of its own, with
short timeouts and no retries (workers/metrics_scrape.py). It listens from start-up until the process ends,
across the new arq workers `run_forever` starts after losing Redis, so the counters outlive them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

import redis as sync_redis
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import Metric

from workers.metrics import REGISTRY, shared_state_metrics
from workers.metrics_scrape import StateQuery, blocking_client, read_state_blocking, state_query

logger = logging.getLogger("crmflow.metrics")

# Workers listen on every interface: Prometheus scrapes them from another container or host.
LISTEN_HOST = "0.0.0.0"


class MetricsPortError(Exception):
    """WORKER_METRICS_PORT cannot be listened on (in use, or not allowed)."""


class _Scrape:
    """Collects the process's metrics and, read at that moment, the shared state's gauges."""

    def __init__(self, redis: sync_redis.Redis, query: StateQuery) -> None:
        self._redis = redis
        self._query = query
        # One read at a time: the client has few connections (workers/metrics_scrape.py), and a scrape that
        # found none free would report Redis down. A read waits at most its socket timeouts.
        self._reading = threading.Lock()

    def collect(self) -> Iterable[Metric]:
        now_s = time.time()
        yield from REGISTRY.collect()
        with self._reading:
            state = read_state_blocking(self._redis, self._query, now_s)
        yield from shared_state_metrics(state, now_s)


@dataclass
class MetricsServer:
    """A listening metrics server; `close` stops it (the process's end does too: its thread is a daemon)."""

    server: WSGIServer
    redis: sync_redis.Redis

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.redis.close()


def serve_metrics(port: int, redis_url: str, *, host: str = LISTEN_HOST) -> MetricsServer:
    """Listen on `port` and serve /metrics from a thread; MetricsPortError names the setting if it cannot."""
    redis = blocking_client(redis_url)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Scrape(redis, state_query()))
    try:
        server, _ = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        redis.close()
        reason = exc.strerror or str(exc)
        raise MetricsPortError(
            f"WORKER_METRICS_PORT={port}: cannot listen on {host}:{port} ({reason}); "
            "give each worker process on a host a port of its own, or 0 to serve no metrics"
        ) from exc
    logger.info("worker: metrics on http://%s:%d/metrics", host, server.server_address[1])
    return MetricsServer(server, redis)
