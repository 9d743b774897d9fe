"""A small hand-written Modbus server for tests and demos (FC03 and FC04 only), in three framings.

Written from the Modbus application protocol, messaging-on-TCP and serial-line specs rather than
with pymodbus's server, whose datastore API keeps changing, and so that the collector's client is
checked against an independent implementation. It serves whatever a register source returns::

    def source(unit: int, function: int, address: int, count: int) -> list[int] | int | None:
        return [0x1234] * count   # the words; or an exception code (2: illegal address);
                                  # or None: stay silent, like a gateway whose device is dead

    ModbusTcpServer(source)                                  # Modbus TCP (MBAP header)
    ModbusTcpServer(source, framing="rtu")                   # RTU over TCP: a serial gateway
    ModbusTcpServer(source, max_connections=1)               # a gateway that takes one master
    ModbusRtuSerialServer(source, "/tmp/ttyA", baudrate=9600)  # RTU on a serial port (pty)

Unit ids are the source's business. `SimulatedUps` answers exception 11 (gateway target device
failed to respond) for ids it does not serve, as a TCP-to-serial gateway or an NMC does; a source
that wants the other common behaviour (no answer, so the client times out) returns None.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import termios
import tty
from collections.abc import Callable
from typing import Literal

RegisterSource = Callable[[int, int, int, int], list[int] | int | None]
Framing = Literal["socket", "rtu"]

READ_HOLDING, READ_INPUT = 3, 4
# Exception codes (application protocol 1.1b3, section 7) the servers and sources answer.
ILLEGAL_FUNCTION, ILLEGAL_DATA_ADDRESS, ILLEGAL_DATA_VALUE, DEVICE_FAILURE = 1, 2, 3, 4
GATEWAY_TARGET_FAILED = 11
_MBAP = struct.Struct(">HHHB")  # transaction id, protocol id (0), length, unit id
_MAX_PDU = 253  # Modbus TCP ADU limit 260 bytes minus the 7-byte MBAP header
_READ_REQUEST_BYTES = 8  # RTU FC03/FC04 request: unit, function, address, count, CRC
# Silence that ends an RTU frame of unknown length. The spec says 3.5 characters (4 ms at 9600
# baud); a pty or a TCP stream has no character timing, so wait a little longer.
_RTU_SILENCE_SECONDS = 0.02


def crc16(frame: bytes) -> int:
    """Modbus RTU CRC (polynomial 0xA001 reflected, initial 0xFFFF); sent low byte first."""
    crc = 0xFFFF
    for byte in frame:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def with_crc(frame: bytes) -> bytes:
    return frame + struct.pack("<H", crc16(frame))


def crc_ok(frame: bytes) -> bool:
    return len(frame) >= 4 and crc16(frame[:-2]) == struct.unpack("<H", frame[-2:])[0]


class _Responder:
    """Answers one request PDU from the register source."""

    def __init__(self, register_source: RegisterSource) -> None:
        self.register_source = register_source
        self.requests = 0  # request frames answered or ignored; shows what a master sent

    def _answer(self, unit: int, pdu: bytes) -> bytes | None:
        """Response PDU, or None for no answer."""
        self.requests += 1
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

    def _answer_rtu(self, frame: bytes) -> bytes | None:
        """RTU response frame (with CRC) to a request frame whose CRC was checked."""
        unit = frame[0]
        reply = self._answer(unit, frame[1:-2])
        # Unit 0 is a broadcast on a serial line: nobody answers it.
        if reply is None or unit == 0:
            return None
        return with_crc(bytes((unit,)) + reply)


class _RtuFrames:
    """Cuts an RTU byte stream into request frames.

    Read requests have a fixed length and are cut at once; anything else is one frame once the
    line falls silent (`flush`). A frame with a bad CRC is dropped, as a real device does.
    """

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self.buffer += data
        frames = []
        while len(self.buffer) >= 2 and self.buffer[1] in (READ_HOLDING, READ_INPUT):
            if len(self.buffer) < _READ_REQUEST_BYTES:
                break
            frame = bytes(self.buffer[:_READ_REQUEST_BYTES])
            if not crc_ok(frame):
                self.buffer.clear()  # lost sync: resynchronise on the next silence
                break
            del self.buffer[:_READ_REQUEST_BYTES]
            frames.append(frame)
        return frames

    def flush(self) -> bytes | None:
        frame, self.buffer = bytes(self.buffer), bytearray()
        return frame if crc_ok(frame) else None


class ModbusTcpServer(_Responder):
    """Serve a register source on TCP; one asyncio task per client connection.

    framing "socket" is Modbus TCP; "rtu" is RTU frames (with CRC) over TCP, as serial device
    servers pass them through. With `max_connections`, a further client is accepted and at once
    disconnected, as single-master gateways do.
    """

    def __init__(
        self,
        register_source: RegisterSource,
        *,
        framing: Framing = "socket",
        max_connections: int | None = None,
    ) -> None:
        super().__init__(register_source)
        self.framing = framing
        self.max_connections = max_connections
        self._server: asyncio.Server | None = None
        self._clients: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self.connections = 0  # accepted since creation; shows whether clients reuse theirs
        self.rejected = 0  # connections closed at once because all slots were taken
        # Fault knobs for tests: every reply `delay` s late; or half a reply, then a TCP reset.
        self.delay = 0.0
        self.reset_mid_response = False

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
        if self.max_connections is not None and len(self._clients) >= self.max_connections:
            self.rejected += 1
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None  # start_server runs every handler in its own task
        self._clients[task] = writer
        self.connections += 1
        try:
            if self.framing == "rtu":
                await self._serve_rtu(reader, writer)
            else:
                await self._serve_mbap(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            return  # client went away
        finally:
            self._clients.pop(task, None)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _serve_mbap(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            header = await reader.readexactly(_MBAP.size)
            tid, protocol, length, unit = _MBAP.unpack(header)
            # A bad MBAP header means we lost framing; a real device drops the connection.
            if protocol != 0 or not 2 <= length <= _MAX_PDU + 1:
                return
            pdu = await reader.readexactly(length - 1)
            reply = self._answer(unit, pdu)
            if reply is not None:
                await self._send(writer, _MBAP.pack(tid, 0, len(reply) + 1, unit) + reply)

    async def _serve_rtu(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frames = _RtuFrames()
        while True:
            try:
                timeout = _RTU_SILENCE_SECONDS if frames.buffer else None
                data = await asyncio.wait_for(reader.read(512), timeout)
            except TimeoutError:
                pending = [f] if (f := frames.flush()) else []
            else:
                if not data:
                    return
                pending = frames.feed(data)
            for frame in pending:
                reply = self._answer_rtu(frame)
                if reply is not None:
                    await self._send(writer, reply)

    async def _send(self, writer: asyncio.StreamWriter, frame: bytes) -> None:
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        if self.reset_mid_response:
            writer.write(frame[: len(frame) // 2])
            await writer.drain()
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()  # linger 0: the close sends RST, not FIN
            raise ConnectionResetError
        writer.write(frame)
        await writer.drain()


class ModbusRtuSerialServer(_Responder):
    """Serve a register source as RTU on a serial port, e.g. one end of a socat pty pair.

    With `baudrate`, each reply waits for the time request and reply would take on a real line
    at that speed (a pty has none), so a master sees realistic RTU timing.
    """

    def __init__(
        self,
        register_source: RegisterSource,
        path: str,
        *,
        baudrate: int | None = None,
        parity: Literal["N", "E", "O"] = "N",
        stopbits: int = 1,
    ) -> None:
        super().__init__(register_source)
        self.path = path
        self.baudrate = baudrate
        # start bit + 8 data bits + parity + stop bits
        self.bits_per_char = 1 + 8 + (parity != "N") + stopbits
        self._fd: int | None = None
        self._frames = _RtuFrames()
        self._silence: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        if self._fd is not None:
            raise RuntimeError("server already started")
        fd = os.open(self.path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        if os.isatty(fd):
            tty.setraw(fd, termios.TCSANOW)
        self._fd = fd
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(fd, self._readable)

    async def stop(self) -> None:
        if self._fd is None or self._loop is None:
            return
        if self._silence is not None:
            self._silence.cancel()
        self._loop.remove_reader(self._fd)
        os.close(self._fd)
        self._fd = None

    def _readable(self) -> None:
        assert self._fd is not None and self._loop is not None
        try:
            data = os.read(self._fd, 512)
        except BlockingIOError:
            return
        except OSError:  # EIO: the other end of the pty pair is gone (socat ended)
            self._loop.remove_reader(self._fd)
            return
        if self._silence is not None:
            self._silence.cancel()
        for frame in self._frames.feed(data):
            self._reply(frame)
        if self._frames.buffer:
            self._silence = self._loop.call_later(_RTU_SILENCE_SECONDS, self._flush)

    def _flush(self) -> None:
        frame = self._frames.flush()
        if frame is not None:
            self._reply(frame)

    def _reply(self, frame: bytes) -> None:
        assert self._loop is not None
        reply = self._answer_rtu(frame)
        if reply is None:
            return
        delay = 0.0
        if self.baudrate:
            delay = (len(frame) + len(reply)) * self.bits_per_char / self.baudrate
        self._loop.call_later(delay, self._write, reply)

    def _write(self, data: bytes) -> None:
        if self._fd is not None:
            with contextlib.suppress(BlockingIOError):
                os.write(self._fd, data)


def _exception(function: int, code: int) -> bytes:
    return bytes((function | 0x80, code))
