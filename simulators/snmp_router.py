"""A simulated router that answers SNMP v2c GET, GETNEXT and GETBULK on asyncio UDP.

    router = SimulatedRouter(
        name="core-router",
        interfaces=[SimInterface("ether1", speed_bps=1e9, rx_bps=80e6, tx_bps=20e6,
                                 alias="PTCL fibre")],
        community="public",
    )
    host, port = await router.start()      # ("127.0.0.1", 40123)
    ...                                    # snmpwalk -v2c -c public 127.0.0.1:40123 1.3.6.1.2.1.2
    router.truth("ether1")                 # (in_octets, out_octets) since boot, never wrapped
    await router.stop()

Octet counters grow at the configured bit rates over `clock()` time, so a test that drives the
clock knows the exact answer. Built on pysnmp's low-level message API (no MIB machinery), not
on collectors/snmp/ber.py: the collector's own codec is then checked against an independent one.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import cast

from pyasn1.codec.ber import decoder, encoder
from pyasn1.error import PyAsn1Error
from pysnmp.proto import api

from collectors.snmp.values import Oidt

log = logging.getLogger(__name__)

P = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]

SYSTEM = (1, 3, 6, 1, 2, 1, 1)
IF_NUMBER = (1, 3, 6, 1, 2, 1, 2, 1, 0)
IF_ENTRY = (1, 3, 6, 1, 2, 1, 2, 2, 1)
IFX_ENTRY = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)
ETHERNET_CSMACD = 6  # IANAifType
WOBBLE_PERIOD = 60.0  # seconds


@dataclass
class SimInterface:
    """One port. Rates are bit/s; counters are derived from them, never stored."""

    name: str
    speed_bps: float = 1e9
    rx_bps: float = 0.0
    tx_bps: float = 0.0
    alias: str = ""
    oper_up: bool = True
    admin_up: bool = True
    in_errors: int = 0
    out_errors: int = 0
    in_discards: int = 0
    out_discards: int = 0


@dataclass
class _Port:
    iface: SimInterface
    in_base: float = 0.0  # octets counted before `since` (at earlier rates)
    out_base: float = 0.0
    since: float = 0.0


class SimulatedRouter:
    """Serves SNMPv2-MIB system, IF-MIB ifNumber, ifTable and ifXTable for `interfaces`.

    `hc_counters=False` drops ifHCInOctets/ifHCOutOctets (an old device: 32-bit only).
    `wobble` (0..1) makes rates swing by that fraction over a 60 s sine, still deterministic.
    """

    def __init__(
        self,
        name: str = "core-router",
        interfaces: Iterable[SimInterface] = (),
        *,
        community: str = "public",
        hc_counters: bool = True,
        sys_object_id: str = "1.3.6.1.4.1.14988.1",
        sys_descr: str = "RouterOS CCR2004-1G-12S+2XS (simulated)",
        wobble: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        uptime: float = 0.0,  # seconds the device has been up when the simulator starts
    ) -> None:
        self.name = name
        self.community = community
        self.hc_counters = hc_counters
        self.sys_object_id = tuple(int(part) for part in sys_object_id.split("."))
        self.sys_descr = sys_descr
        self.wobble = wobble
        self._clock = clock
        self._boot = clock() - uptime
        self._ports = {i.name: _Port(i, since=self._boot) for i in interfaces}
        self._transport: asyncio.DatagramTransport | None = None
        # Fault knobs for tests: silent (a dead or unplugged device), or answers `delay` s late.
        self.answering = True
        self.delay = 0.0

    def __repr__(self) -> str:
        return f"SimulatedRouter({self.name!r}, interfaces={list(self._ports)})"

    # --- what tests steer and check -------------------------------------------------------

    def restart(self) -> None:
        """A reboot after a power cut: sysUpTime and every counter start again from 0."""
        self._boot = self._clock()
        for port in self._ports.values():
            port.in_base = port.out_base = 0.0
            port.since = self._boot

    def set_rates(self, ifname: str, rx_bps: float, tx_bps: float) -> None:
        port = self._ports[ifname]
        now = self._clock()
        port.in_base, port.out_base = self._octets(port, now)
        port.since = now
        port.iface.rx_bps, port.iface.tx_bps = rx_bps, tx_bps

    def set_oper(self, ifname: str, up: bool) -> None:
        self._ports[ifname].iface.oper_up = up

    def truth(self, ifname: str) -> tuple[int, int]:
        """(in, out) octets since the last (re)boot, as 64-bit counters would show them."""
        in_octets, out_octets = self._octets(self._ports[ifname], self._clock())
        return int(in_octets), int(out_octets)

    def _octets(self, port: _Port, now: float) -> tuple[float, float]:
        elapsed = now - port.since
        # d/dt of this is 1 + wobble*cos(...) >= 0 for wobble <= 1: counters never go back.
        swing = self.wobble * WOBBLE_PERIOD / (2 * math.pi)
        seconds = elapsed + swing * math.sin(2 * math.pi * elapsed / WOBBLE_PERIOD)
        return (
            port.in_base + port.iface.rx_bps / 8 * seconds,
            port.out_base + port.iface.tx_bps / 8 * seconds,
        )

    # --- the MIB, computed per request ----------------------------------------------------

    def table(self) -> list[tuple[Oidt, object]]:
        """Every (OID, value) the agent serves right now, sorted by OID."""
        now = self._clock()
        rows: list[tuple[Oidt, object]] = [
            ((*SYSTEM, 1, 0), P.OctetString(self.sys_descr)),
            ((*SYSTEM, 2, 0), P.ObjectIdentifier(self.sys_object_id)),
            ((*SYSTEM, 3, 0), P.TimeTicks(int((now - self._boot) * 100) % 2**32)),
            ((*SYSTEM, 5, 0), P.OctetString(self.name)),
            (IF_NUMBER, P.Integer(len(self._ports))),
        ]
        for index, port in enumerate(self._ports.values(), start=1):
            iface = port.iface
            in_octets, out_octets = (int(octets) for octets in self._octets(port, now))
            columns: list[tuple[Oidt, int, object]] = [
                (IF_ENTRY, 1, P.Integer(index)),
                (IF_ENTRY, 2, P.OctetString(iface.name)),
                (IF_ENTRY, 3, P.Integer(ETHERNET_CSMACD)),
                (IF_ENTRY, 5, P.Gauge32(min(int(iface.speed_bps), 2**32 - 1))),
                (IF_ENTRY, 7, P.Integer(1 if iface.admin_up else 2)),
                (IF_ENTRY, 8, P.Integer(1 if iface.oper_up else 2)),
                (IF_ENTRY, 10, P.Counter32(in_octets % 2**32)),
                (IF_ENTRY, 13, P.Counter32(iface.in_discards % 2**32)),
                (IF_ENTRY, 14, P.Counter32(iface.in_errors % 2**32)),
                (IF_ENTRY, 16, P.Counter32(out_octets % 2**32)),
                (IF_ENTRY, 19, P.Counter32(iface.out_discards % 2**32)),
                (IF_ENTRY, 20, P.Counter32(iface.out_errors % 2**32)),
                (IFX_ENTRY, 1, P.OctetString(iface.name)),
                (IFX_ENTRY, 15, P.Gauge32(int(iface.speed_bps // 1_000_000))),
                (IFX_ENTRY, 18, P.OctetString(iface.alias)),
            ]
            if self.hc_counters:
                columns += [
                    (IFX_ENTRY, 6, P.Counter64(in_octets % 2**64)),
                    (IFX_ENTRY, 10, P.Counter64(out_octets % 2**64)),
                ]
            rows += [((*entry, column, index), value) for entry, column, value in columns]
        rows.sort(key=lambda row: row[0])
        return rows

    def respond(self, request: bytes) -> bytes | None:
        """One request datagram -> the response datagram; None to stay silent."""
        try:
            if api.decodeMessageVersion(request) != api.SNMP_VERSION_2C:
                return None
            message, _ = decoder.decode(request, asn1Spec=P.Message())
        except PyAsn1Error:
            return None
        if bytes(P.apiMessage.get_community(message)) != self.community.encode():
            return None  # like a real agent: a wrong community gets no answer at all
        pdu = P.apiMessage.get_pdu(message)
        response = P.apiMessage.get_response(message)
        response_pdu = P.apiMessage.get_pdu(response)
        oids = [tuple(oid) for oid, _ in P.apiPDU.get_varbinds(pdu)]
        table = self.table()
        keys = [oid for oid, _ in table]
        if pdu.isSameTypeWith(P.GetRequestPDU()):
            values = dict(table)
            answer = [(oid, values.get(oid, P.NoSuchObject())) for oid in oids]
        elif pdu.isSameTypeWith(P.GetNextRequestPDU()):
            answer = [_next(table, keys, oid) for oid in oids]
        elif pdu.isSameTypeWith(P.GetBulkRequestPDU()):
            answer = _bulk(
                table,
                keys,
                oids,
                int(P.apiBulkPDU.get_non_repeaters(pdu)),
                int(P.apiBulkPDU.get_max_repetitions(pdu)),
            )
        else:
            return None  # read-only agent: SET and the rest are not ours to answer
        P.apiPDU.set_varbinds(response_pdu, answer)
        return encoder.encode(response)

    # --- asyncio UDP ----------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=(host, port)
        )
        bound_host, bound_port = self._transport.get_extra_info("sockname")[:2]
        log.info("simulated router %s listening on %s:%d", self.name, bound_host, bound_port)
        return bound_host, bound_port

    async def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None


def _next(table: list[tuple[Oidt, object]], keys: list[Oidt], oid: Oidt) -> tuple[Oidt, object]:
    position = bisect.bisect_right(keys, oid)
    if position == len(table):
        return oid, P.EndOfMibView()
    return table[position]


def _bulk(
    table: list[tuple[Oidt, object]],
    keys: list[Oidt],
    oids: list[Oidt],
    non_repeaters: int,
    max_repetitions: int,
) -> list[tuple[Oidt, object]]:
    """RFC 3416 4.2.3: non-repeaters once, then up to max_repetitions rows of the repeaters."""
    non_repeaters = max(0, min(non_repeaters, len(oids)))
    answer = [_next(table, keys, oid) for oid in oids[:non_repeaters]]
    cursors = oids[non_repeaters:]
    for _ in range(max_repetitions if cursors else 0):
        row = [_next(table, keys, oid) for oid in cursors]
        answer += row
        if all(isinstance(value, P.EndOfMibView) for _, value in row):
            break
        cursors = [oid for oid, _ in row]
    return answer


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, router: SimulatedRouter) -> None:
        self._router = router
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # the selector loop's datagram transport does not subclass DatagramTransport
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not self._router.answering:
            return
        response = self._router.respond(data)
        if response is None or self._transport is None:
            return
        if self._router.delay > 0:
            asyncio.get_running_loop().call_later(self._router.delay, self._send, response, addr)
        else:
            self._transport.sendto(response, addr)

    def _send(self, response: bytes, addr: tuple[str, int]) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.sendto(response, addr)
