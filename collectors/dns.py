"""One DNS question to one resolver, timed: how long the answer took, its rcode, what it held.

    reading = await query(Resolver("isp", "203.0.113.53"), "example.com", "A", timeout=2)
    reading.seconds, reading.rcode, reading.addresses   # 0.012, 0, ("93.184.215.14",)

The codec is our own (a query builder and an answer parser, ~100 lines over struct), not
dnspython: a probe asks one question of type A or AAAA and needs only the header, the rcode
and the answer records of that type. dnspython 2.7.0 is ~29,800 lines; importing the modules a
probe would use (message, query, asyncquery, rdatatype) raised the agent's peak RSS by 8.2-8.3
MB and took 64-135 ms, against 1.4 MB and 9-27 ms for this module with collectors.probe (three
alternating rounds, VmHWM before and after the import, Python 3.11). Our sockets are opened
by the link's Binding (collectors/probe.py) like every other probe's, so a query leaves by the
link it measures. The parser is fuzzed (tests/fuzz/test_fuzz_dns.py): any bytes give an
Answer or a DnsFormatError.

UDP first; a truncated answer (TC) is asked again over TCP, as a stub resolver does. The time
runs from the first datagram to the answer that settles the question, the TCP retry included.
Stateless: agent/checks/link_quality.py counts queries and failures.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
import struct
import time
from dataclasses import dataclass
from typing import Literal

from .probe import UNBOUND, Binding, reason

QType = Literal["A", "AAAA"]
QTYPES: dict[str, int] = {"A": 1, "AAAA": 28}
_CLASS_IN = 1
_HEADER = struct.Struct("!HHHHHH")  # id, flags, qdcount, ancount, nscount, arcount
_RR = struct.Struct("!HHIH")  # type, class, ttl, rdlength
_QR, _TC, _RD = 0x8000, 0x0200, 0x0100
_UDP_BYTES = 4096
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


class DnsFormatError(ValueError):
    """The bytes are not a DNS answer to our question."""


@dataclass(frozen=True, slots=True)
class Answer:
    ident: int
    rcode: int
    truncated: bool
    addresses: tuple[str, ...]  # the A or AAAA records of the question's type, in order


@dataclass(frozen=True, slots=True)
class Resolver:
    name: str
    address: str  # an IP address (validated in the config)
    port: int = 53


@dataclass(frozen=True, slots=True)
class DnsReading:
    """One question to one resolver. `rcode` None: no answer came (see `note`)."""

    resolver: str
    address: str
    qtype: QType
    seconds: float | None  # first datagram to the settling answer
    rcode: int | None
    addresses: tuple[str, ...]
    transport: Literal["udp", "tcp"]
    note: str = ""

    @property
    def ok(self) -> bool:
        """The resolver resolved the name (NOERROR; no record of the type is still an answer)."""
        return self.rcode == 0

    @property
    def rcode_name(self) -> str:
        return "" if self.rcode is None else RCODES.get(self.rcode, f"RCODE{self.rcode}")


def encode_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        raw = label.encode("ascii")
        if not 0 < len(raw) < 64:
            raise ValueError(f"{name!r}: a label must be 1 to 63 characters")
        out += bytes([len(raw)]) + raw
    return out + b"\0"


def build_query(ident: int, name: str, qtype: QType) -> bytes:
    """A recursive query (RD set) for `name` of type `qtype`, class IN."""
    header = _HEADER.pack(ident, _RD, 1, 0, 0, 0)
    return header + encode_name(name) + struct.pack("!HH", QTYPES[qtype], _CLASS_IN)


def read_name(data: bytes, offset: int) -> tuple[str, int]:
    """(name, offset after it) at `offset`, following compression pointers backwards only, so a
    hostile message cannot loop."""
    labels: list[str] = []
    end = None
    floor = offset
    while True:
        if offset >= len(data):
            raise DnsFormatError("a name runs past the end of the message")
        length = data[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(data):
                raise DnsFormatError("a compression pointer is cut short")
            target = ((length & 0x3F) << 8) | data[offset + 1]
            if target >= floor:
                raise DnsFormatError("a compression pointer does not point backwards")
            end = offset + 2 if end is None else end
            offset = floor = target
            continue
        if length & 0xC0:
            raise DnsFormatError(f"label type {length >> 6} is not supported")
        if length == 0:
            return ".".join(labels), offset + 1 if end is None else end
        label = data[offset + 1 : offset + 1 + length]
        if len(label) < length:
            raise DnsFormatError("a label runs past the end of the message")
        labels.append(label.decode("ascii", "replace"))
        offset += 1 + length


def parse_answer(data: bytes, ident: int, name: str, qtype: QType) -> Answer:
    """The answer to our question in `data`; DnsFormatError if it is not one."""
    if len(data) < _HEADER.size:
        raise DnsFormatError(f"{len(data)} bytes are too short for a DNS header")
    got_id, flags, qdcount, ancount, _, _ = _HEADER.unpack_from(data)
    if got_id != ident or not flags & _QR:
        raise DnsFormatError("not an answer to this query (id or QR bit)")
    rcode, truncated = flags & 0x000F, bool(flags & _TC)
    offset = _HEADER.size
    if qdcount:  # a FORMERR may come without the question
        asked, offset = read_name(data, offset)
        if offset + 4 > len(data):
            raise DnsFormatError("the question is cut short")
        got_type, _ = struct.unpack_from("!HH", data, offset)
        offset += 4
        if asked.lower() != name.rstrip(".").lower() or got_type != QTYPES[qtype]:
            raise DnsFormatError(f"the answer is to another question ({asked!r} type {got_type})")
    addresses: list[str] = []
    size = 4 if qtype == "A" else 16
    for _ in range(ancount):
        if truncated and offset >= len(data):
            break  # a truncated answer may stop mid-section; TCP will tell the rest
        _, offset = read_name(data, offset)
        if offset + _RR.size > len(data):
            raise DnsFormatError("a record header is cut short")
        rtype, rclass, _, rdlength = _RR.unpack_from(data, offset)
        offset += _RR.size
        rdata = data[offset : offset + rdlength]
        if len(rdata) < rdlength:
            raise DnsFormatError("a record's data is cut short")
        offset += rdlength
        if rtype == QTYPES[qtype] and rclass == _CLASS_IN:  # CNAMEs on the way are skipped
            if rdlength != size:
                raise DnsFormatError(f"a {qtype} record of {rdlength} bytes")
            addresses.append(str(ipaddress.ip_address(rdata)))
    return Answer(got_id, rcode, truncated, tuple(addresses))


async def query(
    resolver: Resolver,
    name: str,
    qtype: QType,
    *,
    timeout: float = 2.0,
    binding: Binding = UNBOUND,
) -> DnsReading:
    """Ask `resolver` for `name`'s `qtype` records; silence, refusal and garbage are results
    (`rcode` None and a note). Raises PollError only when the socket cannot be bound."""
    ident = int.from_bytes(os.urandom(2), "big")
    packet = build_query(ident, name, qtype)
    started = time.perf_counter()
    transport: Literal["udp", "tcp"] = "udp"
    answer, note = None, ""
    try:
        async with asyncio.timeout(timeout):
            answer, note = await _udp(resolver, packet, ident, name, qtype, binding)
            if answer is not None and answer.truncated:
                transport = "tcp"
                answer, note = await _tcp(resolver, packet, ident, name, qtype, binding)
    except TimeoutError:
        answer, note = None, note or f"no answer within {timeout:g} s"
    seconds = time.perf_counter() - started
    if answer is None:
        return DnsReading(resolver.name, resolver.address, qtype, None, None, (), transport, note)
    return DnsReading(
        resolver.name,
        resolver.address,
        qtype,
        seconds,
        answer.rcode,
        answer.addresses,
        transport,
        note,
    )


async def _udp(
    resolver: Resolver, packet: bytes, ident: int, name: str, qtype: QType, binding: Binding
) -> tuple[Answer | None, str]:
    """The first datagram that answers our question; others (late, another query's, garbage)
    are skipped: the timeout ends the wait."""
    loop = asyncio.get_running_loop()
    sock = binding.socket(resolver.address, "udp")
    try:
        # Connected: the kernel drops datagrams from anyone else and reports a refusal (ICMP
        # port unreachable) as an error on the next receive.
        await loop.sock_connect(sock, (resolver.address, resolver.port))
        await loop.sock_sendall(sock, packet)
        while True:
            data = await loop.sock_recv(sock, _UDP_BYTES)
            with contextlib.suppress(DnsFormatError):
                return parse_answer(data, ident, name, qtype), ""
    except OSError as exc:
        return None, reason(exc)
    finally:
        sock.close()


async def _tcp(
    resolver: Resolver, packet: bytes, ident: int, name: str, qtype: QType, binding: Binding
) -> tuple[Answer | None, str]:
    loop = asyncio.get_running_loop()
    sock = binding.socket(resolver.address, "tcp")
    try:
        await loop.sock_connect(sock, (resolver.address, resolver.port))
        await loop.sock_sendall(sock, struct.pack("!H", len(packet)) + packet)
        (length,) = struct.unpack("!H", await _recv_exactly(sock, 2))
        data = await _recv_exactly(sock, length)
        return parse_answer(data, ident, name, qtype), ""
    except DnsFormatError as exc:
        return None, f"unusable answer over TCP: {exc}"
    except OSError as exc:
        return None, f"TCP retry after a truncated answer: {reason(exc)}"
    finally:
        sock.close()


async def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    loop = asyncio.get_running_loop()
    data = b""
    while len(data) < size:
        chunk = await loop.sock_recv(sock, size - len(data))
        if not chunk:
            raise ConnectionResetError(0, "the resolver closed the connection")
        data += chunk
    return data
