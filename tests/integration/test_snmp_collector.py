"""SnmpCollector against real agents on loopback: net-snmp, snmpsim recordings, our simulator."""

from __future__ import annotations

import asyncio
import math
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from collectors.readings import InterfaceSample, PollError, SnmpReading
from collectors.snmp.client import SnmpSessions
from collectors.snmp.collector import (
    IF_DESCR,
    IF_HC_IN_OCTETS,
    IF_IN_OCTETS,
    IF_NAME,
    NAME_COLUMNS,
    SnmpCollector,
)
from simulators.snmp_router import SimInterface, SimulatedRouter
from tests.integration.conftest import HOST, Recording, SnmpPeer, free_udp_port
from tests.snmp_replay import SNMPSIM_MAX_VAR_BINDS, load

pytestmark = pytest.mark.integration

IF_INDEX = "1.3.6.1.2.1.2.2.1.1"
T = TypeVar("T")
Truth = tuple[int, int]


def poll(peer: SnmpPeer, **options: object) -> SnmpReading:
    return asyncio.run(SnmpCollector(peer.host, peer.port, peer.community, **options).poll())


def by_name(reading: SnmpReading) -> dict[str, InterfaceSample]:
    return {interface.name: interface for interface in reading.interfaces}


# --- net-snmp snmpd: the host's real interfaces ---------------------------------------------


def test_snmpd_system_group(snmpd: SnmpPeer) -> None:
    reading = poll(snmpd)
    assert reading.sys_name == socket.gethostname()
    assert os.uname().release in reading.sys_descr
    assert reading.sys_object_id.startswith("1.3.6.1.4.1.8072.")  # NET-SNMP-MIB netSnmpAgentOIDs
    assert reading.sys_uptime_ticks > 0
    assert reading.requests >= 2
    assert reading.varbinds > 4


def test_snmpd_loopback_counters_move_with_traffic(snmpd: SnmpPeer) -> None:
    before = by_name(poll(snmpd))["lo"]
    assert before.counter_bits == 64
    assert before.oper_up is True
    sent = 0
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as source,
    ):
        sink.bind((HOST, 0))
        for _ in range(200):
            sent += source.sendto(b"x" * 1400, sink.getsockname())
    # net-snmp caches the interface table for a few seconds
    deadline = time.monotonic() + 10
    while True:
        after = by_name(poll(snmpd))["lo"]
        if after.in_octets - before.in_octets >= sent or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert after.in_octets - before.in_octets >= sent
    assert after.out_octets - before.out_octets >= sent


def test_snmpd_v1_has_no_counter64_so_octets_are_32_bit(snmpd: SnmpPeer) -> None:
    lo = by_name(poll(snmpd, version="1"))["lo"]
    assert lo.counter_bits == 32
    assert lo.in_octets is not None


def test_wrong_community_times_out_quickly_without_leaking_it(snmpd: SnmpPeer) -> None:
    wrong = SnmpPeer(snmpd.host, snmpd.port, "not-the-community-x7")
    started = time.monotonic()
    with pytest.raises(PollError) as caught:
        poll(wrong, timeout=0.5, retries=0)
    assert time.monotonic() - started < 2.0
    assert caught.value.reason == "timeout"
    message = str(caught.value)
    assert "community" in message
    assert "ACL" in message
    assert wrong.community not in message


def test_closed_port_is_unreachable_from_the_icmp_answer() -> None:
    # retries would take 10 x 5 s on silence; the kernel's port-unreachable ends it at once
    with pytest.raises(PollError) as caught:
        poll(SnmpPeer(HOST, free_udp_port(), "public"), timeout=5, retries=9)
    assert caught.value.reason == "refused"
    assert f"{HOST}:" in str(caught.value)
    assert "port unreachable" in str(caught.value)


def test_unknown_host_name_is_unreachable() -> None:
    with pytest.raises(PollError) as caught:
        poll(SnmpPeer("no-such-host.invalid", 161, "public"), timeout=0.3, retries=0)
    assert caught.value.reason == "unreachable"


