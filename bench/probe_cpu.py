"""CPU cost of probe runs: `python bench/probe_cpu.py [runs]` (loopback only).

Prints CPU-seconds per 5-packet probe run for ICMP echo and TCP connect to 127.0.0.1, and per
DNS question (to dnsmasq) and per HTTP GET (to Python's http.server), measured with
time.process_time() over many runs in one event loop, as the daemon runs them. The DNS and
HTTP servers run as their own processes, so only the probe's CPU is counted.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable

from collectors.dns import Resolver, query
from collectors.http_probe import HttpTarget, fetch_url
from collectors.probe import ProbeTarget, probe


async def cost(run: Callable[[], Awaitable[bool]], runs: int) -> float:
    started = time.process_time()
    for _ in range(runs):
        assert await run()
    return (time.process_time() - started) / runs


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(command: list[str], ready: Callable[[], bool]) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while not ready():
        assert time.monotonic() < deadline, f"{command[0]} did not start"
        time.sleep(0.05)
    return process


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    figures = []
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        for name, target in (("icmp", ProbeTarget("lo", "127.0.0.1")),
                             ("tcp", ProbeTarget("lo", "127.0.0.1", port))):  # fmt: skip

            async def run(target: ProbeTarget = target) -> bool:
                reading = await probe(target, count=5, spacing=0.001, timeout=1)
                return reading.received == 5

            figures.append(f"{name} {asyncio.run(cost(run, runs)) * 1000:.2f} ms")
    dns_port, http_port = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM)
    resolver = Resolver("local", "127.0.0.1", dns_port)

    async def ask() -> bool:
        return (await query(resolver, "probe.test", "A")).ok

    async def get() -> bool:
        page = await fetch_url(HttpTarget("local", f"http://127.0.0.1:{http_port}/"))
        return page.status == 200

    dnsmasq = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
    servers = [
        serve(
            [dnsmasq, "--keep-in-foreground", "--no-resolv", "--no-hosts", "--pid-file=",
             f"--port={dns_port}", "--listen-address=127.0.0.1", "--bind-interfaces",
             "--address=/probe.test/192.0.2.10"],
            lambda: asyncio.run(ask()),
        ),
        serve(
            [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(http_port),
             "--directory", tempfile.mkdtemp()],  # an empty listing
            lambda: asyncio.run(get()),
        ),
    ]  # fmt: skip
    try:
        figures.append(f"dns {asyncio.run(cost(ask, runs)) * 1000:.2f} ms")
        figures.append(f"http {asyncio.run(cost(get, runs)) * 1000:.2f} ms")
    finally:
        for server in servers:
            server.terminate()
            server.wait(5)
    print(f"{runs} runs (5 packets each for icmp, tcp): CPU per run: {', '.join(figures)}")


if __name__ == "__main__":
    main()
