"""A reference centre's footprint (benchmark 2) and its start-up time (benchmark 6).

    /opt/erozgar-venv/bin/python bench/centre.py [--minutes 10] [--starts 5] [--json OUT]

The centre: 2 routers (8 ports, 15 s), 6 access switches (48 + 2 ports, 30 s), 3 APC UPS on
Modbus/TCP (5 s), 2 ISP links probed every 30 s (ICMP to two 127.0.0.x targets, TCP to one),
the host every 15 s: the shipped intervals. The simulators run in another process.

Start-up: from exec of `erozgar-agent run` to the first /metrics on which every device is up and
every link was probed (the first poll is jittered 0-2 s by design), `--starts` times.
Footprint: the agent's utime+stime (/proc/PID/stat) over `--minutes` of steady running while
/metrics is scraped every 15 s like Prometheus would, as a share of one core, per minute and
overall; peak RSS is VmHWM from /proc/PID/status at the end.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import (
    agent,
    base_config,
    cpu_seconds,
    http_get,
    memory_kib,
    series_count,
    simulator,
    spread,
    wait_complete,
    write_result,
)

SCRAPE_EVERY = 15.0


def config(workdir: Path, devices: dict[str, Any]) -> dict[str, Any]:
    return {
        **base_config(workdir, "BENCH-CENTRE"),
        "snmp": devices["snmp"],
        "modbus": devices["modbus"],
        "links": devices["links"],
    }


def startup(workdir: Path, devices: dict[str, Any], starts: int) -> dict[str, Any]:
    seconds = []
    n_devices = len(devices["snmp"]) + len(devices["modbus"])
    for _ in range(starts):
        with agent(workdir, config(workdir, devices)) as (_, port, started):
            wait_complete(port, n_devices, len(devices["links"]))
            seconds.append(time.perf_counter() - started)
    return {"seconds": spread(seconds) if seconds else None, "runs": seconds}


def footprint(
    workdir: Path, devices: dict[str, Any], minutes: float, settle: float
) -> dict[str, Any]:
    n_devices = len(devices["snmp"]) + len(devices["modbus"])
    with agent(workdir, config(workdir, devices)) as (process, port, _):
        text = wait_complete(port, n_devices, len(devices["links"]))
        time.sleep(settle)  # rates need a second poll of the 30 s switches
        text = http_get(f"http://127.0.0.1:{port}/metrics").decode()
        series = series_count(text)
        window = min(60.0, minutes * 60)
        cpu0, wall0 = cpu_seconds(process.pid), time.monotonic()
        last_cpu, last_wall = cpu0, wall0
        shares, next_scrape, end = [], wall0, wall0 + minutes * 60
        while (now := time.monotonic()) < end:
            if now >= next_scrape:
                http_get(f"http://127.0.0.1:{port}/metrics")
                next_scrape += SCRAPE_EVERY
            if now - last_wall >= window:
                cpu = cpu_seconds(process.pid)
                shares.append((cpu - last_cpu) / (now - last_wall))
                last_cpu, last_wall = cpu, now
            time.sleep(0.2)
        cpu, wall = cpu_seconds(process.pid), time.monotonic()
        memory = memory_kib(process.pid)
        text = http_get(f"http://127.0.0.1:{port}/metrics").decode()
        down = [line for line in text.splitlines() if line.startswith("erozgar_device_up{")
                and not line.endswith(" 1.0")]  # fmt: skip
    return {
        "minutes": (wall - wall0) / 60,
        "series": series,
        "cpu_share_of_one_core": (cpu - cpu0) / (wall - wall0),
        "cpu_share_per_window": spread(shares) if shares else None,
        "window_seconds": window,
        "peak_rss_mib": memory["VmHWM"] / 1024,
        "rss_end_mib": memory["VmRSS"] / 1024,
        "devices_down_at_end": down,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--settle", type=float, default=35, help="seconds before measuring")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-centre-") as tmp:
        workdir = Path(tmp)
        with simulator(workdir, ["centre"]) as (_, devices):
            result = {
                "startup": startup(workdir, devices, args.starts),
                "footprint": footprint(workdir, devices, args.minutes, args.settle),
                "devices": {
                    "snmp": len(devices["snmp"]),
                    "modbus": len(devices["modbus"]),
                    "links": len(devices["links"]),
                },
            }
    write_result(args.json, result)


if __name__ == "__main__":
    main()
