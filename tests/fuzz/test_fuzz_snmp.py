"""Hostile SNMP answers: the poll ends with a reading or a PollError, never a crash or a hang.

Two seams. The walk layer (SnmpClient over a fake Transport) gets varbind lists of any shape:
wrong types, OIDs out of order, repeating or outside the table, huge answers, nothing at all.
The raw BER path gets real datagrams through the codec (collectors/snmp/ber.py): an in-process
UDP responder answers every request of the real SnmpCollector first with a hostile datagram
(truncated, bytes flipped, lengths made huge, another request's answer, garbage) and then with
the true answer; and the decoder alone gets any mutation of a real answer.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Sequence
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from collectors.readings import PollError, SnmpReading
from collectors.snmp import ber
from collectors.snmp.client import SnmpClient
from collectors.snmp.collector import SnmpCollector
from collectors.snmp.values import (
    END_OF_MIB_VIEW,
    Counter64,
    EndOfMibView,
    Oid,
    Oidt,
    VarBind,
    parse_oid,
)
from simulators.snmp_router import SimInterface, SimulatedRouter

from .settings import FUZZ, WIRE

IF_TABLE = (1, 3, 6, 1, 2, 1, 2, 2, 1)
COLUMNS = [f"{'.'.join(map(str, IF_TABLE))}.{c}" for c in (2, 10, 16)]
CASE_SECONDS = 20  # a case that takes longer is a hang

oids = st.one_of(
    st.tuples(st.sampled_from([2, 10, 16, 3]), st.integers(0, 2**32)).map(
        lambda t: (*IF_TABLE, *t)
    ),
    st.lists(st.integers(0, 2**32 - 1), min_size=0, max_size=12).map(tuple),
)
values = st.one_of(
    st.integers(0, 2**64 - 1).map(Counter64),
    st.integers(-(2**31), 2**32 - 1),
    st.text(max_size=100),
    st.binary(max_size=300),
    st.just(END_OF_MIB_VIEW),
    st.just(Oid("1.3.6")),
    st.none(),
)
answers = st.lists(st.lists(st.tuples(oids, values), max_size=80), min_size=1, max_size=6)


class ScriptedTransport:
    """Answers GETBULKs from a script, then an end of MIB; GETs with the script's first list."""

    def __init__(self, script: list[list[VarBind]]) -> None:
        self._script = list(script)

    async def discover_engine_id(self) -> bytes:
        return b"\x80\x00\x1f\x88\x04test"

    def packets_sent(self) -> int:
        return 0

    async def get(self, oids: Sequence[Oidt]) -> list[VarBind]:
        return self._script[0] if self._script else []

    async def bulk(self, oids: Sequence[Oidt], max_repetitions: int) -> list[VarBind]:
        if self._script:
            return self._script.pop(0)
        return [(oid, END_OF_MIB_VIEW) for oid in oids]


@FUZZ
@given(answers)
def test_walk_layer_survives_any_varbinds(script: list[list[VarBind]]) -> None:
    async def go() -> None:
        client = SnmpClient(ScriptedTransport(script), max_requests=50)
        try:
            walked = await client.walk_columns(COLUMNS, max_repetitions=25)
            got = await client.get(["1.3.6.1.2.1.1.3.0"])
        except PollError:
            return
        assert set(walked) == set(COLUMNS)
        assert all(isinstance(v, int | str | bytes) for v in got.values())

    asyncio.run(asyncio.wait_for(go(), CASE_SECONDS))


def _huge_length(datagram: bytes, at: int) -> bytes:
    """Replace the length byte after a tag at `at` with a 4-byte length near 4 GB."""
    at = min(at, max(len(datagram) - 2, 0))
    return datagram[: at + 1] + b"\x84\xff\xff\xff\xf0" + datagram[at + 2 :]


mutations = st.one_of(
    st.tuples(st.just("truncate"), st.integers(0, 1500)),
    st.tuples(
        st.just("flip"),
        st.lists(st.tuples(st.integers(0, 1500), st.integers(1, 255)), min_size=1, max_size=8),
    ),
    st.tuples(st.just("huge_length"), st.integers(0, 60)),
    st.tuples(st.just("stale"), st.none()),  # an earlier answer: wrong request id
    st.tuples(st.just("garbage"), st.binary(max_size=600)),
    st.tuples(st.just("none"), st.none()),
)


