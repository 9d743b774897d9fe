"""A recorded `upsc` dump (a .dev file, the dummy-ups format) served by a small upsd on loopback.

    server = UpsdReplay({"ups": read_dev(Path("tests/fixtures/nut/eaton-5e1100i.dev"))})
    host, port = await server.start()
    reading = await NutCollector(host, port, "ups").poll()
    await server.stop()

read_dev parses as dummy-ups does (NUT's parseconf): `name: value` per line, `#` starts a
comment, double quotes group and backslash escapes, and the words after the name are joined by
one space. The server speaks what NutCollector asks of upsd without credentials (NUT's
docs/net-protocol.txt): LIST VAR, with values quoted and escaped as upsd sends them, and LOGOUT;
anything else is ERR UNKNOWN-COMMAND.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Mapping
from pathlib import Path


def read_dev(path: Path) -> list[tuple[str, str]]:
    variables = []
    for line in path.read_text(encoding="utf-8").splitlines():
        words = shlex.split(line, comments=True)
        if words:
            variables.append((words[0].removesuffix(":"), " ".join(words[1:])))
    return variables


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class UpsdReplay:
    """upsd serving `devices` ({ups name: [(variable, value)]}) on 127.0.0.1."""

    def __init__(self, devices: Mapping[str, list[tuple[str, str]]]) -> None:
        self._devices = devices
        self._server: asyncio.Server | None = None

    async def start(self) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                words = shlex.split(line.decode())
                if words == ["LOGOUT"]:
                    writer.write(b"OK Goodbye\n")
                    break
                writer.write(self._answer(words).encode())
                await writer.drain()
        finally:
            writer.close()

    def _answer(self, words: list[str]) -> str:
        if len(words) != 3 or words[:2] != ["LIST", "VAR"]:
            return "ERR UNKNOWN-COMMAND\n"
        ups = words[2]
        if ups not in self._devices:
            return "ERR UNKNOWN-UPS\n"
        lines = [f"VAR {ups} {name} {_quoted(value)}\n" for name, value in self._devices[ups]]
        return f"BEGIN LIST VAR {ups}\n{''.join(lines)}END LIST VAR {ups}\n"
