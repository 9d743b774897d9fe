"""Requests and wall time per poll: RTU at 9600 baud through a socat pty pair, and three UPS
behind one single-connection Modbus TCP gateway polled concurrently.

    /opt/erozgar-venv/bin/python bench/modbus_transports.py [polls]

The serial simulator delays each reply by the time request and reply take on a real 9600 8N1
line (a pty has no baud rate), so the RTU figures include wire time, not just loopback.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# the checkout, also when the venv's editable install predates simulators/ (like simulate.py)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collectors.modbus.collector import ModbusCollector
from collectors.modbus.profile import load_profile
from collectors.modbus.transport import GatewayPool, Link
from simulators.modbus_server import ModbusRtuSerialServer, ModbusTcpServer
from simulators.ups import SimulatedUps

PROFILE = load_profile("apc-smart-ups")


def report(name: str, seconds: list[float], requests: int) -> None:
    print(
        f"{name}: {len(seconds)} polls, {requests} requests per poll, wall time per poll "
        f"median {statistics.median(seconds) * 1000:.1f} ms, max {max(seconds) * 1000:.1f} ms"
    )


async def rtu(polls: int, sim_end: str, agent_end: str) -> None:
    ups = SimulatedUps()
    server = ModbusRtuSerialServer(ups.register_source, sim_end, baudrate=9600)
    await server.start()
    pool = GatewayPool()
    gateway = pool.gateway(Link("rtu", agent_end, baudrate=9600), timeout=1, retries=0, pause=0.05)
    collector = ModbusCollector.on_gateway(gateway, 1, PROFILE)
    times, requests = [], 0
    for _ in range(polls):
        started = time.perf_counter()
        reading = await collector.poll()
        times.append(time.perf_counter() - started)
        requests = reading.requests
    await pool.close()
    await server.stop()
    report("RTU 9600 8N1 via socat, pause 0.05 s", times, requests)


async def shared_gateway(polls: int) -> None:
    upses = [SimulatedUps(unit=u) for u in (1, 2, 3)]
    by_unit = {u.unit: u for u in upses}
    server = ModbusTcpServer(
        lambda unit, fc, a, c: by_unit[unit].register_source(unit, fc, a, c), max_connections=1
    )
    host, port = await server.start()
    pool = GatewayPool()
    link = Link("tcp", host, port)
    collectors = [
        ModbusCollector.on_gateway(pool.gateway(link, timeout=1, retries=0, pause=0), u, PROFILE)
        for u in (1, 2, 3)
    ]
    times, requests = [], 0
    for _ in range(polls):
        started = time.perf_counter()
        readings = await asyncio.gather(*(c.poll() for c in collectors))
        times.append(time.perf_counter() - started)
        requests = sum(r.requests for r in readings)
    await pool.close()
    await server.stop()
    report(
        f"3 UPS behind one single-connection TCP gateway (connections used: {server.connections})",
        times,
        requests,
    )


def main() -> None:
    polls = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    socat = shutil.which("socat")
    if socat is None:
        sys.exit("socat not found: apt-get install -y socat")
    with tempfile.TemporaryDirectory() as tmp:
        a, b = Path(tmp) / "ttyA", Path(tmp) / "ttyB"
        process = subprocess.Popen(
            [socat, f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
            stderr=subprocess.DEVNULL,
        )
        try:
            while not (a.exists() and b.exists()):
                time.sleep(0.02)
            asyncio.run(rtu(polls, str(a), str(b)))
        finally:
            process.terminate()
            process.wait()
    asyncio.run(shared_gateway(polls))


if __name__ == "__main__":
    main()