# --- snmpsim: recordings of real devices ------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "bits"),
    [
        ("cisco-c3560", 64),
        ("legend-holdings-firewall", 32),
        ("juniper-mx960-12-3r6-6", 64),
        ("ubiquiti-m5", 32),
    ],
)
def test_snmpsim_recording(snmpsim: dict[str, Recording], name: str, bits: int) -> None:
    recording = snmpsim[name]
    recorded = load(recording.path)
    indexes = set(recorded.column(IF_INDEX)) | set(recorded.column(IF_DESCR))
    if_names = recorded.column(IF_NAME)
    if_descrs = recorded.column(IF_DESCR)
    hc_in = recorded.column(IF_HC_IN_OCTETS)
    in_32 = recorded.column(IF_IN_OCTETS)

    reading = poll(recording.peer)

    assert len(reading.interfaces) == len(indexes)
    assert {i.index: i.name for i in reading.interfaces} == {
        index: if_names.get(index) or if_descrs.get(index) or f"if{index}" for index in indexes
    }
    for interface in reading.interfaces:
        if interface.index in hc_in:
            assert (interface.counter_bits, interface.in_octets) == (64, hc_in[interface.index])
        else:
            assert (interface.counter_bits, interface.in_octets) == (32, in_32[interface.index])
    assert max(i.counter_bits for i in reading.interfaces) == bits


