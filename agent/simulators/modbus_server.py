"""A small hand-written Modbus TCP server for tests and demos (FC03 and FC04 only).

Written from the Modbus application protocol and messaging-on-TCP specs rather than with
pymodbus's server, whose datastore API keeps changing, and so that the collector's client is
checked against an independent implementation. It serves whatever a register source returns::

    def source(unit: int, function: int, address: int, count: int) -> list[int] | int | None:
        return [0x1234] * count   # the words; or an exception code (2: illegal address);
                                  # or None: stay silent, like a gateway whose device is dead

Unit ids are the source's business. `SimulatedUps` answers exception 11 (gateway target device
failed to respond) for ids it does not serve, as a TCP-to-serial gateway or an NMC does; a source
that wants the other common behaviour (no answer, so the client times out) returns None.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Callable

RegisterSource = Callable[[int, int, int, int], list[int] | int | None]

READ_HOLDING, READ_INPUT = 3, 4
ILLEGAL_FUNCTION, ILLEGAL_DATA_VALUE, DEVICE_FAILURE = 1, 3, 4
_MBAP = struct.Struct(">HHHB")  # transaction id, protocol id (0), length, unit id
_MAX_PDU = 253  # Modbus TCP ADU limit 260 bytes minus the 7-byte MBAP header


class ModbusTcpServer:
    """Serve a register source on TCP; one asyncio task per client connection."""

    def __init__(self, register_source: RegisterSource) -> None:
        self.register_source = register_source
        self._server: asyncio.Server | None = None
        self._clients: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self.connections = 0  # accepted since creation; shows whether clients reuse theirs

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Listen; port 0 picks a free port. Returns the address actually bound."""
        if self._server is not None:
            raise RuntimeError("server already started")
        self._server = await asyncio.start_server(self._serve, host, port, reuse_address=True)
        bound_host, bound_port = self._server.sockets[0].getsockname()[:2]
        return bound_host, bound_port

    async def stop(self) -> None:
        """Stop listening and drop every client, as a rebooting UPS card would."""
        if self._server is None:
            return
        self._server.close()
        for writer in self._clients.values():
            writer.close()
        # Python 3.11's wait_closed() does not wait for connection handlers; do it here so no
        # task outlives the server.
        await asyncio.gather(*self._clients, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # start_server runs every handler in its own task
        self._clients[task] = writer
        self.connections += 1
        try:
            while True:
                header = await reader.readexactly(_MBAP.size)
                tid, protocol, length, unit = _MBAP.unpack(header)
                # A bad MBAP header means we lost framing; a real device drops the connection.
                if protocol != 0 or not 2 <= length <= _MAX_PDU + 1:
                    return
                pdu = await reader.readexactly(length - 1)
                reply = self._answer(unit, pdu)
                if reply is not None:
                    writer.write(_MBAP.pack(tid, 0, len(reply) + 1, unit) + reply)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return  # client went away
        finally:
            self._clients.pop(task, None)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _answer(self, unit: int, pdu: bytes) -> bytes | None:
        """Response PDU, or None for no answer."""
        function = pdu[0]
        if function not in (READ_HOLDING, READ_INPUT):
            return _exception(function, ILLEGAL_FUNCTION)
        if len(pdu) != 5:
            return _exception(function, ILLEGAL_DATA_VALUE)
        address, count = struct.unpack(">HH", pdu[1:])
        if not 1 <= count <= 125:
            return _exception(function, ILLEGAL_DATA_VALUE)
        result = self.register_source(unit, function, address, count)
        if result is None or isinstance(result, int):
            return None if result is None else _exception(function, result)
        if len(result) != count:  # a broken source is the device's fault, not the client's
            return _exception(function, DEVICE_FAILURE)
        return struct.pack(f">BB{count}H", function, 2 * count, *result)


def _exception(function: int, code: int) -> bytes:
    return bytes((function | 0x80, code))
