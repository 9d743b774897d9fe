"""Hostile Modbus answers against the real ModbusCollector (pymodbus underneath).

An in-process TCP server answers each request with a drawn frame, in Modbus TCP (MBAP) or as RTU
frames over TCP (a serial device server): garbage, the right answer with a wrong transaction id,
unit id, function, byte count, MBAP length or CRC, an exception code, a truncated frame, bytes
after a true frame; after a hostile frame it closes the connection (so a case never waits for a
timeout), after a true one it carries on. Every poll ends with a reading or a PollError, and no
library logs anything on the way: pymodbus 3.16 raised inside asyncio's data_received() on some
of these frames, and asyncio logged that with a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collectors.modbus.collector import ModbusCollector
from collectors.modbus.profile import load_profile
from collectors.modbus.transport import Gateway, Link
from collectors.readings import PollError, UpsReading
from simulators.modbus_server import with_crc
from simulators.ups import SimulatedUps

from .settings import FUZZ

CASE_SECONDS = 20
MBAP = struct.Struct(">HHHB")
OUR_LOGGERS = ("collectors.", "agent.")

frames = st.one_of(
    st.tuples(st.just("true"), st.none()),
    st.tuples(st.just("garbage"), st.binary(max_size=300)),
    st.tuples(st.just("tid"), st.integers(0, 0xFFFF)),
    st.tuples(st.just("unit"), st.integers(0, 255)),
    st.tuples(st.just("function"), st.integers(0, 255)),
    st.tuples(st.just("byte_count"), st.integers(0, 255)),
    # short lengths cut the PDU, the frame pymodbus could not decode; any length otherwise
    st.tuples(st.just("mbap_length"), st.integers(0, 8) | st.integers(0, 0xFFFF)),
    st.tuples(st.just("protocol"), st.integers(1, 0xFFFF)),
    st.tuples(st.just("exception"), st.integers(0, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 300)),
    st.tuples(st.just("extra"), st.binary(min_size=1, max_size=50)),
    st.tuples(st.just("crc"), st.integers(0, 0xFFFF)),
)


def hostile(
    framing: str, tid: int, unit: int, function: int, words: list[int], frame: tuple
) -> bytes:
    """The true answer to a read, spoiled as `frame` says; MBAP or RTU framing."""
    kind, arg = frame
    pdu = struct.pack(f">BB{len(words)}H", function, 2 * len(words), *words)
    if kind == "garbage":
        return bytes(arg)
    if kind == "function":
        pdu = bytes((arg,)) + pdu[1:]
    if kind == "byte_count":
        pdu = pdu[:1] + bytes((arg,)) + pdu[2:]
    if kind == "exception":
        pdu = bytes((function | 0x80, arg))
    unit = arg if kind == "unit" else unit
    if framing == "rtu":
        adu = with_crc(bytes((unit,)) + pdu)
        if kind == "crc":
            adu = adu[:-2] + struct.pack("<H", arg if arg != adu[-2] | adu[-1] << 8 else arg ^ 1)
    else:
        tid = arg if kind == "tid" else tid
        length = arg if kind == "mbap_length" else len(pdu) + 1
        protocol = arg if kind == "protocol" else 0
        adu = struct.pack(">HHH", tid, protocol, length) + bytes((unit,)) + pdu
    if kind == "truncate":
        return adu[: arg % max(len(adu), 1)]
    if kind == "extra":
        return adu + bytes(arg)
    return adu


class HostileGateway:
    """Serves a SimulatedUps's registers, the answers from the case's script."""

    def __init__(self, framing: str) -> None:
        self.framing = framing
        self.ups = SimulatedUps("apc-smart-ups")
        # The case's answers, drawn up front in the test's thread (hypothesis draws are not
        # thread-safe); once used up, true answers.
        self.script: list[tuple] = []
        self.close_after_hostile = True

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                if self.framing == "rtu":
                    unit, function, address, count = struct.unpack(
                        ">BBHH", (await reader.readexactly(8))[:6]
                    )
                    tid = 0
                else:
                    tid, _, length, unit = MBAP.unpack(await reader.readexactly(MBAP.size))
                    pdu = await reader.readexactly(length - 1)
                    function, address, count = struct.unpack(">BHH", pdu[:5])
                words = self.ups.register_source(unit, function, address, count)
                if not isinstance(words, list):
                    return
                frame = self.script.pop(0) if self.script else ("true", None)
                writer.write(hostile(self.framing, tid, unit, function, words, frame))
                await writer.drain()
                if frame[0] != "true" and self.close_after_hostile:
                    return  # close: the client sees it at once instead of timing out
        except (asyncio.IncompleteReadError, ConnectionError, struct.error):
            return
        finally:
            writer.close()


class Wire:
    def __init__(self, framing: str) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.gateway = HostileGateway(framing)
        self.port = self.run(self._start())
        kind = "rtu-over-tcp" if framing == "rtu" else "tcp"
        link = Gateway(Link(kind, "127.0.0.1", self.port), timeout=0.05, retries=0)
        self.collector = ModbusCollector.on_gateway(link, 1, load_profile("apc-smart-ups"))

    async def _start(self) -> int:
        server = await asyncio.start_server(self.gateway.serve, "127.0.0.1", 0)
        return int(server.sockets[0].getsockname()[1])

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        future = asyncio.run_coroutine_threadsafe(
            asyncio.wait_for(coroutine, CASE_SECONDS), self.loop
        )
        return future.result()

    def poll(self, script: list[tuple]) -> UpsReading | PollError:
        self.gateway.script = list(script)
        # The gateway backs off reconnects after a failed connect; connects here always work, so
        # the only back-off is the one a dropped connection causes: none.
        self.collector.gateway._retry_at = float("-inf")

        async def go() -> UpsReading | PollError:
            try:
                return await self.collector.poll()
            except PollError as exc:
                return exc

        try:
            return self.run(go())
        finally:
            self.gateway.script = []


_wires: dict[str, Wire] = {}


def wire(framing: str) -> Wire:
    if framing not in _wires:
        _wires[framing] = Wire(framing)
    return _wires[framing]


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def log_stays_ours() -> Iterator[None]:
    """Fails if a library logs, or anything logs a traceback, inside the block.

    pymodbus' own logger is muted the way `erozgar-agent run` mutes it (agent/cli.py): its lines
    about each dropped frame repeat what the poll's reason says. asyncio's is not.
    """
    recorder = Recorder()
    root, modbus = logging.getLogger(), logging.getLogger("pymodbus")
    level = modbus.level
    modbus.setLevel(logging.CRITICAL)
    root.addHandler(recorder)
    try:
        yield
    finally:
        root.removeHandler(recorder)
        modbus.setLevel(level)
    foreign = [
        f"{r.name} {r.levelname}: {r.getMessage()}"
        for r in recorder.records
        if not r.name.startswith(OUR_LOGGERS) or r.exc_info
    ]
    assert not foreign, foreign


@FUZZ
@given(st.sampled_from(["tcp", "rtu"]), st.lists(frames, min_size=1, max_size=6))
def test_hostile_modbus_answers(framing: str, script: list[tuple]) -> None:
    link = wire(framing)
    with log_stays_ours():
        outcome = link.poll(script)
    assert isinstance(outcome, UpsReading | PollError)
    if isinstance(outcome, PollError):
        assert outcome.reason and "\n" not in str(outcome)


@pytest.mark.parametrize(
    ("framing", "frame", "says"),
    [
        ("tcp", ("mbap_length", 2), "was not a valid Modbus frame"),  # asyncio's traceback
        ("tcp", ("function", 0x63), "was not a valid Modbus frame"),  # asyncio's traceback
        ("tcp", ("function", 4), "was function 4, not 3"),  # was taken for the holding words
        ("rtu", ("crc", 0), "was not a valid Modbus frame (59 bytes: 01 03 36"),  # was timeout
        ("rtu", ("truncate", 40), "was not a valid Modbus frame (40 bytes: 01 03 36"),
    ],
)
def test_malformed_frames_are_one_reason_and_no_library_log(
    framing: str, frame: tuple, says: str
) -> None:
    link = wire(framing)
    link.gateway.close_after_hostile = False  # an answer cut short must not look like a reset
    try:
        with log_stays_ours():
            outcome = link.poll([frame])
            after = link.poll([])
    finally:
        link.gateway.close_after_hostile = True
    assert isinstance(outcome, PollError)
    assert outcome.reason == "malformed"
    assert says in str(outcome)
    assert str(outcome).startswith("127.0.0.1:")  # names the gateway and unit
    assert isinstance(after, UpsReading)  # and the next poll, on a new connection, reads
