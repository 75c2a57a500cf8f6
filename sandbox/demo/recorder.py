"""Recording proxy: a loopback TCP proxy in front of Redis that notes every argument the demo's clients send."""

from __future__ import annotations

import asyncio
import ssl
from urllib.parse import parse_qs, urlsplit, urlunsplit

# Their arguments are credentials, never keys: not noted.
_UNNOTED = frozenset({b"AUTH", b"HELLO"})
_CHUNK = 65_536


class CommandReader:
    """Splits what a client sends to Redis into commands: RESP arrays of bulk strings, or inline lines. Pure."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[list[bytes]]:
        """The commands completed by `data`; a command cut short waits for the rest. Raises ValueError."""
        self._buffer += data
        commands: list[list[bytes]] = []
        while (parsed := self._next()) is not None:
            command, used = parsed
            del self._buffer[:used]
            if command:
                commands.append(command)
        return commands

    def _next(self) -> tuple[list[bytes], int] | None:
        buffer = self._buffer
        end = buffer.find(b"\r\n")
        if end < 0:
            return None
        if not buffer.startswith(b"*"):
            return bytes(buffer[:end]).split(), end + 2  # an inline command, as redis-cli may send
        args: list[bytes] = []
        position = end + 2
        for _ in range(int(buffer[1:end])):
            end = buffer.find(b"\r\n", position)
            if end < 0:
                return None
            if buffer[position : position + 1] != b"$":
                raise ValueError("a command's argument is not a RESP bulk string")
            start = end + 2
            stop = start + int(buffer[position + 1 : end])
            if len(buffer) < stop + 2:
                return None
            args.append(bytes(buffer[start:stop]))
            position = stop + 2
        return args, position


class RecordingProxy:
    """Forwards every connection to the Redis at `upstream_url` unchanged, noting the arguments of each command.

    `named` holds every argument (the command's name left out) that went through: any key a client created,
    changed or read is among them, or is several of them joined by a script (cleanup.py, `made_of`).
    """

    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self._upstream_url = upstream_url
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 6379
        self._ssl = _tls(upstream_url)
        self.named: set[bytes] = set()
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._pumps: set[asyncio.Task[None]] = set()
        self._closing = False

    async def start(self) -> str:
        """Listen on a free loopback port; the URL clients use instead of the upstream one (same user, database)."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        parts = urlsplit(self._upstream_url)
        credentials = parts.netloc.rpartition("@")[0]
        netloc = f"{credentials}@127.0.0.1:{port}" if credentials else f"127.0.0.1:{port}"
        # TLS is the proxy's business with Redis: the clients' leg is plain loopback.
        query = "&".join(p for p in parts.query.split("&") if p and not p.startswith("ssl"))
        return urlunsplit(("redis", netloc, parts.path, query, ""))

    async def close(self) -> None:
        """Stop listening and end every connection still open; no command goes through afterwards."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        for pump in list(self._pumps):
            pump.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        upstream_writer: asyncio.StreamWriter | None = None
        try:
            if self._closing:
                return  # accepted just before the proxy closed
            upstream_reader, upstream_writer = await asyncio.open_connection(self._host, self._port, ssl=self._ssl)
            pumps = {
                asyncio.create_task(self._requests(client_reader, upstream_writer)),
                asyncio.create_task(_pump(upstream_reader, client_writer)),
            }
            self._pumps |= pumps
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            self._pumps -= pumps
        except OSError:
            pass  # Redis cannot be reached: the client sees its connection closed
        finally:
            for writer in (client_writer, upstream_writer):
                if writer is not None:
                    writer.close()
            self._connections.discard(task)

    async def _requests(self, client: asyncio.StreamReader, upstream: asyncio.StreamWriter) -> None:
        commands = CommandReader()
        while data := await client.read(_CHUNK):
            for command in commands.feed(data):
                if command[0].upper() not in _UNNOTED:
                    self.named.update(command[1:])
            upstream.write(data)
            await upstream.drain()


async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    while data := await source.read(_CHUNK):
        sink.write(data)
        await sink.drain()


def _tls(url: str) -> ssl.SSLContext | None:
    """For rediss:// URLs, TLS as redis-py sets it up from the same URL (ssl_ca_certs, ssl_cert_reqs)."""
    parts = urlsplit(url)
    if parts.scheme != "rediss":
        return None
    query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    context = ssl.create_default_context(cafile=query.get("ssl_ca_certs"))
    if query.get("ssl_cert_reqs", "required").lower() in {"none", "optional"}:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE if query["ssl_cert_reqs"].lower() == "none" else ssl.CERT_OPTIONAL
    return context
