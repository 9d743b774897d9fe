"""A small HTTP/1.1 server for the link probes' tests and the demo, plain or TLS::

    web = SimulatedWeb({"/": Page(body=b"ok"), "/slow": Page(delay=0.3), "/fail": Page(500)})
    host, port = await web.start("127.0.0.1", 0, ssl_context=None)

Each path answers with its Page: a status, a body, a Location, and a delay before the first
byte (a server thinking); any other path is a 404. One request per connection, then close.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass

_REASONS = {200: "OK", 301: "Moved Permanently", 302: "Found", 404: "Not Found", 500: "Error"}


@dataclass(frozen=True)
class Page:
    status: int = 200
    body: bytes = b""
    delay: float = 0.0  # seconds before the status line
    location: str = ""
    sized: bool = True  # False: no Content-Length, the body ends when the server closes


class SimulatedWeb:
    def __init__(self, pages: dict[str, Page]) -> None:
        self.pages = pages
        self.requests: list[str] = []  # the paths asked, in order
        self._server: asyncio.Server | None = None

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None
    ) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._serve, host, port, ssl=ssl_context)
        return host, self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode("ascii", "replace")
            self.requests.append(path)
            page = self.pages.get(path.split("?")[0], Page(404, b"not found"))
            await asyncio.sleep(page.delay)
            lines = [f"HTTP/1.1 {page.status} {_REASONS.get(page.status, 'Status')}"]
            if page.sized:
                lines.append(f"Content-Length: {len(page.body)}")
            lines.append("Connection: close")
            if page.location:
                lines.append(f"Location: {page.location}")
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + page.body)
            await writer.drain()
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
