"""Modbus links: one shared connection per gateway, every request through one queue.

    pool = GatewayPool()
    gateway = pool.gateway(Link("rtu", "/dev/ttyUSB0", baudrate=9600), timeout=2, retries=1,
                           pause=0.05)
    words, requests = await gateway.read("holding", 130, 2, unit=1, where="ups-1")

A `Link` says how the bytes travel: Modbus TCP, RTU on a serial port, or RTU frames over TCP
through a serial device server. Every device on the same gateway (host:port, or serial port)
shares one `Gateway`: one pymodbus client, one lock, so requests for several unit ids never
overlap, and a pause between requests for slow RS-485 lines. Gateways that accept a single
master keep working with several UPS behind them.

After a failed connect (gateway rebooting after a power cut) the next attempt waits a back-off
that doubles from `backoff_min` to `backoff_max`; polls in between fail at once with the last
reason instead of each waiting out a timeout. Exception 6 (busy) is retried a few times.

An answer that is not a Modbus frame (an MBAP length that cuts the PDU, an unknown function
code, a bad CRC, an RTU frame cut short) fails the request with reason "malformed" as soon as
pymodbus gives up on it; see `_AnswerGuard` for how it is kept away from asyncio's log.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from dataclasses import dataclass
from typing import Literal

import serial
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusIOException
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU
from pymodbus.transaction import TransactionManager

from collectors.readings import PollError
from collectors.tcp import ConnectError, knock

log = logging.getLogger(__name__)

TransportKind = Literal["tcp", "rtu", "rtu-over-tcp"]
Parity = Literal["N", "E", "O"]

# Modbus application protocol 1.1b3, section 7, with what to check for each.
EXCEPTIONS: dict[int, tuple[str, str]] = {
    1: ("illegal function", "check the profile's register table (holding/input)"),
    2: ("illegal data address", "check that the profile matches this model and firmware"),
    3: ("illegal data value", "check the profile's block sizes"),
    4: ("device failure", "the device could not read its own data; restart its network card"),
    6: ("device busy", "poll less often or stop other Modbus masters"),
    10: ("gateway path unavailable", "check the gateway's routing for this unit id"),
    11: ("gateway target failed to respond", "check the unit id and the serial link"),
}
DEVICE_BUSY = 6
BUSY_RETRIES = 2  # Telegraf's busy_retries idea: busy is transient, anything else is not
BUSY_WAIT_SECONDS = 0.1

# pymodbus 3.16 raises ModbusIOException both for "no answer after retries" and for answers from
# the wrong unit or transaction; only the text tells them apart (transaction/transaction.py).
_NO_RESPONSE = "No response received"
_CONNECT_HINTS = {  # by collectors.tcp reason
    "refused": "check the port and that Modbus TCP is enabled on the UPS network card or gateway",
    "timeout": "check the address, routing and firewall",
    "unresolved": "check the name",
    "unreachable": "check the address and the network path",
}
FUNCTION_CODES = {"holding": 3, "input": 4}
PREVIEW_BYTES = 12  # of a malformed answer, in the log line: enough to tell HTTP or RTU apart


class MalformedAnswer(Exception):
    """pymodbus could not decode what came back; raised into the request waiting for it."""


class _AnswerGuard:
    """Stands between pymodbus' transport and its framer for one client connection.

    pymodbus 3.16 decodes answers inside asyncio's `data_received()`. When its framer raises on a
    frame it cannot decode (an MBAP length shorter than the PDU, an unknown function code), the
    exception escapes into asyncio, which logs "Fatal error: protocol.data_received() call
    failed." with a traceback, closes the socket, and the request waits out its timeout. Frames
    the framer drops quietly (a bad CRC, an RTU frame cut short, another unit's answer) also end
    as a timeout, as if the device had said nothing. The guard catches the first kind and fails
    the waiting request at once, and keeps the bytes of the second kind, so both are reported as
    what they are: a malformed answer.
    """

    def __init__(self, protocol: TransactionManager) -> None:
        self._protocol = protocol
        self._frame = protocol.callback_data
        protocol.callback_data = self._received  # type: ignore[method-assign]
        self.stray = 0  # bytes since the request went out that formed no answer
        self.stray_head = b""  # the first of them, for the log line
        self._kept = 0  # bytes pymodbus left in its buffer to wait for the rest of a frame

    def expect(self) -> None:
        """A request is about to go out; pymodbus empties its buffer for its answer."""
        self.stray, self.stray_head, self._kept = 0, b"", 0

    def _unframed(self, data: bytes) -> None:
        self.stray += len(data)
        self.stray_head = (self.stray_head + data)[: PREVIEW_BYTES + 1]

    def _received(self, data: bytes, addr: tuple | None = None) -> int:
        # pymodbus hands over its whole buffer each time: what it kept last time, then new bytes.
        fresh = data[self._kept :] if len(data) >= self._kept else data
        try:
            used = self._frame(data, addr)
        except Exception:  # the framer's error for a frame it cannot decode, whichever it is
            self._unframed(fresh)
            self._kept = 0
            future = self._protocol.response_future
            if not future.done():
                future.set_exception(MalformedAnswer())
                future.exception()  # seen: no "exception was never retrieved" if none waits
            return len(data)  # drop the buffer; the gateway closes this connection anyway
        if self._protocol.last_pdu is None:
            self._unframed(fresh)
        self._kept = len(data) - used
        return used


@dataclass(frozen=True, slots=True)
class Link:
    """How to reach a gateway. `address` is a host for tcp/rtu-over-tcp, a device path for rtu."""

    kind: TransportKind
    address: str
    port: int = 502
    baudrate: int = 9600
    parity: Parity = "N"
    stopbits: int = 1
    bytesize: int = 8

    @property
    def serial(self) -> bool:
        return self.kind == "rtu"

    @property
    def key(self) -> tuple[str, str, int]:
        """Same key, same gateway: a serial port, or a host and TCP port."""
        return ("serial", self.address, 0) if self.serial else ("tcp", self.address, self.port)

    def __str__(self) -> str:
        if self.serial:
            return f"{self.address} ({self.baudrate} {self.bytesize}{self.parity}{self.stopbits})"
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


class Gateway:
    """One connection and one request queue for every unit id behind a gateway."""

    def __init__(
        self,
        link: Link,
        *,
        timeout: float,
        retries: int,
        pause: float = 0.0,
        backoff_min: float = 1.0,
        backoff_max: float = 30.0,
    ) -> None:
        self.link = link
        self.timeout = timeout
        self.retries = retries
        self.pause = pause
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self.connects = 0  # successful connects; stays 1 while the connection holds
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
        self._guard: _AnswerGuard | None = None
        self._lock = asyncio.Lock()
        self._last_request_end = float("-inf")
        self._backoff = 0.0
        self._retry_at = float("-inf")
        self._last_failure: PollError | None = None

    def join(self, *, timeout: float, retries: int, pause: float) -> None:
        """Another device on this gateway: the slowest settings win, so none is cut short."""
        self.timeout = max(self.timeout, timeout)
        self.retries = max(self.retries, retries)
        self.pause = max(self.pause, pause)

    async def read(
        self, table: str, address: int, count: int, *, unit: int, where: str
    ) -> tuple[list[int], int]:
        """Words of one FC03/FC04 read and the requests it took; PollError on any failure."""
        span = f"{table} {address}+{count}"
        async with self._lock:
            client = await self._connect(where)
            guard = self._guard
            assert guard is not None  # set with the client
            requests = 0
            for busy_round in range(BUSY_RETRIES + 1):
                await self._pace()
                guard.expect()
                try:
                    response = await self._request(client, table, address, count, unit)
                except MalformedAnswer:
                    self._drop()
                    raise self._malformed(where, span, guard) from None
                except ModbusIOException as exc:
                    lost = not client.connected  # pymodbus reports a reset as a timeout
                    self._drop()
                    if lost:
                        raise PollError(
                            "reset",
                            f"{where}: the connection was reset while reading {span}; the "
                            "gateway rebooted or dropped us (another master?)",
                        ) from None
                    if _NO_RESPONSE in exc.string and guard.stray:
                        raise self._malformed(where, span, guard) from None
                    if _NO_RESPONSE in exc.string:
                        raise PollError(
                            "timeout",
                            f"{where}: no answer to {span} within {self.timeout:g} s "
                            f"({self.retries} retries); check the unit id, the wiring and "
                            "that Modbus is enabled",
                        ) from None
                    raise PollError(
                        "protocol",
                        f"{where}: answer to {span} did not match the request; check that "
                        "only one device answers at this address",
                    ) from None
                except ConnectionException:
                    self._drop()
                    raise await self._connect_error(where, 0.0) from None
                except asyncio.CancelledError:
                    self._drop()  # an answer may still be in flight; keep it from the next one
                    raise
                finally:
                    self._last_request_end = asyncio.get_running_loop().time()
                requests += 1 + response.retries
                if not response.isError():
                    break
                code = response.exception_code
                if code == DEVICE_BUSY and busy_round < BUSY_RETRIES:
                    await asyncio.sleep(BUSY_WAIT_SECONDS)
                    continue
                meaning, hint = EXCEPTIONS.get(code, ("unknown exception", "see the device manual"))
                tries = f" after {busy_round + 1} tries" if code == DEVICE_BUSY else ""
                raise PollError(
                    f"exception_{code}",
                    f"{where}: Modbus exception {code} ({meaning}) reading {span}{tries}; {hint}",
                )
            if response.function_code != FUNCTION_CODES[table]:
                self._drop()  # an answer to some other request: the stream is out of step
                raise PollError(
                    "malformed",
                    f"{where}: answer to {span} was function {response.function_code}, not "
                    f"{FUNCTION_CODES[table]}; {self._framing_hint()}",
                )
            words = list(response.registers)
            if len(words) != count:
                self._drop()  # framing may be off; do not trust the rest of this stream
                raise PollError(
                    "decode",
                    f"{where}: answer to {span} carried {len(words)} registers; check that the "
                    f"device really speaks {self.link.kind} Modbus here",
                )
            return words, requests

    def _malformed(self, where: str, span: str, guard: _AnswerGuard) -> PollError:
        head = guard.stray_head
        preview = head[:PREVIEW_BYTES].hex(" ") + (" ..." if len(head) > PREVIEW_BYTES else "")
        return PollError(
            "malformed",
            f"{where}: answer to {span} was not a valid Modbus frame ({guard.stray} bytes: "
            f"{preview}); {self._framing_hint()}",
        )

    def _framing_hint(self) -> str:
        if self.link.kind == "tcp":
            return (
                "check that this port speaks Modbus TCP (a serial gateway in transparent mode "
                "needs transport: rtu-over-tcp) and that no other master shares the device"
            )
        return (
            "check the baud rate, parity and RS-485 wiring (A/B, termination) and that only one "
            "master polls this line"
        )

    async def close(self) -> None:
        """Drop the connection once no request is in flight; the next read reconnects."""
        async with self._lock:
            self._drop()

    async def _request(
        self,
        client: AsyncModbusTcpClient | AsyncModbusSerialClient,
        table: str,
        address: int,
        count: int,
        unit: int,
    ) -> ModbusPDU:
        read = client.read_holding_registers if table == "holding" else client.read_input_registers
        return await read(address, count=count, device_id=unit)

    async def _pace(self) -> None:
        """Keep `pause` seconds of quiet between requests, whoever sent the previous one."""
        wait = self._last_request_end + self.pause - asyncio.get_running_loop().time()
        if wait > 0:
            await asyncio.sleep(wait)

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client, self._guard = None, None

    def _new_client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        # reconnect_delay=0: pymodbus would otherwise reconnect in a background task on its own
        # schedule; we reconnect on the next request, with our own back-off.
        link = self.link
        if link.serial:
            return AsyncModbusSerialClient(
                link.address,
                baudrate=link.baudrate,
                bytesize=link.bytesize,
                parity=link.parity,
                stopbits=link.stopbits,
                timeout=self.timeout,
                retries=self.retries,
                reconnect_delay=0,
            )
        return AsyncModbusTcpClient(
            link.address,
            port=link.port,
            framer=FramerType.RTU if link.kind == "rtu-over-tcp" else FramerType.SOCKET,
            timeout=self.timeout,
            retries=self.retries,
            reconnect_delay=0,
        )

    async def _connect(self, where: str) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        if self._client is not None and self._client.connected:
            return self._client
        self._drop()  # a connection the peer closed; start again
        loop = asyncio.get_running_loop()
        now = loop.time()
        if now < self._retry_at and self._last_failure is not None:
            last = self._last_failure
            raise PollError(
                last.reason,
                f"{where}: {last}; next connect attempt in {self._retry_at - now:.0f} s",
            )
        client = self._new_client()
        if not await client.connect():
            client.close()
            error = await self._connect_error(where, loop.time() - now)
            self._backoff = min(self.backoff_max, max(self.backoff_min, 2 * self._backoff))
            self._retry_at = loop.time() + self._backoff
            self._last_failure = PollError(error.reason, _after_where(str(error), where))
            raise error
        if self._backoff:
            log.info("%s: connected again", self.link)
        self._backoff, self._retry_at, self._last_failure = 0.0, float("-inf"), None
        self.connects += 1
        self._client, self._guard = client, _AnswerGuard(client.ctx)
        return client

    async def _connect_error(self, where: str, elapsed: float) -> PollError:
        """Classify a failed connect. pymodbus logs the OSError and returns only False."""
        if self.link.serial:
            return self._serial_error(where)
        if elapsed >= 0.95 * self.timeout:
            return self._connect_timeout(where)
        # It failed fast, so nothing was established; one plain connect recovers the errno.
        try:
            await knock(self.link.address, self.link.port, self.timeout)
        except ConnectError as exc:
            return exc.poll_error(where, _CONNECT_HINTS[exc.reason])
        return PollError(
            "unreachable",
            f"{where}: connect failed once, then worked; the card may be out of "
            "connection slots, check for other Modbus masters",
        )

    def _connect_timeout(self, where: str) -> PollError:
        return PollError(
            "timeout",
            f"{where}: no TCP connection within {self.timeout:g} s; {_CONNECT_HINTS['timeout']}",
        )

    def _serial_error(self, where: str) -> PollError:
        """Open the port once more with pyserial to learn why pymodbus could not."""
        path = self.link.address
        try:
            port = serial.serial_for_url(path, exclusive=True, baudrate=self.link.baudrate)
        except serial.SerialException as exc:
            code = exc.errno
            if code == errno.ENOENT:
                return PollError(
                    "unreachable",
                    f"{where}: serial port {path} does not exist; check the USB-RS485 adapter "
                    "is plugged in (ls /dev/ttyUSB* /dev/serial/by-id/)",
                )
            if code in (errno.EACCES, errno.EPERM):
                return PollError(
                    "permission",
                    f"{where}: no permission to open {path}; add the agent user to group dialout",
                )
            if code is None and "lock" in str(exc).lower():
                return PollError(
                    "busy",
                    f"{where}: {path} is held by another program (ModemManager, another "
                    "agent, a terminal); stop it",
                )
            detail = exc.strerror or str(exc).split(":")[0]
            return PollError("unreachable", f"{where}: cannot open {path} ({detail})")
        port.close()
        return PollError(
            "unreachable",
            f"{where}: opening {path} failed once, then worked; check for other programs "
            "using the port",
        )


def _after_where(message: str, where: str) -> str:
    """The part of a failure message after its `where: ` prefix, to reuse for other units."""
    return message.removeprefix(f"{where}: ")


class GatewayPool:
    """Hands every device on the same gateway the same Gateway."""

    def __init__(self, *, backoff_min: float = 1.0, backoff_max: float = 30.0) -> None:
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self._gateways: dict[tuple[str, str, int], Gateway] = {}

    def gateway(self, link: Link, *, timeout: float, retries: int, pause: float) -> Gateway:
        existing = self._gateways.get(link.key)
        if existing is None:
            existing = self._gateways[link.key] = Gateway(
                link,
                timeout=timeout,
                retries=retries,
                pause=pause,
                backoff_min=self.backoff_min,
                backoff_max=self.backoff_max,
            )
        elif existing.link != link:
            raise ValueError(
                f"{link}: devices on one gateway must use the same transport and serial "
                f"settings ({existing.link.kind} vs {link.kind})"
            )
        else:
            existing.join(timeout=timeout, retries=retries, pause=pause)
        return existing

    async def retire(self, keep: set[tuple[str, str, int]]) -> None:
        """Close and forget every gateway whose key is not in `keep` (no device uses it now)."""
        for key in [k for k in self._gateways if k not in keep]:
            await self._gateways.pop(key).close()

    async def close(self) -> None:
        for gateway in self._gateways.values():
            await gateway.close()
