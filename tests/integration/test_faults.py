"""Faults survived by the real process: devices that go silent, slow, reset mid-answer or answer
Modbus exceptions; snmpd and a Modbus gateway restarted; the box's clock jumping.

Each fault hits one device of a pair; the other must not notice (no poll error at all). The
faulty one must show `up` 0 with the right reason, then recover by itself within one interval
of coming back: at most one more failed poll (the one already in flight) after the fault ends.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from simulators.snmp_router import SimInterface, SimulatedRouter
from simulators.ups import SimulatedUps

from .conftest import free_udp_port, missing, require
from .test_agent_process import LoopThread, closed_tcp_port, get, samples, scrape

pytestmark = pytest.mark.integration
COMMUNITY = "faults-community-secret"
FAKETIME_LIB = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


def stepped_clock(directory: Path) -> tuple[Path, dict[str, str]]:
    """(offset file, environment) for a process whose wall clock steps when the file is
    rewritten (`+1h`, `-2h`) while its monotonic clock runs on, as in an NTP step."""
    if not FAKETIME_LIB.exists():
        missing("libfaketime not found: apt-get install -y faketime")
    offset = directory / "faketime"
    offset.write_text("+0\n")
    return offset, {
        "LD_PRELOAD": str(FAKETIME_LIB),
        "FAKETIME_TIMESTAMP_FILE": str(offset),
        "FAKETIME_NO_CACHE": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",  # libfaketime 0.9.10 reads this name,
        "DONT_FAKE_MONOTONIC": "1",  # older ones this one
    }


RX_BPS = 40e6
# A 1 s interval measured by when each answer arrives: tens of ms of jitter are several percent.
# A false rate from a clock jump or a restart would be off by orders of magnitude.
RATE_TOLERANCE = 0.2


class Centre:
    def __init__(self, loop: LoopThread, port: int, process: subprocess.Popen[str], **peers: Any):
        self.loop, self.port, self.process = loop, port, process
        self.peers = peers

    def metrics(self) -> dict:
        return samples(scrape(self.port))

    def wait(self, ready: Callable[[dict], bool], what: str, seconds: float = 20) -> dict:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                found = self.metrics()
            except OSError:  # not listening yet
                time.sleep(0.2)
                continue
            if ready(found):
                return found
            time.sleep(0.1)
        status = urllib.request.urlopen(f"http://127.0.0.1:{self.port}/status.json", timeout=5)
        pytest.fail(f"not within {seconds} s: {what}; agent status: {status.read()[:3000]!r}")


def up(found: dict, device: str, kind: str) -> float | None:
    return get(found, "erozgar_device_up", device=device, kind=kind)


def errors(found: dict, device: str) -> float:
    return sum(
        v
        for (name, labels), v in found.items()
        if name == "erozgar_device_poll_errors_total" and ("device", device) in labels
    )


def agent_config(ports: dict[str, int], state_dir: str, **extra: Any) -> dict:
    def timeout(name: str) -> float:
        # the faulty devices' timeouts are short, to see faults fast; the good ones' are not,
        # so a loaded box (the suite runs two workers) does not time them out
        return 0.4 if "fault" in name else 0.9

    def snmp(name: str, port: int) -> dict:
        return {
            "name": name,
            "address": f"127.0.0.1:{port}",
            "community": COMMUNITY,
            "interval": 1,
            "timeout": timeout(name),
            "retries": 0,
        }

    def modbus(name: str, port: int) -> dict:
        return {
            "name": name,
            "address": f"127.0.0.1:{port}",
            "interval": 1,
            "timeout": timeout(name),
            "retries": 0,
        }

    return {
        "site": {"id": "FLT-001"},
        "state_dir": state_dir,
        "snmp": [snmp("r-good", ports["r-good"]), snmp("r-fault", ports["r-fault"])],
        "modbus": [modbus("u-good", ports["u-good"]), modbus("u-fault", ports["u-fault"])],
        **extra,
    }


def start_agent(config: dict, directory: Path, env: dict[str, str] | None = None) -> tuple:
    path = directory / "agent.yml"
    path.write_text(yaml.safe_dump(config))
    port = closed_tcp_port()
    # Debug logging is verbose: to a file, so a full pipe never blocks the agent.
    with (directory / "agent.log").open("w") as log:
        process = subprocess.Popen(
            [
                require("erozgar-agent"),
                "-v",
                "run",
                "--config",
                str(path),
                "--listen",
                f"127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
        )
    process.log = directory / "agent.log"  # type: ignore[attr-defined]
    return port, process


def stop_agent(process: subprocess.Popen[str]) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    process.wait(timeout=15)
    return process.log.read_text()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def centre(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Centre]:
    loop = LoopThread()
    routers = {
        name: SimulatedRouter(name, [SimInterface("ether1", 1e9, RX_BPS, 1e6)], community=COMMUNITY)
        for name in ("r-good", "r-fault")
    }
    upses = {name: SimulatedUps("apc-smart-ups", load_w=300.0) for name in ("u-good", "u-fault")}
    ports = {
        name: loop.run(sim.start("127.0.0.1", 0))[1] for name, sim in {**routers, **upses}.items()
    }
    directory = tmp_path_factory.mktemp("faults")
    port, process = start_agent(agent_config(ports, str(directory)), directory)
    centre = Centre(loop, port, process, **routers, **upses)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                found = centre.metrics()
            except OSError:
                time.sleep(0.2)
                continue
            if all(
                up(found, d, k) == 1
                for d, k in (
                    ("r-good", "snmp"),
                    ("r-fault", "snmp"),
                    ("u-good", "modbus"),
                    ("u-fault", "modbus"),
                )
            ):
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"centre not up: {stop_agent(process)[-3000:]}")
        yield centre
    finally:
        stderr = stop_agent(process)
        for sim in (*routers.values(), *upses.values()):
            loop.run(sim.stop())
        loop.close()
    assert "Traceback" not in stderr, stderr[-5000:]
    assert COMMUNITY not in stderr  # debug logging included


def do(centre: Centre, action: Callable[[], Any]) -> None:
    """Run `action` on the simulators' loop; a coroutine it returns is awaited there."""
    outcome = centre.loop.call(action)
    if asyncio.iscoroutine(outcome):
        centre.loop.run(outcome)


