"""A speed-test HTTP endpoint on loopback: GET sends `size` bytes, POST takes a body of any
size and answers 200 once all of it arrived. The demo's capacity test uses it where iperf3 is
not installed, and the tests use it as a known-size server."""

from __future__ import annotations

import asyncio
import contextlib

_BLOCK = bytes(65536)


class SpeedtestServer:
    def __init__(self, size: int = 10_000_000) -> None:
        self.size = size
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._serve, host, port)
        address = self._server.sockets[0].getsockname()
        return address[0], address[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, ValueError):
            method = (await reader.readline()).split(b" ", 1)[0]
            length = 0
            while (line := await reader.readline()).strip():
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if method == b"GET":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % self.size)
                for start in range(0, self.size, len(_BLOCK)):
                    writer.write(_BLOCK[: self.size - start])
                    await writer.drain()
            elif method == b"POST":
                await reader.readexactly(length)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            else:
                writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
        writer.close()
