"""ModbusCollector against our Modbus TCP simulator on 127.0.0.1, and the simulator against mbpoll.

Each test runs its own event loop with asyncio.run (no pytest-asyncio) and binds port 0.
"""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import struct
import subprocess
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import yaml

from collectors.modbus.collector import ModbusCollector
from collectors.modbus.decode import multiplier
from collectors.modbus.profile import load_profile
from collectors.modbus.transport import Gateway, Link
from collectors.readings import PollError, UpsReading
from simulators.modbus_server import ModbusTcpServer, with_crc
from simulators.ups import SimulatedUps

from .conftest import require
from .test_agent_process import LoopThread, closed_tcp_port, get
from .test_reload import wait_for

pytestmark = pytest.mark.integration

PROFILE = load_profile("apc-smart-ups")


class FakeClock:
    """Frozen time that tests move by hand, so the simulated battery only changes on request."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def collector(port: int, unit: int = 1, timeout: float = 1.0, retries: int = 0) -> ModbusCollector:
    return ModbusCollector("127.0.0.1", port, unit, PROFILE, timeout, retries)


def run(test: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(test(), 30))


def poll_error(c: ModbusCollector) -> Awaitable[PollError]:
    async def go() -> PollError:
        with pytest.raises(PollError) as caught:
            await c.poll()
        return caught.value

    return go()


def assert_matches_truth(reading: UpsReading, truth: dict[str, float | str]) -> None:
    """Every served value comes back within half a step of its field's scaling."""
    for spec in PROFILE.fields:
        if spec.type in ("string", "date") or spec.map is not None or spec.map_bits is not None:
            assert reading.info[spec.name] == truth[spec.name]
        elif spec.name in truth:
            step = multiplier(spec)
            assert reading.values[spec.name] == pytest.approx(truth[spec.name], abs=step / 2 + 1e-9)
        else:
            assert spec.name in reading.invalid
    assert reading.flags == set(str(truth["ups.status"]).split())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_poll_returns_what_the_simulator_serves() -> None:
    async def go() -> None:
        ups = SimulatedUps(charge_pct=87.3, load_w=420.0, clock=FakeClock())
        _, port = await ups.start()
        c = collector(port)
        try:
            reading = await c.poll()
        finally:
            await c.close()
            await ups.stop()
        truth = ups.truth()
        assert_matches_truth(reading, truth)
        assert reading.flags == {"OL"}
        assert reading.values["battery.charge"] == pytest.approx(87.3, abs=1 / 1024)
        assert reading.values["input.voltage"] == 230.0
        assert reading.info["device.model"] == "Smart-UPS SMT1500"
        assert reading.info["device.mfr"] == "APC"
        assert reading.known_flags >= {"OL", "OB", "LB", "RB"}
        assert reading.requests == 3  # status, dynamic and inventory blocks

    run(go)


def test_mains_failure_shows_on_battery_and_the_battery_drains() -> None:
    async def go() -> None:
        clock = FakeClock()
        ups = SimulatedUps(capacity_wh=864.0, load_w=432.0, clock=clock)
        _, port = await ups.start()
        c = collector(port)
        try:
            before = await c.poll()
            ups.set_mains(False)
            clock.now += 600  # 10 min at half the battery's rated Wh per hour: -8.33 %
            after = await c.poll()
            clock.now += 7200  # flat battery: shutdown imminent, output off
            dead = await c.poll()
        finally:
            await c.close()
            await ups.stop()
        assert before.flags == {"OL"}
        assert after.flags == {"OB"}
        assert after.values["input.voltage"] == 0.0
        assert after.values["battery.charge"] == pytest.approx(100 - 100 * 432 / 864 / 6, abs=0.01)
        assert after.values["battery.runtime"] < before.values["battery.runtime"]
        assert after.values["battery.voltage"] < before.values["battery.voltage"]
        assert dead.flags == {"OB", "LB", "OFF"}
        assert dead.values["battery.charge"] == 0.0
        assert dead.values["battery.runtime"] == 0.0
        assert dead.values["output.voltage"] == 0.0
        assert "output.frequency" in dead.invalid

    run(go)


