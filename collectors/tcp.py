"""One TCP connect with a timeout, every failure turned into a reason and a one-line detail.

    reader, writer = await open_tcp("10.0.0.5", 3493, 2.0)  # a session (NUT)
    seconds = await knock("10.0.0.5", 502, 2.0)               # is anything there (check, probes)

Both raise ConnectError: `reason` is refused (something answered with a reset), timeout,
unresolved (the name), or unreachable (any other socket error: no route, network down, ...);
str() says the same without the address, so each caller adds its own where and hint.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Literal

from .readings import PollError

ConnectReason = Literal["refused", "timeout", "unresolved", "unreachable"]


class ConnectError(Exception):
    """Why a TCP connect failed, and how long it took to say so."""

    def __init__(self, reason: ConnectReason, detail: str, seconds: float) -> None:
        super().__init__(detail)
        self.reason: ConnectReason = reason
        self.seconds = seconds

    def poll_error(self, where: str, hint: str = "") -> PollError:
        """As a collector reports it: a name that does not resolve counts as unreachable."""
        reason = "unreachable" if self.reason == "unresolved" else self.reason
        return PollError(reason, f"{where}: {self}" + (f"; {hint}" if hint else ""))


def _classify(exc: OSError, timeout: float, started: float) -> ConnectError:
    seconds = time.perf_counter() - started
    if isinstance(exc, TimeoutError):
        return ConnectError("timeout", f"no TCP connection within {timeout:g} s", seconds)
    if isinstance(exc, ConnectionRefusedError):
        return ConnectError("refused", "connection refused", seconds)
    if isinstance(exc, socket.gaierror):
        return ConnectError("unresolved", f"cannot resolve host ({exc.strerror})", seconds)
    # A reset or abort during the handshake lands here too: nothing was established.
    return ConnectError("unreachable", exc.strerror or str(exc) or type(exc).__name__, seconds)


async def open_tcp(
    host: str, port: int, timeout: float
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connected stream pair within `timeout` seconds, else ConnectError."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            return await asyncio.open_connection(host, port)
    except OSError as exc:  # TimeoutError included
        raise _classify(exc, timeout, started) from None


async def knock(host: str, port: int, timeout: float, sock: socket.socket | None = None) -> float:
    """Connect and close at once; the seconds the connect took, else ConnectError (whose
    `seconds` says when a refusal came back: a refusal still proves the path works).

    `sock`: an unconnected non-blocking socket the caller prepared (bound to an uplink, say),
    connected by address and left to the caller to close."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            if sock is None:
                _, writer = await asyncio.open_connection(host, port)
                writer.close()
            else:
                await asyncio.get_running_loop().sock_connect(sock, (host, port))
    except OSError as exc:  # TimeoutError included
        raise _classify(exc, timeout, started) from None
    return time.perf_counter() - started