def survive(
    centre: Centre,
    device: str,
    kind: str,
    reason: str,
    start: Callable[[], Any],
    end: Callable[[], Any],
) -> None:
    """Inject a fault into `device`, check it alone is down for `reason`, end it, see it back."""
    good = {"snmp": "r-good", "modbus": "u-good"}
    before = centre.metrics()
    good_errors = {name: errors(before, name) for name in good.values()}
    do(centre, start)
    try:
        found = centre.wait(
            lambda f: (
                up(f, device, kind) == 0
                and get(f, "erozgar_device_down_reason", device=device, reason=reason) == 1
            ),
            f"{device} down with reason {reason}",
        )
        time.sleep(1.5)  # a few more polls of everyone during the fault
        found = centre.metrics()
        assert up(found, device, kind) == 0
        # What the silent device last said is not true now: none of it is exported.
        reported = "erozgar_interface_" if kind == "snmp" else "erozgar_ups_status"
        stale = [
            n for n, labels in found if n.startswith(reported) and ("device", device) in labels
        ]
        assert not stale, stale
        for other_kind, other in good.items():
            assert up(found, other, other_kind) == 1, other
            assert errors(found, other) == good_errors[other], f"{other} noticed {device}'s fault"
    finally:
        do(centre, end)
    failed_at_end = errors(centre.metrics(), device)
    found = centre.wait(lambda f: up(f, device, kind) == 1, f"{device} back")
    assert errors(found, device) <= failed_at_end + 1, "took more than one interval to recover"
    if kind == "snmp":  # the rate comes back true (no spike from the gap)
        rate = get(
            centre.wait(
                lambda f: (
                    get(
                        f,
                        "erozgar_interface_receive_bytes_per_second",
                        device=device,
                        interface="ether1",
                        role="lan",
                    )
                    is not None
                ),
                "rate",
            ),
            "erozgar_interface_receive_bytes_per_second",
            device=device,
            interface="ether1",
            role="lan",
        )
        assert rate == pytest.approx(RX_BPS / 8, rel=RATE_TOLERANCE)


