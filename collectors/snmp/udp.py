"""One connected UDP socket to one SNMP agent, and the send / wait / re-send flow of a request.

Shared by the community (community.py) and the SNMPv3 (usm.py) transports. One socket per
transport (per device poll), like snmp_exporter's per-scrape connection: answers of one device
never queue behind another's in a shared receive buffer, and the kernel hands back ICMP
port-unreachable, so a closed port fails at once.

A request is sent, and re-sent after each `timeout` up to `retries` times, each try encoded
anew (a new request-id or msgID); an answer to any try of the current request counts. The
caller's `match` decides: it returns the answer, returns None for a datagram that is not one
(another request's, a stray), or raises ber.BerError for one that does not decode. Both are
dropped and counted in `dropped`: a stray or forged packet cannot end a poll, only make it
time out.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import TypeVar

from collectors.readings import PollError

from . import ber

Answer = TypeVar("Answer")


class _Endpoint(asyncio.DatagramProtocol):
    """Hands each datagram to the request waiting for it; remembers socket errors."""

    def __init__(self) -> None:
        self.waiter: asyncio.Future[None] | None = None
        self.inbox: list[bytes] = []
        self.error: OSError | None = None

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.inbox.append(data)
        self._wake()

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, OSError):
            self.error = exc
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


class UdpExchange:
    """Requests and answers over one connected socket; raises PollError on any failure."""

    def __init__(
        self, host: str, port: int, *, timeout: float, retries: int, silence_hint: str
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.retries = retries
        self._silence_hint = silence_hint
        self._socket: asyncio.DatagramTransport | None = None
        self._endpoint = _Endpoint()
        self.sent = 0
        self.dropped = 0

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    async def _open(self) -> _Endpoint:
        if self._socket is None:
            loop = asyncio.get_running_loop()
            try:
                self._socket, _ = await loop.create_datagram_endpoint(
                    lambda: self._endpoint, remote_addr=(self.host, self.port),
                    family=socket.AF_UNSPEC,
                )  # fmt: skip
            except socket.gaierror as exc:
                raise PollError(
                    "unreachable", f"cannot resolve {self.host}:{self.port}: {exc.strerror}"
                ) from None
            except OSError as exc:
                raise PollError(
                    "unreachable", f"cannot send to {self.host}:{self.port}: {exc.strerror}"
                ) from None
        return self._endpoint

    async def exchange(
        self, encode: Callable[[], bytes], match: Callable[[bytes], Answer | None]
    ) -> Answer:
        """Send `encode()` (called once per try) until `match` accepts a datagram."""
        endpoint = await self._open()
        assert self._socket is not None
        loop = asyncio.get_running_loop()
        endpoint.inbox.clear()
        endpoint.error = None
        undecodable: str | None = None
        for _ in range(self.retries + 1):
            self._socket.sendto(encode())
            self.sent += 1
            deadline = loop.time() + self.timeout
            while (left := deadline - loop.time()) > 0:
                if endpoint.error is not None:
                    raise self._socket_error(endpoint.error)
                while endpoint.inbox:
                    datagram = endpoint.inbox.pop(0)
                    try:
                        answer = match(datagram)
                    except ber.BerError as exc:
                        undecodable = str(exc)
                        self.dropped += 1
                        continue
                    if answer is None:
                        self.dropped += 1
                        continue
                    return answer
                endpoint.waiter = loop.create_future()
                try:
                    # asyncio.timeout, not wait_for: Python 3.11's wait_for turns a cancel that
                    # meets its own timeout into TimeoutError, and this poll would then end in
                    # a PollError nobody awaits ("Task exception was never retrieved").
                    async with asyncio.timeout(left):
                        await endpoint.waiter
                except TimeoutError:
                    break
                finally:
                    endpoint.waiter = None
        if undecodable is not None:
            raise PollError(
                "decode", f"undecodable answer from {self.host}:{self.port}: {undecodable}"
            )
        raise PollError(
            "timeout",
            f"no SNMP answer from {self.host}:{self.port} after {self.retries + 1} tries of "
            f"{self.timeout:g}s: {self._silence_hint}",
        )

    def _socket_error(self, error: OSError) -> PollError:
        if isinstance(error, ConnectionRefusedError):
            return PollError(
                "refused",
                f"{self.host}:{self.port} refused SNMP (ICMP port unreachable): no SNMP agent "
                "listens on that port; check the port and that SNMP is enabled on the device",
            )
        return PollError(
            "unreachable", f"cannot reach {self.host}:{self.port}: {error.strerror or error}"
        )
