"""Hostile Modbus TCP answers against the real ModbusCollector (pymodbus underneath).

An in-process TCP server answers each request with a drawn frame: garbage, the right answer
with a wrong transaction id, unit id, function, byte count or MBAP length, an exception code,
a truncated frame; after a hostile frame it closes the connection (so a case never waits for a
timeout), after a true one it carries on. Every poll ends with a reading or a PollError.
"""

from __future__ import annotations

import asyncio
import struct
import threading
from collections.abc import Coroutine
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from agent.simulators.ups import SimulatedUps
from collectors.modbus.collector import ModbusCollector
from collectors.modbus.profile import load_profile
from collectors.readings import PollError, UpsReading

from .settings import FUZZ

CASE_SECONDS = 20
MBAP = struct.Struct(">HHHB")

frames = st.one_of(
    st.tuples(st.just("true"), st.none()),
    st.tuples(st.just("garbage"), st.binary(max_size=300)),
    st.tuples(st.just("tid"), st.integers(0, 0xFFFF)),
    st.tuples(st.just("unit"), st.integers(0, 255)),
    st.tuples(st.just("function"), st.integers(0, 255)),
    st.tuples(st.just("byte_count"), st.integers(0, 255)),
    st.tuples(st.just("mbap_length"), st.integers(0, 0xFFFF)),
    st.tuples(st.just("protocol"), st.integers(1, 0xFFFF)),
    st.tuples(st.just("exception"), st.integers(0, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 300)),
    st.tuples(st.just("extra"), st.binary(min_size=1, max_size=50)),
)


def hostile(tid: int, unit: int, function: int, words: list[int], frame: tuple) -> bytes:
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
    tid = arg if kind == "tid" else tid
    unit = arg if kind == "unit" else unit
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

    def __init__(self) -> None:
        self.ups = SimulatedUps("apc-smart-ups")
        # The case's answers, drawn up front in the test's thread (hypothesis draws are not
        # thread-safe); once used up, true answers.
        self.script: list[tuple] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                tid, _, length, unit = MBAP.unpack(await reader.readexactly(MBAP.size))
                pdu = await reader.readexactly(length - 1)
                function, address, count = struct.unpack(">BHH", pdu[:5])
                words = self.ups.register_source(unit, function, address, count)
                if not isinstance(words, list):
                    return
                frame = self.script.pop(0) if self.script else ("true", None)
                writer.write(hostile(tid, unit, function, words, frame))
                await writer.drain()
                if frame[0] != "true":
                    return  # close: the client sees it at once instead of timing out
        except (asyncio.IncompleteReadError, ConnectionError, struct.error):
            return
        finally:
            writer.close()


class Wire:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.gateway = HostileGateway()
        self.port = self.run(self._start())
        profile = load_profile("apc-smart-ups")
        self.collector = ModbusCollector("127.0.0.1", self.port, 1, profile, 0.05, 0)

    async def _start(self) -> int:
        server = await asyncio.start_server(self.gateway.serve, "127.0.0.1", 0)
        return int(server.sockets[0].getsockname()[1])

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        future = asyncio.run_coroutine_threadsafe(
            asyncio.wait_for(coroutine, CASE_SECONDS), self.loop
        )
        return future.result()


_wire: Wire | None = None


@FUZZ
@given(st.lists(frames, min_size=1, max_size=6))
def test_hostile_modbus_answers(script: list[tuple]) -> None:
    global _wire
    if _wire is None:
        _wire = Wire()
    link = _wire
    link.gateway.script = list(script)
    # The gateway backs off reconnects after a failed connect; connects here always work, so
    # the only back-off is the one a dropped connection causes: none.
    link.collector.gateway._retry_at = float("-inf")

    async def go() -> UpsReading | PollError:
        try:
            return await link.collector.poll()
        except PollError as exc:
            return exc

    try:
        outcome = link.run(go())
    finally:
        link.gateway.script = []
    assert isinstance(outcome, UpsReading | PollError)
    if isinstance(outcome, PollError):
        assert outcome.reason and "\n" not in str(outcome)
