"""Modbus RTU on a serial line (socat pty pair), RTU over TCP, and one gateway shared by many UPS.

The simulator serves the same SimulatedUps state in every framing; mbpoll checks the serial
simulator as an independent RTU master. Each test runs its own event loop (asyncio.run).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.config import parse_config
from agent.daemon import build
from collectors.modbus.collector import ModbusCollector
from collectors.modbus.profile import load_profile
from collectors.modbus.transport import Gateway, GatewayPool, Link
from collectors.readings import PollError
from collectors.snmp.client import SnmpSessions
from simulators.modbus_server import (
    ModbusRtuSerialServer,
    ModbusTcpServer,
    RegisterSource,
    crc16,
    with_crc,
)
from simulators.ups import SimulatedUps

from .conftest import require, stop
from .test_modbus_collector import FakeClock

pytestmark = pytest.mark.integration

PROFILE = load_profile("apc-smart-ups")


def run(test: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(test(), 30))


@pytest.fixture
def pty_pair(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two linked serial ports: (simulator end, agent end)."""
    socat = require("socat")
    a, b = tmp_path / "ttyA", tmp_path / "ttyB"
    process = subprocess.Popen(
        [socat, "-d", "-d", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 5
    while not (a.exists() and b.exists()):
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            pytest.fail(f"socat did not create the pty pair: {process.stderr.read().decode()}")
        time.sleep(0.02)
    try:
        yield str(a), str(b)
    finally:
        stop(process)
        assert process.stderr is not None
        process.stderr.close()


def units(*upses: SimulatedUps) -> RegisterSource:
    """Several UPS on one RS-485 bus: each answers its own unit id; others stay silent."""
    by_unit = {ups.unit: ups for ups in upses}

    def source(unit: int, function: int, address: int, count: int) -> list[int] | int | None:
        ups = by_unit.get(unit)
        return None if ups is None else ups.register_source(unit, function, address, count)

    return source


def test_crc16_matches_the_spec_example() -> None:
    # Modbus over serial line V1.02, appendix B: 02 07 -> CRC 0x1241, sent as 41 12.
    assert crc16(bytes.fromhex("0207")) == 0x1241
    assert with_crc(bytes.fromhex("0207")) == bytes.fromhex("02074112")


def test_rtu_on_a_serial_line_reads_the_ups(pty_pair: tuple[str, str]) -> None:
    sim_end, agent_end = pty_pair

    async def go() -> tuple[Any, dict[str, float | str], int]:
        ups = SimulatedUps(charge_pct=87.0, clock=FakeClock())
        server = ModbusRtuSerialServer(ups.register_source, sim_end, baudrate=9600)
        await server.start()
        gateway = Gateway(Link("rtu", agent_end, baudrate=9600), timeout=1.0, retries=0)
        c = ModbusCollector.on_gateway(gateway, 1, PROFILE)
        try:
            reading = await c.poll()
            again = await c.poll()
        finally:
            await c.close()
            await server.stop()
        assert again.values == reading.values
        return reading, ups.truth(), gateway.connects

    reading, truth, connects = run(go)
    assert reading.values["battery.charge"] == 87.0
    assert reading.values["input.voltage"] == 230.0
    assert reading.info["device.model"] == truth["device.model"]
    assert reading.flags == {"OL"}
    assert reading.requests == 3
    assert connects == 1  # the port stays open between polls


def test_rtu_wrong_unit_on_a_serial_line_times_out(pty_pair: tuple[str, str]) -> None:
    sim_end, agent_end = pty_pair

    async def go() -> PollError:
        ups = SimulatedUps(unit=1, clock=FakeClock())
        server = ModbusRtuSerialServer(units(ups), sim_end)
        await server.start()
        gateway = Gateway(Link("rtu", agent_end), timeout=0.3, retries=0)
        c = ModbusCollector.on_gateway(gateway, 9, PROFILE)
        try:
            with pytest.raises(PollError) as caught:
                await c.poll()
            return caught.value
        finally:
            await c.close()
            await server.stop()

    err = run(go)
    assert err.reason == "timeout"
    assert f"{agent_end} (9600 8N1) unit 9: no answer to holding 0+27 within 0.3 s" in str(err)


def test_mbpoll_reads_the_serial_simulator(pty_pair: tuple[str, str]) -> None:
    """An independent RTU master (mbpoll) sees the words our RTU framing serves."""
    mbpoll = require("mbpoll")
    sim_end, agent_end = pty_pair

    async def go() -> tuple[str, dict[str, float | str]]:
        ups = SimulatedUps(charge_pct=87.0, clock=FakeClock())
        server = ModbusRtuSerialServer(ups.register_source, sim_end, baudrate=9600)
        await server.start()
        try:
            proc = await asyncio.create_subprocess_exec(
                mbpoll, "-m", "rtu", "-b", "9600", "-P", "none", "-a", "1", "-r", "131",
                "-c", "2", "-t", "4:hex", "-1", agent_end,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, err = await proc.communicate()
            assert proc.returncode == 0, out.decode() + err.decode()
            return out.decode(), ups.truth()
        finally:
            await server.stop()

    out, truth = run(go)
    words = dict(re.findall(r"^\[(\d+)\]:\s+0x([0-9A-F]{4})", out, re.MULTILINE))
    assert words == {
        "131": "AE00",  # battery.charge 87 % * 512
        "132": f"{round(float(truth['battery.voltage']) * 32):04X}",
    }


def test_rtu_over_tcp_through_a_serial_gateway() -> None:
    async def go() -> tuple[Any, Any]:
        first = SimulatedUps(unit=1, charge_pct=87.0, clock=FakeClock())
        second = SimulatedUps(unit=2, charge_pct=41.0, clock=FakeClock())
        second.set_mains(False)
        server = ModbusTcpServer(units(first, second), framing="rtu")
        host, port = await server.start()
        pool = GatewayPool()
        link = Link("rtu-over-tcp", host, port)
        a = ModbusCollector.on_gateway(
            pool.gateway(link, timeout=1, retries=0, pause=0), 1, PROFILE
        )
        b = ModbusCollector.on_gateway(
            pool.gateway(link, timeout=1, retries=0, pause=0), 2, PROFILE
        )
        try:
            return await a.poll(), await b.poll()
        finally:
            await pool.close()
            await server.stop()

    one, two = run(go)
    assert (one.values["battery.charge"], one.flags) == (87.0, {"OL"})
    assert two.values["battery.charge"] == pytest.approx(41.0, abs=0.01)
    assert two.flags == {"OB"}


def test_busy_answers_are_retried() -> None:
    async def go() -> tuple[Any, int]:
        ups = SimulatedUps(clock=FakeClock())
        busy = {"left": 2}

        def source(unit: int, function: int, address: int, count: int) -> list[int] | int:
            if busy["left"]:
                busy["left"] -= 1
                return 6
            return ups.register_source(unit, function, address, count)

        server = ModbusTcpServer(source)
        _, port = await server.start()
        c = ModbusCollector("127.0.0.1", port, 1, PROFILE, 1.0, 0)
        try:
            return await c.poll(), server.requests
        finally:
            await c.close()
            await server.stop()

    reading, served = run(go)
    assert reading.flags == {"OL"}
    assert reading.requests == 5  # two busy answers, then the three blocks
    assert served == 5


@pytest.mark.parametrize(
    ("code", "meaning"),
    [
        (1, "illegal function"),
        (3, "illegal data value"),
        (4, "device failure"),
        (10, "gateway path unavailable"),
    ],
)
def test_exceptions_are_reported_with_their_meaning(code: int, meaning: str) -> None:
    async def go() -> PollError:
        server = ModbusTcpServer(lambda unit, function, address, count: code)
        _, port = await server.start()
        c = ModbusCollector("127.0.0.1", port, 1, PROFILE, 1.0, 0)
        try:
            with pytest.raises(PollError) as caught:
                await c.poll()
            return caught.value
        finally:
            await c.close()
            await server.stop()

    err = run(go)
    assert err.reason == f"exception_{code}"
    assert f"Modbus exception {code} ({meaning}) reading holding 0+27" in str(err)


def test_single_master_gateway_serves_three_ups_through_the_daemon() -> None:
    """A gateway that takes one TCP connection: three devices on it all stay up."""

    async def go() -> tuple[dict[str, Any], int, int, list[PollError]]:
        upses = [SimulatedUps(unit=u, charge_pct=50.0 + u, clock=FakeClock()) for u in (1, 2, 3)]
        server = ModbusTcpServer(units(*upses), max_connections=1)
        host, port = await server.start()
        # Without sharing, every device opens its own connection and the gateway drops them.
        private = [ModbusCollector(host, port, u, PROFILE, 1.0, 0) for u in (1, 2, 3)]
        outcomes = await asyncio.gather(*(c.poll() for c in private), return_exceptions=True)
        for c in private:
            await c.close()
        failures = [o for o in outcomes if isinstance(o, PollError)]
        server.connections = 0
        config = parse_config(
            {
                "site": {"id": "test"},
                "modbus": [
                    {"name": f"ups-{u}", "address": f"{host}:{port}", "unit": u} for u in (1, 2, 3)
                ],
            }
        )
        sessions = SnmpSessions()
        state, pollers = build(config, sessions)
        try:
            for _ in range(3):
                await asyncio.gather(*(poller.poll() for poller, _ in pollers))
        finally:
            await asyncio.gather(*(poller.close() for poller, _ in pollers))
            await sessions.close()
            await server.stop()
        return state.devices, server.connections, server.rejected, failures

    devices, connections, rejected, failures = run(go)
    assert failures, "three private connections to a single-master gateway should fail"
    assert rejected >= 1
    for unit in (1, 2, 3):
        device = devices[f"ups-{unit}"]
        assert (device.up, device.reason) == (True, "ok")
        assert device.errors == {}
        assert device.status.values["battery.charge"] == pytest.approx(50.0 + unit, abs=0.01)
    assert connections == 1


def test_missing_serial_port_is_unreachable(tmp_path: Path) -> None:
    async def go() -> PollError:
        gateway = Gateway(Link("rtu", str(tmp_path / "ttyUSB9")), timeout=0.5, retries=0)
        c = ModbusCollector.on_gateway(gateway, 1, PROFILE)
        with pytest.raises(PollError) as caught:
            await c.poll()
        return caught.value

    err = run(go)
    assert err.reason == "unreachable"
    assert "ttyUSB9 does not exist; check the USB-RS485 adapter" in str(err)


def test_check_command_opens_the_serial_port(pty_pair: tuple[str, str], tmp_path: Path) -> None:
    from agent.commission.modbus import check_modbus

    sim_end, agent_end = pty_pair

    async def go() -> tuple[Any, Any]:
        ups = SimulatedUps(clock=FakeClock())
        server = ModbusRtuSerialServer(ups.register_source, sim_end)
        await server.start()
        try:
            config = parse_config(
                {
                    "site": {"id": "s"},
                    "modbus": [
                        {"name": "rs485", "address": agent_end, "transport": "rtu"},
                        {"name": "gone", "address": str(tmp_path / "ttyUSB7"), "transport": "rtu"},
                    ],
                }
            )
            return await check_modbus(config.modbus[0]), await check_modbus(config.modbus[1])
        finally:
            await server.stop()

    good, gone = run(go)
    assert [(s.name, s.status) for s in good.checks][:2] == [
        ("serial port", "PASS"),
        ("modbus answer", "PASS"),
    ]
    assert [(s.name, s.status) for s in gone.checks] == [("serial port", "FAIL")]
    assert "USB-RS485 adapter" in gone.checks[0].hint
