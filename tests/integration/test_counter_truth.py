"""Counter truth against snmpsim: traffic that never happened is never exported.

A MikroTik-like router, written here as a .snmprec with `numeric` variation: ether1 (Ethernet,
100 Mb/s) and pppoe-out1 (PPP, ifSpeed 0 and ifHighSpeed 0, as RouterOS reports it). Counters
run at RATE bytes/s, either from the simulator's start (so a restart of snmpsim clears them,
like a PPPoE reconnect) or on the wall clock (so they survive it, like interface counters when
only the SNMP agent restarts); sysUpTime likewise. Restarting snmpsim on the same port, with
the same file or another, is the device event. Polled through the real path (PlannedSnmpCollector,
DevicePoller, RouterJudge) and read back from the /metrics registry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest

from agent.config import parse_config
from agent.poller import DevicePoller, RouterJudge
from agent.snmp_plan import PlannedSnmpCollector
from agent.state import AgentState, DeviceState
from collectors.snmp.collector import SnmpCollector
from exporters.prometheus import build_registry

from .conftest import SnmpPeer, serve_recordings
from .test_agent_process import get, samples

pytestmark = pytest.mark.integration
RATE = 1_000_000  # bytes/s on every moving counter (8 Mb/s)
# pppoe-out1 has no speed: ether1's 100 Mb/s x 1.5 bounds it (agent/checks/bandwidth.py)
CEILING = 100e6 * 1.5 / 8
# Rates over ~1.5 s timed by when the agent read each answer: tens of ms of jitter are a few
# percent. A false delta (a wrap read into a clear, a counter read as bytes since boot) is off
# by orders of magnitude.
TOLERANCE = 0.2
WALL_UPTIME = "67:numeric|atime=1,function=fmod%<time>%4000000000,rate=100"  # runs on
FRESH_UPTIME = "67:numeric|rate=100"  # starts again with snmpsim
GAP = 1.5  # seconds between polls


def counter(bits: int, wall: bool) -> str:
    tag = 70 if bits == 64 else 65
    return f"{tag}:numeric|{'atime=1,' if wall else ''}rate={RATE}"


def recording(
    directory: Path, *, pppoe_index: int = 15, bits: int = 32, wall: bool = False,
    uptime: str = WALL_UPTIME,
) -> Path:  # fmt: skip
    """router.snmprec in `directory`: ether1 (ifIndex 1, 64-bit, wall-clock counters) and
    pppoe-out1 (`pppoe_index`, `bits`-wide counters, from snmpsim's start unless `wall`)."""
    records: dict[str, str] = {
        "1.3.6.1.2.1.1.1.0": "4|RouterOS CCR1009",
        "1.3.6.1.2.1.1.2.0": "6|1.3.6.1.4.1.14988.1",
        "1.3.6.1.2.1.1.3.0": uptime,
        "1.3.6.1.2.1.1.5.0": "4|core",
        "1.3.6.1.2.1.2.1.0": "2|2",
    }
    ports = (
        (1, "ether1", 6, 100_000_000, 100, counter(64, True), 64),
        (pppoe_index, "pppoe-out1", 23, 0, 0, counter(bits, wall), bits),
    )
    for index, name, if_type, speed, high_speed, moving, width in ports:
        row = {
            "1.3.6.1.2.1.2.2.1.1": f"2|{index}",
            "1.3.6.1.2.1.2.2.1.2": f"4|{name}",
            "1.3.6.1.2.1.2.2.1.3": f"2|{if_type}",
            "1.3.6.1.2.1.2.2.1.5": f"66|{speed}",
            "1.3.6.1.2.1.2.2.1.7": "2|1",
            "1.3.6.1.2.1.2.2.1.8": "2|1",
            "1.3.6.1.2.1.31.1.1.1.1": f"4|{name}",
            "1.3.6.1.2.1.31.1.1.1.15": f"66|{high_speed}",
            "1.3.6.1.2.1.31.1.1.1.18": "4|",
        }
        octets = ("6", "10") if width == 64 else ("10", "16")
        table = "1.3.6.1.2.1.31.1.1.1" if width == 64 else "1.3.6.1.2.1.2.2.1"
        for column in octets:
            row[f"{table}.{column}"] = moving
        records.update({f"{column}.{index}": value for column, value in row.items()})
    lines = [f"{oid}|{records[oid]}" for oid in sorted(records, key=_oid_key)]
    path = directory / "router.snmprec"
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def _oid_key(oid: str) -> tuple[int, ...]:
    return tuple(int(part) for part in oid.split("."))


def serve(path: Path, port: int | None = None) -> AbstractContextManager[dict[str, Any]]:
    return serve_recordings([path], lambda served: [r.peer for r in served.values()], 60, port)


class Router:
    """The agent's real poll path for one SNMP device, and what /metrics then says."""

    def __init__(self, peer: SnmpPeer, **snmp: Any) -> None:
        config = parse_config({"site": {"id": "CNT-001"}, "snmp": [
            {"name": "core", "address": f"{peer.host}:{peer.port}", "community": peer.community,
             "interval": 1, "timeout": 1, "retries": 0, **snmp}]})  # fmt: skip
        device = config.snmp[0]
        self.state = AgentState("CNT-001", "", "test")
        self.device = self.state.devices["core"] = DeviceState("core", "snmp")
        collector = SnmpCollector(peer.host, peer.port, peer.community, timeout=1, retries=0)
        planned = PlannedSnmpCollector(collector, device)
        self.poller = DevicePoller(self.device, planned, RouterJudge(device), 10)

    def poll(self) -> dict:
        asyncio.run(self.poller.poll())
        assert self.device.up, self.device.message
        return samples(generate_latest(build_registry(self.state)).decode())


def port_value(found: dict, metric: str, interface: str = "pppoe-out1") -> float | None:
    role = found_role(found, interface) or "lan"
    return get(found, f"erozgar_interface_{metric}", device="core", interface=interface,
               role=role)  # fmt: skip


def found_role(found: dict, interface: str) -> str | None:
    for name, labels in found:
        if name == "erozgar_interface_receive_bytes_total" and ("interface", interface) in labels:
            return dict(labels)["role"]
    return None


def total(found: dict, interface: str = "pppoe-out1") -> float:
    value = port_value(found, "receive_bytes_total", interface)
    assert value is not None, f"{interface} lost"
    return value


def rejected(found: dict, reason: str) -> float:
    return get(found, "erozgar_interface_rejected_deltas_total", device="core", reason=reason) or 0


def assert_rate(found: dict, interface: str = "pppoe-out1") -> None:
    rate = port_value(found, "receive_bytes_per_second", interface)
    assert rate is not None, f"{interface}: no rate"
    assert abs(rate - RATE) <= RATE * TOLERANCE, f"{interface}: {rate} B/s, expected {RATE}"


@pytest.fixture
def bandwidth_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.INFO, logger="agent.checks.bandwidth")
    yield caplog


