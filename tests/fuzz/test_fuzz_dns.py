"""Hostile DNS answers: the parser gives an Answer or a DnsFormatError, never anything else, and
a probe ends with a reading within its timeout whatever the resolver sends.

Two seams. The parser alone gets any mutation of a real answer (truncated, bytes flipped,
compression pointers aimed anywhere, garbage). The whole query gets, over a real UDP socket,
a responder (simulators/dns_server.py) that first sends a hostile datagram and then, maybe,
the true answer: the probe must either read the true answer or time out, with a note.
"""

from __future__ import annotations

import asyncio
import struct

from hypothesis import given
from hypothesis import strategies as st

from collectors.dns import Answer, DnsFormatError, Resolver, parse_answer, query
from simulators.dns_server import SimulatedDns, answer_for

from .settings import FUZZ, WIRE

NAME = "probe.test"
TABLE = {NAME: ["192.0.2.1", "192.0.2.2", "2001:db8::1"]}
IDENT = 0x4242


def true_answer(qtype: int = 1) -> bytes:
    question = b"\x05probe\x04test\x00" + struct.pack("!HH", qtype, 1)
    reply = answer_for(struct.pack("!HHHHHH", IDENT, 0x0100, 1, 0, 0, 0) + question, TABLE)
    assert reply is not None
    return reply


mutations = st.one_of(
    st.tuples(st.just("truncate"), st.integers(0, 200)),
    st.tuples(
        st.just("flip"),
        st.lists(st.tuples(st.integers(0, 200), st.integers(1, 255)), min_size=1, max_size=6),
    ),
    st.tuples(st.just("pointer"), st.tuples(st.integers(0, 200), st.integers(0, 200))),
    st.tuples(st.just("garbage"), st.binary(max_size=600)),
)


def mutate(valid: bytes, mutation: tuple[str, object]) -> bytes:
    kind, arg = mutation
    if kind == "truncate":
        return valid[: int(arg) % len(valid)]  # type: ignore[call-overload]
    data = bytearray(valid)
    if kind == "flip":
        for position, xor in arg:  # type: ignore[union-attr]
            data[position % len(data)] ^= xor
        return bytes(data)
    if kind == "pointer":
        position, target = arg  # type: ignore[misc]
        at = position % (len(data) - 1)
        data[at : at + 2] = struct.pack("!H", 0xC000 | target % len(data))  # maybe at itself
        return bytes(data)
    return bytes(arg)  # type: ignore[arg-type]


@FUZZ
@given(st.sampled_from([1, 28]), mutations)
def test_parser_survives_any_mutation(qtype: int, mutation: tuple[str, object]) -> None:
    name_type = "A" if qtype == 1 else "AAAA"
    try:
        answer = parse_answer(mutate(true_answer(qtype), mutation), IDENT, NAME, name_type)
    except DnsFormatError:
        return
    assert isinstance(answer, Answer)
    assert all(isinstance(a, str) for a in answer.addresses)


@WIRE
@given(mutations, st.booleans())
def test_query_ends_with_a_reading_whatever_the_resolver_sends(
    mutation: tuple[str, object], then_true: bool
) -> None:
    async def run():
        server = SimulatedDns(TABLE)

        def hostile(data: bytes) -> list[bytes]:
            (valid,) = server.answers(data)
            return [mutate(valid, mutation), valid] if then_true else [mutate(valid, mutation)]

        server.reply = hostile
        host, port = await server.start("127.0.0.1", 0)
        try:
            return await asyncio.wait_for(
                query(Resolver("r", host, port), NAME, "A", timeout=0.3), 5
            )
        finally:
            await server.stop()

    reading = asyncio.run(run())
    if reading.rcode is None:
        assert reading.note == "no answer within 0.3 s"
    else:  # the true answer, or a mutation that is still a well-formed answer to the question
        assert reading.seconds is not None and reading.seconds < 0.3