def test_outage_schedule_follows_the_injected_clock() -> None:
    async def go() -> None:
        clock = FakeClock()
        ups = SimulatedUps(outage_every=3600, outage_length=600, charge_pct=50.0, clock=clock)
        _, port = await ups.start()
        c = collector(port)
        try:
            flags = []
            for at in (100, 3100, 3500, 3700):
                clock.now = 1000.0 + at
                flags.append((await c.poll()).flags)
        finally:
            await c.close()
            await ups.stop()
        assert flags == [{"OL"}, {"OB"}, {"OB"}, {"OL"}]

    run(go)


def test_connection_is_kept_between_polls_and_recovers_after_a_restart() -> None:
    async def go() -> None:
        ups = SimulatedUps(clock=FakeClock())
        host, port = await ups.start()
        link = Link("tcp", host, port)
        gateway = Gateway(link, timeout=1.0, retries=0, backoff_min=0.2)
        c = ModbusCollector.on_gateway(gateway, 1, PROFILE)
        try:
            await c.poll()
            await c.poll()
            assert ups.server.connections == 1  # a UPS card has few connection slots
            await ups.stop()
            down = await poll_error(c)
            await ups.start(host, port)
            # Within the back-off the gateway is not tried again: the last reason stands.
            waiting = await poll_error(c)
            await asyncio.sleep(0.25)
            back = await c.poll()
        finally:
            await c.close()
            await ups.stop()
        assert down.reason == "refused"
        assert waiting.reason == "refused"
        assert "next connect attempt in" in str(waiting)
        assert back.flags == {"OL"}
        assert ups.server.connections == 2

    run(go)


def test_wrong_unit_id_is_reported_as_gateway_exception() -> None:
    async def go() -> PollError:
        ups = SimulatedUps(unit=1, clock=FakeClock())
        _, port = await ups.start()
        c = collector(port, unit=7)
        try:
            return await poll_error(c)
        finally:
            await c.close()
            await ups.stop()

    err = run(go)
    assert err.reason == "exception_11"
    assert "unit 7" in str(err)
    assert "gateway target failed to respond" in str(err)
    assert "check the unit id" in str(err)


def test_closed_port_is_refused() -> None:
    port = free_port()

    async def go() -> PollError:
        c = collector(port)
        try:
            return await poll_error(c)
        finally:
            await c.close()

    err = run(go)
    assert err.reason == "refused"
    assert str(err).startswith(f"127.0.0.1:{port} unit 1: connection refused")


@pytest.mark.parametrize(
    ("answer", "reason", "text"),
    [
        (2, "exception_2", "Modbus exception 2 (illegal data address) reading holding 0+27"),
        (6, "exception_6", "Modbus exception 6 (device busy) reading holding 0+27 after 3 tries"),
        (None, "timeout", "no answer to holding 0+27 within 0.3 s"),
    ],
)
def test_device_answers_become_reasons(answer: int | None, reason: str, text: str) -> None:
    async def go() -> PollError:
        server = ModbusTcpServer(lambda unit, function, address, count: answer)
        _, port = await server.start()
        c = collector(port, timeout=0.3)
        try:
            return await poll_error(c)
        finally:
            await c.close()
            await server.stop()

    err = run(go)
    assert err.reason == reason
    assert text in str(err)