def settled(router: Router) -> dict:
    """Two polls GAP apart: the second has rates."""
    router.poll()
    time.sleep(GAP)
    found = router.poll()
    assert_rate(found)
    return found


def test_speedless_pppoe_cleared_counters_are_a_counted_reset(
    tmp_path: Path, bandwidth_log: pytest.LogCaptureFixture
) -> None:
    """(a) pppoe-out1, 32-bit, cleared by a restart of snmpsim while sysUpTime runs on: read as
    a wrap it would be ~4 GB over the restart, gigabits per second on a port with no speed."""
    path = recording(tmp_path / "a")
    with serve(path) as served:
        peer = served["router"].peer
        router = Router(peer)
        before = settled(router)
    with serve(path, peer.port):
        after = router.poll()
        time.sleep(GAP)
        later = router.poll()
    assert port_value(after, "receive_bytes_per_second") is None
    assert port_value(after, "transmit_bytes_per_second") is None
    assert total(after) == total(before)  # a reset adds nothing; the total never goes back
    assert rejected(after, "counter_reset") == 2  # both directions
    assert_rate(later)
    assert_rate(later, "ether1")
    assert (port_value(later, "receive_bytes_per_second") or 0) <= CEILING
    lines = [r.getMessage() for r in bandwidth_log.records if "refused" in r.getMessage()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("core: pppoe-out1 receive: delta refused (counter_reset): a wrap")
    assert "above the port's ceiling of 150 Mb/s" in lines[0]


def test_snmp_agent_restart_with_counters_counting_on_keeps_the_rates(tmp_path: Path) -> None:
    """(b) sysUpTime starts again with snmpsim, the interface counters (wall clock) do not:
    the rates go on over the restart, no counter is read as bytes since boot."""
    path = recording(tmp_path / "b", bits=64, wall=True, uptime=FRESH_UPTIME)
    with serve(path) as served:
        peer = served["router"].peer
        router = Router(peer)
        before = settled(router)
        polled = time.monotonic()
    with serve(path, peer.port):
        after = router.poll()
        gap = time.monotonic() - polled
    uptime = get(after, "erozgar_device_uptime_seconds", device="core")
    assert uptime is not None and uptime < get(before, "erozgar_device_uptime_seconds",
                                               device="core")  # fmt: skip
    for interface in ("pppoe-out1", "ether1"):
        assert_rate(after, interface)
        grown = total(after, interface) - total(before, interface)
        assert grown <= RATE * gap * (1 + TOLERANCE), f"{interface}: {grown} bytes in {gap} s"
    assert not [k for k in after if k[0] == "erozgar_interface_rejected_deltas_total"]


@pytest.mark.parametrize("pinned", [False, True], ids=["walked", "pinned"])
def test_pppoe_renumbered_continues_by_name(
    tmp_path: Path, bandwidth_log: pytest.LogCaptureFixture, pinned: bool
) -> None:
    """(c) pppoe-out1 comes back as ifIndex 16 (was 15) with a new session's 32-bit counters,
    ifNumber unchanged, sysUpTime running on: the same series goes on, with no spike, also
    when only the listed ports are fetched by GET (`pinned`)."""
    first = recording(tmp_path / "c1", pppoe_index=15)
    second = recording(tmp_path / "c2", pppoe_index=16)
    wan = {"interfaces": [{"name": "ether1", "role": "wan"}, {"name": "pppoe-out1", "role": "wan"}],
           "ports": {"pinned": pinned}}  # fmt: skip
    with serve(first) as served:
        peer = served["router"].peer
        router = Router(peer, **wan)
        settled(router)
        before = router.poll()  # pinned: names cached, the listed rows fetched by GET
        polled = time.monotonic()
    with serve(second, peer.port):
        after = router.poll()
        gap = time.monotonic() - polled
        time.sleep(GAP)
        later = router.poll()
    assert 0 <= total(after) - total(before) <= CEILING * gap  # the same series, no spike
    assert port_value(after, "receive_bytes_per_second") is None  # start of the session unknown
    assert rejected(after, "port_reappeared") == 2
    assert_rate(later)
    assert_rate(later, "ether1")
    assert found_role(later, "pppoe-out1") == "wan"
    started = [r.getMessage() for r in bandwidth_log.records if "started again" in r.getMessage()]
    assert len(started) == 1, started
    assert started[0].startswith(
        "core: pppoe-out1 receive: counters started again (port_reappeared)"
    )