def mutate(valid: bytes, previous: bytes | None, mutation: tuple[str, object]) -> bytes | None:
    kind, arg = mutation
    if kind == "truncate":
        return valid[: int(arg) % max(len(valid), 1)]  # type: ignore[call-overload]
    if kind == "flip":
        data = bytearray(valid)
        for position, xor in arg:  # type: ignore[union-attr]
            data[position % len(data)] ^= xor
        return bytes(data)
    if kind == "huge_length":
        return _huge_length(valid, int(arg))  # type: ignore[call-overload]
    if kind == "stale":
        return previous
    if kind == "garbage":
        return bytes(arg)  # type: ignore[arg-type]
    return None


class HostileResponder(asyncio.DatagramProtocol):
    """Answers like the router, each answer preceded by a hostile datagram from the script."""

    def __init__(self, router: SimulatedRouter) -> None:
        self.router = router
        # The case's mutations, drawn up front in the test's thread (hypothesis draws are not
        # thread-safe); once used up, true answers only.
        self.script: list[tuple[str, object]] = []
        self.previous: bytes | None = None
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        valid = self.router.respond(data)
        if valid is None or self.transport is None:
            return
        mutation = self.script.pop(0) if self.script else ("none", None)
        hostile = mutate(valid, self.previous, mutation)
        if hostile:
            self.transport.sendto(hostile, addr)
        self.transport.sendto(valid, addr)
        self.previous = valid


class Wire:
    """One event loop in a thread with the responder, for every case. The test thread waits on
    each case, so the responder's draws never run concurrently with hypothesis."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        router = SimulatedRouter("fuzz", [SimInterface(f"ether{i}", 1e9, 1e6) for i in range(4)],
                                 community="fuzz")  # fmt: skip
        self.responder = HostileResponder(router)
        self.port = self.run(self._start())

    async def _start(self) -> int:
        transport, _ = await self.loop.create_datagram_endpoint(
            lambda: self.responder, local_addr=("127.0.0.1", 0)
        )
        return int(transport.get_extra_info("sockname")[1])

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        future = asyncio.run_coroutine_threadsafe(
            asyncio.wait_for(coroutine, CASE_SECONDS), self.loop
        )
        return future.result()


_wire: Wire | None = None


def wire() -> Wire:
    global _wire
    if _wire is None:
        _wire = Wire()
    return _wire


@WIRE
@given(st.lists(mutations, min_size=1, max_size=12))
def test_raw_datagrams_through_the_codec(script: list[tuple[str, object]]) -> None:
    link = wire()
    link.responder.script = list(script)
    collector = SnmpCollector("127.0.0.1", link.port, "fuzz", timeout=0.05, retries=2)

    async def go() -> SnmpReading | PollError:
        try:
            return await collector.poll()
        except PollError as exc:
            return exc

    try:
        outcome = link.run(go())
    finally:
        link.responder.script = []
    assert isinstance(outcome, SnmpReading | PollError)


_ROUTER = SimulatedRouter("fuzz", [SimInterface(f"ether{i}", 1e9, 1e6) for i in range(4)],
                          community="fuzz")  # fmt: skip
_REQUEST = ber.encode_request(
    1, b"fuzz", ber.GETBULK, 7, [parse_oid(column) for column in COLUMNS], 0, 10
)
# Built once: the simulator encodes with pyasn1, far slower than the decoder under test.
_ANSWER, _EARLIER_ANSWER = _ROUTER.respond(_REQUEST), _ROUTER.respond(_REQUEST)


@FUZZ
@given(mutations.filter(lambda m: m[0] != "none"))
def test_decoder_refuses_or_reads_any_mutation_of_a_real_answer(
    mutation: tuple[str, object],
) -> None:
    assert _ANSWER is not None
    assert len(ber.decode_message(_ANSWER).varbinds) == 30
    datagram = mutate(_ANSWER, _EARLIER_ANSWER, mutation) or b""
    try:
        message = ber.decode_message(datagram)
    except ber.BerError:
        return
    for oid, value in message.varbinds:
        assert all(isinstance(part, int) and part >= 0 for part in oid)
        assert value is None or isinstance(value, int | str | bytes | EndOfMibView)
