"""CPU cost of probe runs: `python bench/probe_cpu.py [runs]` (loopback only).

Prints CPU-seconds per 5-packet probe run for ICMP echo and TCP connect to 127.0.0.1, measured
with time.process_time() over many runs in one event loop, as the daemon runs them.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time

from collectors.probe import ProbeTarget, probe


async def cost(target: ProbeTarget, runs: int) -> float:
    started = time.process_time()
    for _ in range(runs):
        reading = await probe(target, count=5, spacing=0.001, timeout=1)
        assert reading.received == 5, reading
    return (time.process_time() - started) / runs


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        icmp = asyncio.run(cost(ProbeTarget("lo", "127.0.0.1"), runs))
        tcp = asyncio.run(cost(ProbeTarget("lo", "127.0.0.1", port), runs))
    print(f"{runs} runs of 5 packets: icmp {icmp * 1000:.2f} ms CPU/run, tcp {tcp * 1000:.2f} ms")


if __name__ == "__main__":
    main()