def test_short_answer_is_a_decode_error() -> None:
    async def reply_short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A broken device: every read gets a well-framed answer with only two registers.
        header = await reader.readexactly(7)
        tid, _, length, unit = struct.unpack(">HHHB", header)
        function = (await reader.readexactly(length - 1))[0]
        pdu = struct.pack(">BBHH", function, 4, 0x1234, 0x5678)
        writer.write(struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu)
        await writer.drain()
        await reader.read()  # until the client hangs up
        writer.close()

    async def go() -> PollError:
        server = await asyncio.start_server(reply_short, "127.0.0.1", 0)
        c = collector(server.sockets[0].getsockname()[1])
        try:
            return await poll_error(c)
        finally:
            await c.close()
            server.close()
            await server.wait_closed()

    err = run(go)
    assert err.reason == "decode"
    assert "answer to holding 0+27 carried 2 registers" in str(err)


def test_server_answers_unknown_functions_with_exception_1() -> None:
    async def go() -> bytes:
        server = ModbusTcpServer(lambda unit, function, address, count: [0] * count)
        _, port = await server.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            # FC06 write single register 0x0010 := 1, transaction 0x0102, unit 5
            writer.write(bytes.fromhex("0102 0000 0006 05 06 0010 0001"))
            answer = await reader.readexactly(9)
            writer.close()
            return answer
        finally:
            await server.stop()

    assert run(go) == bytes.fromhex("0102 0000 0003 05 86 01")


