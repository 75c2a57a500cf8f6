"""The receiver's app on a real uvicorn, in the test's event loop, with the connection layer it runs with in
production (receiver/server.py: header deadline, socket cap, JSON refusals, request limit)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette

from receiver.config import ReceiverConfig
from receiver.server import server_options


@asynccontextmanager
async def serving(app: Starlette, **options: Any) -> AsyncIterator[int]:
    """Serve `app` on a free loopback port (yielded) with `crmflow receiver`'s uvicorn options, plus `options`."""
    config: ReceiverConfig = app.state.crmflow.config
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    settings = server_options(config) | {"lifespan": "off", "log_config": None, "access_log": False} | options
    server = uvicorn.Server(uvicorn.Config(app, **settings))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(500):  # uvicorn offers no event for this
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        assert server.started
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await task
        sock.close()
