"""Bare app: the reference endpoint, a Starlette app that only reads the body, served as the receiver is served.

`python -m bench.bare_app --port N` (with the receiver's environment): the same logging set-up, the same
uvicorn call and `receiver.server.server_options` (connection layer, keep-alive, header cap) and the same file
limit as `crmflow receiver` (crmflow/cli.py), but no verification, validation, Redis or request limit.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crmflow.logs import LogSettings
from crmflow.logs import configure as configure_logs
from crmflow.settings import load_settings
from receiver.config import ReceiverConfig
from receiver.server import raise_file_limit, server_options

ACCEPTED = b'{"status":"accepted"}'


async def accept(request: Request) -> Response:
    await request.body()
    return Response(ACCEPTED, 200, media_type="application/json")


async def healthz(request: Request) -> Response:
    return Response(b"{}", 200, media_type="application/json")


def create_app() -> Starlette:
    """POST /webhooks/{anything} reads the body and answers 200; GET /healthz says it is up."""
    return Starlette(routes=[Route("/webhooks/{source}", accept, methods=["POST"]), Route("/healthz", healthz)])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_app", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    logs = load_settings(LogSettings)
    configure_logs(logs.log_level, logs.log_format)
    config = load_settings(ReceiverConfig)
    raise_file_limit(config)
    uvicorn.run(
        create_app(), host=args.host, port=args.port, log_level="info", log_config=None, **server_options(config)
    )


if __name__ == "__main__":
    main()