def test_snmp_device_stops_answering(centre: Centre) -> None:
    router = centre.peers["r-fault"]
    survive(
        centre,
        "r-fault",
        "snmp",
        "timeout",
        lambda: setattr(router, "answering", False),
        lambda: setattr(router, "answering", True),
    )


def test_snmp_device_slower_than_the_timeout(centre: Centre) -> None:
    router = centre.peers["r-fault"]
    survive(
        centre,
        "r-fault",
        "snmp",
        "timeout",
        lambda: setattr(router, "delay", 0.7),
        lambda: setattr(router, "delay", 0.0),
    )


def test_slow_but_within_the_timeout_stays_up(centre: Centre) -> None:
    router, ups = centre.peers["r-fault"], centre.peers["u-fault"]
    before = centre.metrics()
    centre.loop.call(lambda: setattr(router, "delay", 0.15))
    centre.loop.call(lambda: setattr(ups.server, "delay", 0.05))  # per request; 3-4 per poll
    try:
        time.sleep(3)
        found = centre.metrics()
    finally:
        centre.loop.call(lambda: setattr(router, "delay", 0.0))
        centre.loop.call(lambda: setattr(ups.server, "delay", 0.0))
    assert up(found, "r-fault", "snmp") == 1 and up(found, "u-fault", "modbus") == 1
    assert errors(found, "r-fault") == errors(before, "r-fault")
    assert errors(found, "u-fault") == errors(before, "u-fault")
    assert get(found, "erozgar_device_poll_duration_seconds", device="r-fault") >= 0.15


def test_modbus_device_stops_answering(centre: Centre) -> None:
    ups = centre.peers["u-fault"]
    survive(
        centre,
        "u-fault",
        "modbus",
        "timeout",
        lambda: setattr(ups, "answering", False),
        lambda: setattr(ups, "answering", True),
    )


def test_modbus_device_slower_than_the_timeout(centre: Centre) -> None:
    server = centre.peers["u-fault"].server
    survive(
        centre,
        "u-fault",
        "modbus",
        "timeout",
        lambda: setattr(server, "delay", 0.6),
        lambda: setattr(server, "delay", 0.0),
    )


def test_modbus_connection_reset_mid_response(centre: Centre) -> None:
    server = centre.peers["u-fault"].server
    survive(
        centre,
        "u-fault",
        "modbus",
        "reset",
        lambda: setattr(server, "reset_mid_response", True),
        lambda: setattr(server, "reset_mid_response", False),
    )


def test_modbus_exception_for_some_registers(centre: Centre) -> None:
    ups = centre.peers["u-fault"]
    original = ups.server.register_source
    first_block = ups.profile.blocks[0].address

    def faulty(unit: int, function: int, address: int, count: int) -> list[int] | int | None:
        return 2 if address == first_block else original(unit, function, address, count)

    survive(
        centre,
        "u-fault",
        "modbus",
        "exception_2",
        lambda: setattr(ups.server, "register_source", faulty),
        lambda: setattr(ups.server, "register_source", original),
    )


def test_modbus_gateway_restarted(centre: Centre) -> None:
    ups = centre.peers["u-fault"]

    survive(centre, "u-fault", "modbus", "refused", ups.stop, ups.restart)