def test_mbpoll_reads_the_simulator() -> None:
    """An independent Modbus master (mbpoll, 1-based references) sees the words we serve."""
    mbpoll = require("mbpoll")

    async def go() -> tuple[str, dict[str, float | str]]:
        ups = SimulatedUps(charge_pct=87.0, clock=FakeClock())
        _, port = await ups.start()
        try:
            # -r 131 is reference 131 = PDU address 130 (mbpoll counts from 1 unless -0).
            proc = await asyncio.create_subprocess_exec(
                mbpoll, "-m", "tcp", "-a", "1", "-r", "131", "-c", "2", "-t", "4:hex",
                "-1", "-p", str(port), "127.0.0.1",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, err = await proc.communicate()
            assert proc.returncode == 0, err.decode()
            return out.decode(), ups.truth()
        finally:
            await ups.stop()

    out, truth = run(go)
    words = dict(re.findall(r"^\[(\d+)\]:\s+0x([0-9A-F]{4})", out, re.MULTILINE))
    assert words == {
        "131": "AE00",  # battery.charge 87 % * 512 = 44544
        "132": f"{round(float(truth['battery.voltage']) * 32):04X}",  # battery.voltage * 2^5
    }


# Answers a real device or a confused gateway has sent, each spoiling a true answer; the wire is
# "tcp" (MBAP) or "rtu" (RTU frames over TCP, a serial device server).
def _mbap_cuts_the_pdu(answer: bytes) -> bytes:
    return answer[:4] + struct.pack(">H", 2) + answer[6:]  # length 2: unit and function only


def _unknown_function(answer: bytes) -> bytes:
    return answer[:7] + b"\x63" + answer[8:]  # function 99: pymodbus has no decoder for it


def _input_for_holding(answer: bytes) -> bytes:
    return answer[:7] + b"\x04" + answer[8:]  # a well-formed answer to another request


def _rtu_cut_bad_crc(answer: bytes) -> bytes:
    return answer[:-5] + b"\x00\x00"  # three bytes short, and a CRC that does not match


# device name: (framing, spoiler, what its log line says)
MALFORMED: dict[str, tuple[str, Callable[[bytes], bytes], str]] = {
    "mbap-length": ("tcp", _mbap_cuts_the_pdu, "was not a valid Modbus frame (63 bytes: 00"),
    "unknown-function": ("tcp", _unknown_function, "was not a valid Modbus frame (63 bytes: 00"),
    "wrong-function": ("tcp", _input_for_holding, "was function 4, not 3"),
    "rtu-bad-crc": ("rtu", _rtu_cut_bad_crc, "was not a valid Modbus frame (56 bytes: 01 03"),
}


class SpoilingGateway:
    """Serves a SimulatedUps's registers; while `spoiling`, every answer goes through `spoil`."""

    def __init__(self, framing: str, spoil: Callable[[bytes], bytes]) -> None:
        self.ups = SimulatedUps()
        self.framing = framing
        self.spoil = spoil
        self.spoiling = True
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                if self.framing == "tcp":
                    tid, _, length, unit = struct.unpack(">HHHB", await reader.readexactly(7))
                    function, address, count = struct.unpack(
                        ">BHH", await reader.readexactly(length - 1)
                    )
                else:
                    request = await reader.readexactly(8)
                    unit, function, address, count = struct.unpack(">BBHH", request[:6])
                words = self.ups.register_source(unit, function, address, count)
                assert isinstance(words, list)
                pdu = struct.pack(f">BB{count}H", function, 2 * count, *words)
                if self.framing == "tcp":
                    answer = struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu
                else:
                    answer = with_crc(bytes((unit,)) + pdu)
                writer.write(self.spoil(answer) if self.spoiling else answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def test_malformed_answers_mark_the_device_down_in_one_line_then_it_recovers(tmp_path) -> None:
    """`erozgar-agent run` against four gateways that each send one kind of malformed answer.

    pymodbus 3.16 raised on the first two inside asyncio's data_received(), which logged a
    traceback; it took the fourth for silence (reason timeout) and the third for data.
    """
    loop = LoopThread()
    gateways = {
        name: SpoilingGateway(framing, spoil) for name, (framing, spoil, _) in MALFORMED.items()
    }
    modbus = []
    for name, gateway in gateways.items():
        port = loop.run(gateway.start())
        transport = "rtu-over-tcp" if gateway.framing == "rtu" else "tcp"
        # interval 1: a poll budget of 0.9 s, so the poller's cut-off does not race the timeout
        modbus.append({"name": name, "address": f"127.0.0.1:{port}", "transport": transport,
                       "interval": 1, "timeout": 0.3, "retries": 0})  # fmt: skip
    path = tmp_path / "agent.yml"
    path.write_text(yaml.safe_dump({"site": {"id": "T-1"}, "state_dir": str(tmp_path),
                                    "modbus": modbus}))  # fmt: skip
    listen = closed_tcp_port()
    process = subprocess.Popen(
        [require("erozgar-agent"), "run", "--config", str(path), "--listen", f"127.0.0.1:{listen}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        down = wait_for(
            listen,
            lambda f: all(
                (get(f, "erozgar_device_poll_errors_total", device=n, reason="malformed") or 0) >= 2
                for n in gateways
            ),
            "two malformed polls of each device",
        )
        for name in gateways:
            assert get(down, "erozgar_device_up", device=name, kind="modbus") == 0, name
            assert get(down, "erozgar_device_down_reason", device=name, reason="malformed") == 1
        for gateway in gateways.values():
            gateway.spoiling = False
        up = wait_for(
            listen,
            lambda f: all(
                get(f, "erozgar_device_up", device=n, kind="modbus") == 1 for n in gateways
            ),
            "every device answering again",
        )
        for name in gateways:
            assert get(up, "erozgar_ups_battery_charge_ratio", device=name) is not None, name
    finally:
        process.send_signal(signal.SIGTERM)
        _, log = process.communicate(timeout=15)
        for gateway in gateways.values():
            loop.run(gateway.stop())
        loop.close()
    assert process.returncode == 0, log
    assert "Traceback" not in log and "pymodbus" not in log and "asyncio" not in log, log
    for name, (_, _, says) in MALFORMED.items():
        # One line when it goes down, naming device, gateway, unit, request and reason; one back.
        lines = [
            line.split(f" {name}: ", 1)[1] for line in log.splitlines() if f" {name}: " in line
        ]
        assert len(lines) == 2, lines
        assert lines[0].startswith("down (malformed): 127.0.0.1:") and says in lines[0], lines
        assert "unit 1: answer to holding 0+27 " in lines[0]
        assert lines[1] == "answering again after malformed"
