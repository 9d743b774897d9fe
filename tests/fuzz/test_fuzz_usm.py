"""Hostile SNMPv3 answers: the poll ends with a reading or a PollError, never another exception.

Like test_fuzz_snmp.py for v2c, two seams. The decoder alone (ber.decode_v3_message and
decode_scoped_pdu) gets any bytes and any mutation of an answer net-snmp sent. On the wire, a
small USM agent (this file's, over the simulated router) answers every request of the real
SnmpCollector over SHA/AES with a hostile datagram first, then the true answer: the hostile one
is either the answer's datagram mutated (it then fails its HMAC or does not decode), or an
answer signed and encrypted properly around a mutated scoped PDU (it authenticates, so it came
from the agent, and must end the poll cleanly).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from collectors.readings import PollError, SnmpReading
from collectors.snmp import ber
from collectors.snmp.client import UsmAuth
from collectors.snmp.collector import SnmpCollector
from collectors.snmp.usm import LocalKeys, local_keys
from collectors.snmp.values import EndOfMibView
from simulators.snmp_router import SimInterface, SimulatedRouter

from .settings import FUZZ, WIRE
from .test_fuzz_snmp import CASE_SECONDS, mutate, mutations

FIXTURE = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "snmpv3" / "netsnmp_authpriv.json").read_text()
)
ANSWER = bytes.fromhex(FIXTURE["users"][1]["response"])  # SHA/AES
EARLIER = bytes.fromhex(FIXTURE["users"][0]["response"])  # MD5/DES
ENGINE_ID = b"\x80\x00\x1f\x88\x04fuzz-engine"
AUTH = UsmAuth("fuzz", "SHA", "fuzz-auth-key", "AES", "fuzz-priv-key")
UNKNOWN_ENGINE_IDS = (1, 3, 6, 1, 6, 3, 15, 1, 1, 4, 0)


def check_values(pdu: ber.Pdu) -> None:
    for oid, value in pdu.varbinds:
        assert all(isinstance(part, int) and part >= 0 for part in oid)
        assert value is None or isinstance(value, int | str | bytes | EndOfMibView)


def read(datagram: bytes) -> None:
    """Decode as far as a datagram goes without keys; BerError is the only way to refuse."""
    try:
        message = ber.decode_v3_message(datagram)
    except ber.BerError:
        return
    assert message.usm.engine_id is not None
    if not message.flags & ber.PRIV_FLAG:
        try:
            check_values(ber.decode_scoped_pdu(message.data)[2])
        except ber.BerError:
            return


@FUZZ
@given(st.binary(max_size=400))
def test_v3_decoder_refuses_or_reads_any_bytes(datagram: bytes) -> None:
    read(datagram)
    with contextlib.suppress(ber.BerError):
        check_values(ber.decode_scoped_pdu(datagram)[2])


@FUZZ
@given(mutations.filter(lambda m: m[0] != "none"))
def test_v3_decoder_refuses_or_reads_any_mutation_of_a_net_snmp_answer(
    mutation: tuple[str, object],
) -> None:
    read(mutate(ANSWER, EARLIER, mutation) or b"")


def _tlv_end(data: bytes, at: int) -> tuple[int, int]:
    """(content start, end) of the definite-length TLV at `at` (the simulator's own answers)."""
    size, start = data[at + 1], at + 2
    if size & 0x80:
        count = size & 0x7F
        size, start = int.from_bytes(data[start : start + count], "big"), start + count
    return start, start + size


class UsmAgent(asyncio.DatagramProtocol):
    """SNMPv3 USM in front of the simulated router: reports its engine to a discovery probe,
    answers an authPriv request with the router's v2c answer's PDU signed and encrypted."""

    def __init__(self, router: SimulatedRouter, script: list[tuple[str, tuple[str, object]]]):
        self.router = router
        self.keys: LocalKeys | None = local_keys(AUTH, ENGINE_ID)
        self.script = script
        self.previous: bytes | None = None
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def seal(self, msg_id: int, flags: int, scoped: bytes) -> bytes:
        assert self.keys is not None
        salt = b""
        if flags & ber.PRIV_FLAG:
            scoped, salt = self.keys.encrypt(scoped, 1, 100)
        zeros = bytes(12 if flags & ber.AUTH_FLAG else 0)
        usm = ber.UsmParameters(ENGINE_ID, 1, 100, b"fuzz" if zeros else b"", zeros, salt)
        wire, at = ber.encode_v3_message(msg_id, 65507, flags, usm, scoped)
        return wire[:at] + self.keys.digest(wire) + wire[at + 12 :] if zeros else wire

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.keys is not None and self.transport is not None
        message = ber.decode_v3_message(data)
        if not message.usm.engine_id:  # discovery: report usmStatsUnknownEngineIDs.0 = 1
            _, _, probe = ber.decode_scoped_pdu(message.data)
            varbind = ber.encode_oid(UNKNOWN_ENGINE_IDS) + b"\x41\x01\x01"
            report = ber.encode_scoped_pdu(ENGINE_ID, b"", _report(probe.request_id, varbind))
            self.transport.sendto(self.seal(message.msg_id, 0, report), addr)
            return
        usm = message.usm
        plain = self.keys.decrypt(message.data, usm.priv, usm.boots, usm.time)
        _, _, request = ber.decode_scoped_pdu(plain)
        v2c = ber.encode_request(
            1, b"fuzz", request.pdu_type, request.request_id, [o for o, _ in request.varbinds],
            request.error_status, request.error_index,
        )  # fmt: skip
        answer = self.router.respond(v2c)
        if answer is None:
            return
        # the PDU of the v2c answer: after its SEQUENCE header, version and community
        start, _ = _tlv_end(answer, 0)
        _, version_end = _tlv_end(answer, start)
        _, community_end = _tlv_end(answer, version_end)
        scoped = ber.encode_scoped_pdu(ENGINE_ID, b"", answer[community_end:])
        valid = self.seal(message.msg_id, 3, scoped)
        where, mutation = self.script.pop(0) if self.script else ("outer", ("none", None))
        if where == "outer":
            hostile = mutate(valid, self.previous, mutation)
        else:
            inner = mutate(scoped, None, mutation)
            hostile = self.seal(message.msg_id, 3, inner) if inner else None
        if hostile:
            self.transport.sendto(hostile, addr)
        self.transport.sendto(valid, addr)
        self.previous = valid


def _report(request_id: int, varbind: bytes) -> bytes:
    """A Report PDU with one varbind (ber.py encodes only NULL-valued request varbinds)."""

    def tlv(tag: int, body: bytes) -> bytes:
        assert len(body) < 128
        return bytes((tag, len(body))) + body

    fields = tlv(0x02, request_id.to_bytes(4, "big", signed=True)) + b"\x02\x01\x00" * 2
    return tlv(ber.REPORT, fields + tlv(0x30, tlv(0x30, varbind)))


ROUTER = SimulatedRouter("fuzz", [SimInterface(f"ether{i}", 1e9, 1e6) for i in range(4)],
                         community="fuzz")  # fmt: skip


@WIRE
@given(st.lists(st.tuples(st.sampled_from(["outer", "inner"]), mutations), max_size=10))
def test_hostile_v3_datagrams_end_in_a_reading_or_a_poll_error(
    script: list[tuple[str, tuple[str, object]]],
) -> None:
    async def go() -> SnmpReading | PollError:
        loop = asyncio.get_running_loop()
        agent = UsmAgent(ROUTER, list(script))
        transport, _ = await loop.create_datagram_endpoint(
            lambda: agent, local_addr=("127.0.0.1", 0)
        )
        port = transport.get_extra_info("sockname")[1]
        collector = SnmpCollector("127.0.0.1", port, version="3", usm=AUTH, timeout=0.05, retries=2)
        try:
            return await collector.poll()
        except PollError as exc:
            return exc
        finally:
            transport.close()

    outcome = asyncio.run(asyncio.wait_for(go(), CASE_SECONDS))
    assert isinstance(outcome, SnmpReading | PollError)
    if not script:
        assert isinstance(outcome, SnmpReading), outcome
