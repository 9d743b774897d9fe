"""Many simulated 24-port switches that cost almost nothing to answer, for the hub benchmark.

    python bench/hub_responder.py --ready R.json --devices 600 [--refresh 10]

Every device is the same SimulatedRouter (simulators/snmp_router.py) behind its own UDP
port, all in one asyncio loop. The agent's requests differ only in their request-id, so a
request is keyed by its bytes without the request-id: the first of a shape is answered by the
simulator (pyasn1, slow), its answer kept with the request-id cut out, and every later one is
the kept answer with the new request-id spliced in (no ASN.1 work). Kept answers expire every
`--refresh` seconds, so counters still move and the agent computes real rates.

Writes the agent's device config to `--ready FILE` once every port listens; on SIGTERM it writes
its own figures (datagrams answered, answers built, CPU seconds) to `--stats FILE`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simulators.snmp_router import SimInterface, SimulatedRouter

COMMUNITY = "bench"
PORTS = 24


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of the value, end of the value) of the BER TLV at `pos`."""
    tag, first = data[pos], data[pos + 1]
    if first < 0x80:
        return tag, pos + 2, pos + 2 + first
    size = first & 0x7F
    length = int.from_bytes(data[pos + 2 : pos + 2 + size], "big")
    return tag, pos + 2 + size, pos + 2 + size + length


def _header(tag: int, length: int) -> bytes:
    if length < 0x80:
        return bytes((tag, length))
    size = (length.bit_length() + 7) // 8
    return bytes((tag, 0x80 | size)) + length.to_bytes(size, "big")


def _split(message: bytes) -> tuple[bytes, int, bytes, bytes]:
    """SNMP message -> (version + community TLVs, PDU tag, request-id TLV, rest of the PDU)."""
    _, body, _ = _tlv(message, 0)
    _, _, version_end = _tlv(message, body)
    _, _, community_end = _tlv(message, version_end)
    pdu_tag, pdu_body, pdu_end = _tlv(message, community_end)
    _, _, request_id_end = _tlv(message, pdu_body)
    return (
        message[body:community_end],
        pdu_tag,
        message[pdu_body:request_id_end],
        message[request_id_end:pdu_end],
    )


class Responder:
    def __init__(self, refresh: float) -> None:
        self.router = SimulatedRouter(
            "hub-switch",
            [SimInterface(f"ge-0/0/{p}", 1e9, 1e5 * p, 2e5 * p) for p in range(1, PORTS + 1)],
            community=COMMUNITY,
        )
        self.refresh = refresh
        self.kept: dict[tuple[int, bytes, bytes, int], tuple[bytes, int, bytes]] = {}
        self.answered = 0
        self.built = 0

    def answer(self, request: bytes) -> bytes | None:
        try:
            prefix, tag, request_id, rest = _split(request)
        except IndexError:
            return None
        key = (tag, prefix, rest, int(time.monotonic() // self.refresh))
        kept = self.kept.get(key)
        if kept is None:
            response = self.router.respond(request)
            if response is None:
                return None
            answer_prefix, answer_tag, _, answer_rest = _split(response)
            if len(self.kept) > 10_000:
                self.kept.clear()  # old generations
            kept = self.kept[key] = (answer_prefix, answer_tag, answer_rest)
            self.built += 1
        self.answered += 1
        answer_prefix, answer_tag, answer_rest = kept
        pdu = _header(answer_tag, len(request_id) + len(answer_rest)) + request_id + answer_rest
        return _header(0x30, len(answer_prefix) + len(pdu)) + answer_prefix + pdu


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, responder: Responder) -> None:
        self.responder = responder
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        answer = self.responder.answer(data)
        if answer is not None:
            self.transport.sendto(answer, addr)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ready", type=Path, required=True)
    parser.add_argument("--stats", type=Path)
    parser.add_argument("--devices", type=int, required=True)
    parser.add_argument("--interval", type=float, default=30)
    parser.add_argument("--refresh", type=float, default=10)
    args = parser.parse_args()
    responder = Responder(args.refresh)
    loop = asyncio.get_running_loop()
    transports, snmp = [], []
    for n in range(args.devices):
        host = f"127.0.{1 + n // 250}.{1 + n % 250}"
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(responder), local_addr=(host, 0)
        )
        transports.append(transport)
        port = transport.get_extra_info("sockname")[1]
        snmp.append({"name": f"hub-{n + 1:04d}", "address": f"{host}:{port}",
                     "community": COMMUNITY, "interval": args.interval})  # fmt: skip
    stopped = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    partial = args.ready.with_suffix(".tmp")
    partial.write_text(json.dumps({"snmp": snmp}))
    partial.rename(args.ready)
    await stopped.wait()
    for transport in transports:
        transport.close()
    if args.stats is not None:
        times = os.times()
        args.stats.write_text(json.dumps({"answered": responder.answered,
                                          "built": responder.built,
                                          "cpu_seconds": times.user + times.system}))  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
