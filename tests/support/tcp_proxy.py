"""A TCP proxy in front of PostgreSQL that a test can partition silently: `freeze()` makes
every connection open through it stop delivering in both directions, without a reset or a
close (what a NAT or a proxy that dropped the connection's state does). Connections opened
after it are forwarded as usual (the network path is back for new connections)."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit, urlunsplit


class _Link:
    def __init__(self) -> None:
        self.frozen = False
        self.tasks: list[asyncio.Task[None]] = []
        self.writers: list[asyncio.StreamWriter] = []


class FreezableProxy:
    def __init__(self, dsn: str) -> None:
        parts = urlsplit(dsn)
        assert parts.hostname is not None and parts.port is not None, dsn
        self._target = (parts.hostname, parts.port)
        self._dsn = parts
        self._links: list[_Link] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def connections(self) -> int:
        """Connections made through the proxy so far."""
        return len(self._links)

    def dsn(self) -> str:
        """The database's DSN, through the proxy."""
        user = f"{self._dsn.username}:{self._dsn.password}@" if self._dsn.password else (
            f"{self._dsn.username}@" if self._dsn.username else "")
        return urlunsplit(self._dsn._replace(netloc=f"{user}127.0.0.1:{self.port}"))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def freeze(self) -> None:
        for link in self._links:
            link.frozen = True

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in self._links:
            for task in link.tasks:
                task.cancel()
            for writer in link.writers:
                writer.close()
            for task in link.tasks:
                with contextlib.suppress(asyncio.CancelledError, OSError):
                    await task

    async def _serve(self, client_r: asyncio.StreamReader,
                     client_w: asyncio.StreamWriter) -> None:
        link = _Link()
        self._links.append(link)
        server_r, server_w = await asyncio.open_connection(*self._target)
        link.writers = [client_w, server_w]
        link.tasks = [asyncio.create_task(self._pump(link, client_r, server_w)),
                      asyncio.create_task(self._pump(link, server_r, client_w))]

    @staticmethod
    async def _pump(link: _Link, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            if link.frozen:
                continue  # swallowed: the other side hears nothing, and no reset
            writer.write(data)
            await writer.drain()
        writer.close()