def _snmpd(binary: str, directory: Path, port: int) -> subprocess.Popen[bytes]:
    config = directory / "snmpd.conf"
    config.write_text(f"agentAddress udp:127.0.0.1:{port}\nrocommunity {COMMUNITY} 127.0.0.1\n")
    (directory / "persist").mkdir(exist_ok=True)
    return subprocess.Popen(
        [
            binary,
            "-f",
            "-Lo",
            "-C",
            "-c",
            str(config),
            f"--persistentDir={directory / 'persist'}",
            "-p",
            str(directory / "snmpd.pid"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_snmpd_restarted(tmp_path: Path) -> None:
    """net-snmp killed and started again on the same port: polling resumes by itself."""
    binary = require("snmpd")
    port = free_udp_port()
    snmpd = _snmpd(binary, tmp_path, port)
    config = {
        "site": {"id": "FLT-002"},
        "state_dir": str(tmp_path),
        "snmp": [
            {
                "name": "host",
                "address": f"127.0.0.1:{port}",
                "community": COMMUNITY,
                "interval": 1,
                "timeout": 0.4,
                "retries": 0,
            }
        ],
    }
    agent_port, process = start_agent(config, tmp_path)
    centre = Centre(LoopThread(), agent_port, process)
    try:
        centre.wait(lambda f: up(f, "host", "snmp") == 1, "snmpd polled", 30)
        snmpd.terminate()
        snmpd.wait(10)
        centre.wait(lambda f: up(f, "host", "snmp") == 0, "snmpd gone seen")
        failed = errors(centre.metrics(), "host")
        snmpd = _snmpd(binary, tmp_path, port)
        found = centre.wait(lambda f: up(f, "host", "snmp") == 1, "snmpd back", 30)
        # snmpd needs a moment to bind after exec; then the very next poll succeeds.
        assert errors(found, "host") <= failed + 3
        lo = get(
            centre.wait(
                lambda f: (
                    get(
                        f,
                        "erozgar_interface_receive_bytes_per_second",
                        device="host",
                        interface="lo",
                        role="lan",
                    )
                    is not None
                ),
                "lo rate",
            ),
            "erozgar_interface_receive_bytes_per_second",
            device="host",
            interface="lo",
            role="lan",
        )
        assert 0 <= lo < 1e8  # loopback traffic of a test box, not a wrap or a restart spike
    finally:
        stderr = stop_agent(process)
        centre.loop.close()
        snmpd.terminate()
        snmpd.wait(10)
    assert "Traceback" not in stderr


def test_clock_jumps_forward_and_back(tmp_path: Path) -> None:
    """The box's wall clock jumps an hour forward, then two hours back (libfaketime, monotonic
    left alone as the kernel does): polls go on at their pace, rates stay true, no crash."""
    offset, env = stepped_clock(tmp_path)
    loop = LoopThread()
    router = SimulatedRouter("r", [SimInterface("ether1", 1e9, RX_BPS, 1e6)], community=COMMUNITY)
    router_port = loop.run(router.start("127.0.0.1", 0))[1]
    config = {
        "site": {"id": "FLT-003"},
        "state_dir": str(tmp_path),
        "snmp": [
            {
                "name": "r",
                "address": f"127.0.0.1:{router_port}",
                "community": COMMUNITY,
                "interval": 1,
                "timeout": 0.4,
                "retries": 0,
            }
        ],
        "modbus": [{"name": "dead", "address": f"127.0.0.1:{closed_tcp_port()}", "interval": 0.5}],
    }
    agent_port, process = start_agent(config, tmp_path, env)
    centre = Centre(loop, agent_port, process)
    rate_of = {"device": "r", "interface": "ether1", "role": "lan"}
    try:
        centre.wait(
            lambda f: get(f, "erozgar_interface_receive_bytes_per_second", **rate_of) is not None,
            "first rate",
            30,
        )
        for jump in ("+3600", "-3600"):
            before = centre.metrics()
            offset.write_text(f"{jump}\n")
            # Polls keep coming (the dead device's failures count on) across the jump...
            found = centre.wait(
                lambda f, b=before: errors(f, "dead") >= errors(b, "dead") + 12,
                f"polling after a {jump} s jump",
            )
            assert up(found, "r", "snmp") == 1
            rate = get(found, "erozgar_interface_receive_bytes_per_second", **rate_of)
            assert rate == pytest.approx(RX_BPS / 8, rel=RATE_TOLERANCE)  # ...and rates stay true
        found = centre.wait(
            lambda f: (get(f, "erozgar_agent_clock_jumps_total") or 0) >= 2,
            "both jumps noticed",
            15,
        )
    finally:
        stderr = stop_agent(process)
        loop.run(router.stop())
        loop.close()
    assert process.returncode == 0, stderr[-3000:]
    assert "Traceback" not in stderr
    assert "the system clock jumped by +3600 s" in stderr
    assert "the system clock jumped by -7200 s" in stderr