def test_snmpsim_c3560_walk_needs_few_pdus(snmpsim: dict[str, Recording]) -> None:
    collector = SnmpCollector(*snmpsim["cisco-c3560"].peer, max_repetitions=25)
    fresh = asyncio.run(collector.poll())
    cached = asyncio.run(collector.poll(fresh.names))
    rows = 57
    assert len(fresh.interfaces) == len(cached.interfaces) == rows
    assert (fresh.names_refreshed, cached.names_refreshed) == (True, False)
    assert [i.name for i in cached.interfaces] == [i.name for i in fresh.interfaces]
    # snmpsim answers at most 64 varbinds: 12 rows of the 5 name columns per answer, and the
    # cached poll skips exactly that walk.
    name_walk = math.ceil(rows / (SNMPSIM_MAX_VAR_BINDS // len(NAME_COLUMNS)))
    assert fresh.requests - cached.requests == name_walk
    assert fresh.varbinds - cached.varbinds >= rows * len(NAME_COLUMNS)
    # system GET + counter walk (5 rows of 11 columns per answer) + 32-bit walk for Null0
    # + the Cisco profile's health walk: 18, against 741 GETs of one column per row
    assert cached.requests <= 1 + math.ceil(rows / 5) + 1 + math.ceil(rows / 16) + 1 + 3


# --- our simulator: exact truth -------------------------------------------------------------


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run_router(router: SimulatedRouter, scenario: Callable[[SnmpPeer], Awaitable[T]]) -> T:
    async def main() -> T:
        host, port = await router.start()
        try:
            return await scenario(SnmpPeer(host, port, router.community))
        finally:
            await router.stop()

    return asyncio.run(main())


def collect(peer: SnmpPeer, sessions: SnmpSessions | None = None) -> Awaitable[SnmpReading]:
    return SnmpCollector(peer.host, peer.port, peer.community, sessions=sessions).poll()


def test_simulator_rates_match_truth() -> None:
    clock = ManualClock()
    router = SimulatedRouter(
        interfaces=[
            SimInterface("ether1", rx_bps=80e6, tx_bps=20e6, alias="PTCL fibre"),
            SimInterface("ether2", speed_bps=10e9, rx_bps=3e9, tx_bps=1e9),
        ],
        community="sim-secret",
        wobble=0.05,
        clock=clock,
    )

    async def scenario(peer: SnmpPeer) -> tuple[SnmpReading, Truth, SnmpReading, Truth]:
        first, truth_first = await collect(peer), router.truth("ether1")
        clock.now += 30
        second, truth_second = await collect(peer), router.truth("ether1")
        return first, truth_first, second, truth_second

    first, truth_first, second, truth_second = run_router(router, scenario)
    a, b = by_name(first)["ether1"], by_name(second)["ether1"]
    assert (a.alias, a.counter_bits, a.speed_bps) == ("PTCL fibre", 64, 1e9)
    assert by_name(first)["ether2"].speed_bps == 10e9
    assert (a.in_octets, a.out_octets) == truth_first
    for measured, true in [
        ((b.in_octets - a.in_octets) * 8 / 30, (truth_second[0] - truth_first[0]) * 8 / 30),
        ((b.out_octets - a.out_octets) * 8 / 30, (truth_second[1] - truth_first[1]) * 8 / 30),
    ]:
        assert measured == pytest.approx(true, rel=0.01)
    assert second.sys_uptime_ticks - first.sys_uptime_ticks == 3000


def test_simulator_without_hc_counters_gives_wrapping_32_bit() -> None:
    clock = ManualClock()
    router = SimulatedRouter(
        interfaces=[SimInterface("ether1", rx_bps=1e9, tx_bps=1e9)], hc_counters=False, clock=clock
    )

    async def scenario(peer: SnmpPeer) -> tuple[SnmpReading, Truth, SnmpReading, Truth]:
        clock.now += 20
        first, truth_first = await collect(peer), router.truth("ether1")
        clock.now += 20  # 2.5e9 octets at 1 Gb/s: past 2**32 once
        second, truth_second = await collect(peer), router.truth("ether1")
        return first, truth_first, second, truth_second

    first, truth_first, second, truth_second = run_router(router, scenario)
    a, b = first.interfaces[0], second.interfaces[0]
    assert a.counter_bits == b.counter_bits == 32
    assert a.in_octets == truth_first[0] % 2**32
    assert b.in_octets < a.in_octets  # wrapped
    assert (b.in_octets - a.in_octets) % 2**32 == truth_second[0] - truth_first[0]


def test_simulator_restart_resets_uptime_and_counters() -> None:
    clock = ManualClock()
    router = SimulatedRouter(interfaces=[SimInterface("ether1", rx_bps=1e6)], clock=clock)

    async def scenario(peer: SnmpPeer) -> tuple[SnmpReading, SnmpReading]:
        clock.now += 100
        before = await collect(peer)
        router.restart()
        clock.now += 5
        return before, await collect(peer)

    before, after = run_router(router, scenario)
    assert (before.sys_uptime_ticks, after.sys_uptime_ticks) == (10000, 500)
    assert after.interfaces[0].in_octets < before.interfaces[0].in_octets
    assert after.interfaces[0].in_octets == 5 * 1e6 / 8


def test_simulator_oper_status_and_shared_sessions_across_targets() -> None:
    core = SimulatedRouter("core", [SimInterface("ether1"), SimInterface("ether2")], community="a")
    edge = SimulatedRouter("edge", [SimInterface("wlan1")], community="b")
    core.set_oper("ether2", up=False)

    async def main() -> list[SnmpReading]:
        peers = [SnmpPeer(*await r.start(), r.community) for r in (core, edge)]
        sessions = SnmpSessions()
        try:
            return await asyncio.gather(*(collect(peer, sessions) for peer in peers))
        finally:
            await sessions.close()
            for router in (core, edge):
                await router.stop()

    core_reading, edge_reading = asyncio.run(main())
    assert (core_reading.sys_name, edge_reading.sys_name) == ("core", "edge")
    assert [i.oper_up for i in core_reading.interfaces] == [True, False]
    assert [i.name for i in edge_reading.interfaces] == ["wlan1"]


def test_simulator_57_interfaces_take_a_handful_of_pdus() -> None:
    router = SimulatedRouter(interfaces=[SimInterface(f"ether{n}") for n in range(1, 58)])

    async def scenario(peer: SnmpPeer) -> SnmpReading:
        return await collect(peer)

    reading = run_router(router, scenario)
    assert [i.name for i in reading.interfaces] == [f"ether{n}" for n in range(1, 58)]
    # an agent without a response cap: the system GET, 3 GETBULK of 25 rows for the name
    # columns, 3 for the counters, 1 that finds no ifIn/OutUcastPkts either, and the MikroTik
    # profile's health GET and walk
    assert reading.requests == 1 + 3 + 3 + 1 + 2
