"""A tiny authoritative DNS responder for the demo and the fuzz test, over UDP::

    dns = SimulatedDns({"probe.test": ["192.0.2.10", "2001:db8::10"]})
    host, port = await dns.start("127.0.0.1", 0)

It answers A and AAAA questions for its names from the table, NXDOMAIN for other names, and
NOTIMP for other types; `reply` may be replaced to send other datagrams (hostile answers).
The codec it answers is the agent's own (collectors/dns.py), read back from the wire here
independently: header, one question, records pointing at it by compression.
"""

from __future__ import annotations

import asyncio
import ipaddress
import struct
from collections.abc import Callable

_TYPES = {1: 4, 28: 6}  # A, AAAA: the IP version of their records
NOERROR, NXDOMAIN, NOTIMP = 0, 3, 4


def answer_for(query: bytes, table: dict[str, list[str]]) -> bytes | None:
    """The response to a query datagram, or None for something that is not a question."""
    if len(query) < 12:
        return None
    ident, flags = struct.unpack_from("!HH", query)
    offset, labels = 12, []
    while offset < len(query) and query[offset]:
        labels.append(query[offset + 1 : offset + 1 + query[offset]].decode("ascii", "replace"))
        offset += 1 + query[offset]
    question = query[12 : offset + 5]
    if len(question) < offset + 5 - 12:
        return None
    qtype = struct.unpack_from("!H", query, offset + 1)[0]
    name = ".".join(labels).lower()
    records: list[bytes] = []
    rcode = NXDOMAIN if name not in table else NOERROR
    if qtype not in _TYPES:
        rcode = NOTIMP
    elif name in table:
        for text in table[name]:
            ip = ipaddress.ip_address(text)
            if ip.version == _TYPES[qtype]:
                rdata = ip.packed
                records.append(b"\xc0\x0c" + struct.pack("!HHIH", qtype, 1, 60, len(rdata)) + rdata)
    # QR, AA, the client's RD echoed, RA
    out_flags = 0x8000 | 0x0400 | (flags & 0x0100) | 0x0080 | rcode
    header = struct.pack("!HHHHHH", ident, out_flags, 1, len(records), 0, 0)
    return header + question + b"".join(records)


class SimulatedDns(asyncio.DatagramProtocol):
    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = {name.lower(): addresses for name, addresses in table.items()}
        self.reply: Callable[[bytes], list[bytes]] = self.answers
        self.queries = 0
        self._transport: asyncio.DatagramTransport | None = None

    def answers(self, query: bytes) -> list[bytes]:
        """The datagrams sent back for one query: the true answer, if it is a question."""
        response = answer_for(query, self.table)
        return [] if response is None else [response]

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=(host, port))
        self._transport = transport
        return host, transport.get_extra_info("sockname")[1]

    async def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queries += 1
        for response in self.reply(data):
            if self._transport is not None:
                self._transport.sendto(response, addr)
