"""SNMPv1/v2c over UDP with the BER codec of ber.py: the transport of community devices.

One connected UDP socket per transport (per device poll), like snmp_exporter's per-scrape
connection: answers of one device never queue behind another's in a shared receive buffer,
and the kernel hands back ICMP port-unreachable, so a closed port fails at once.

A request is sent, and re-sent after each `timeout` up to `retries` times, each try with a new
request-id; an answer to any try of the current request counts. Datagrams that do not decode,
carry another request-id or are not a Response are dropped (counted in `dropped`): a stray or
forged packet cannot end a poll, only make it time out.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Sequence

from collectors.readings import PollError

from . import ber
from .values import END_OF_MIB_VIEW, Oidt, VarBind, format_oid

_NO_SUCH_NAME = 2  # SNMPv1's way of saying "no such OID" or, for GETNEXT, "end of MIB"


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


class CommunityTransport:
    """GET and GETBULK to one agent with a community; raises PollError on any failure."""

    def __init__(
        self,
        host: str,
        port: int,
        community: str,
        version: str,
        *,
        timeout: float,
        retries: int,
        silence_hint: str,
    ) -> None:
        self.host = host
        self.port = port
        self._community = community.encode()
        self._version = 0 if version == "1" else 1
        self._timeout = timeout
        self._retries = retries
        self._silence_hint = silence_hint
        self._request_id = random.randrange(1, 2**31 - 1)
        self._socket: asyncio.DatagramTransport | None = None
        self._endpoint = _Endpoint()
        self.sent = 0
        self.dropped = 0

    def packets_sent(self) -> int:
        return self.sent

    async def discover_engine_id(self) -> bytes:
        raise PollError("config", "SNMPv3 engine discovery on a community transport")

    async def get(self, oids: Sequence[Oidt]) -> list[VarBind]:
        if self._version == 0:
            return await self._v1_request(ber.GET, oids)
        return await self._exchange(ber.GET, oids)

    async def bulk(self, oids: Sequence[Oidt], max_repetitions: int) -> list[VarBind]:
        if self._version == 0:  # SNMPv1 has no GETBULK: one row per request
            return await self._v1_request(ber.GETNEXT, oids)
        return await self._exchange(ber.GETBULK, oids, max_repetitions)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    async def _v1_request(self, pdu_type: int, oids: Sequence[Oidt]) -> list[VarBind]:
        """SNMPv1 fails a whole PDU with noSuchName for one OID; ask again without it, as
        pysnmp's RFC 2576 proxy and net-snmp do, and mark it missing (GET) or ended (GETNEXT)."""
        answers: dict[int, VarBind] = {}
        pending = list(range(len(oids)))
        while pending:
            try:
                varbinds = await self._exchange(pdu_type, [oids[i] for i in pending])
            except _NoSuchName as exc:
                index = pending.pop(exc.index)
                answers[index] = (oids[index], END_OF_MIB_VIEW if pdu_type == ber.GETNEXT else None)
                continue
            answers.update(zip(pending, varbinds, strict=False))
            break
        return [answers[i] for i in range(len(oids)) if i in answers]

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

    async def _exchange(
        self, pdu_type: int, oids: Sequence[Oidt], max_repetitions: int = 0
    ) -> list[VarBind]:
        endpoint = await self._open()
        assert self._socket is not None
        loop = asyncio.get_running_loop()
        endpoint.inbox.clear()
        endpoint.error = None
        tries: set[int] = set()
        undecodable: str | None = None
        for _ in range(self._retries + 1):
            self._request_id = self._request_id % (2**31 - 1) + 1
            tries.add(self._request_id)
            wire = ber.encode_request(
                self._version, self._community, pdu_type, self._request_id, oids, 0,
                max_repetitions,
            )  # fmt: skip
            self._socket.sendto(wire)
            self.sent += 1
            deadline = loop.time() + self._timeout
            while (left := deadline - loop.time()) > 0:
                if endpoint.error is not None:
                    raise self._socket_error(endpoint.error)
                while endpoint.inbox:
                    datagram = endpoint.inbox.pop(0)
                    try:
                        answer = ber.decode_message(datagram)
                    except ber.BerError as exc:
                        undecodable = str(exc)
                        self.dropped += 1
                        continue
                    if answer.request_id not in tries or answer.pdu_type != ber.RESPONSE:
                        self.dropped += 1
                        continue
                    return self._varbinds(answer, oids)
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
            f"no SNMP answer from {self.host}:{self.port} after {self._retries + 1} tries of "
            f"{self._timeout:g}s: {self._silence_hint}",
        )

    def _varbinds(self, answer: ber.Message, oids: Sequence[Oidt]) -> list[VarBind]:
        status, index = answer.error_status, answer.error_index
        if status == _NO_SUCH_NAME and self._version == 0 and 0 < index <= len(oids):
            raise _NoSuchName(index - 1)
        if status:
            where = ""
            if 0 < index <= len(oids):
                where = f" at {format_oid(oids[index - 1])}"
            raise PollError(
                "protocol",
                f"agent {self.host}:{self.port} answered {ber.error_name(status)}{where}",
            )
        return answer.varbinds

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


class _NoSuchName(Exception):
    def __init__(self, index: int) -> None:
        self.index = index
