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

`--snmp-v3 SUITE` (e.g. SHA-256/AES-128): the two routers answer over SNMPv3 authPriv instead,
as one snmpsim (10-interface huawei-acu2 recording, on 127.0.0.1 and 127.0.0.2) with that user;
their WAN and uplink roles move to its XGigabitEthernet0/0/1 and 0/0/2. The recording's counters
stand still, so the rates are 0; the poll's work (packets, crypto, decoding) is a router's.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchlib import (
    V3_USERS,
    SnmpV3User,
    agent,
    base_config,
    cpu_seconds,
    http_get,
    memory_kib,
    recording_source,
    series_count,
    simulator,
    snmpsim,
    spread,
    wait_complete,
    wait_snmp,
    write_result,
)

SCRAPE_EVERY = 15.0
V3_ROUTER_RECORDING = "network/router/huawei-acu2"
V3_ROUTER_PORTS = ("XGigabitEthernet0/0/1", "XGigabitEthernet0/0/2")  # wan, uplink


def config(workdir: Path, devices: dict[str, Any]) -> dict[str, Any]:
    return {
        **base_config(workdir, "BENCH-CENTRE"),
        "snmp": devices["snmp"],
        "modbus": devices["modbus"],
        "links": devices["links"],
    }


def v3_routers(devices: dict[str, Any], user: SnmpV3User, ports: list[int]) -> dict[str, Any]:
    """The centre with its routers (the first two SNMP devices) answering over SNMPv3, their
    ports and the links on them renamed to the recording's."""
    hosts = ("127.0.0.1", "127.0.0.2")
    renamed: dict[tuple[str, str], str] = {}
    moved = []
    for router, host, port in zip(devices["snmp"][:2], hosts, ports, strict=True):
        keep = {k: v for k, v in router.items() if k not in ("address", "community")}
        interfaces = []
        for interface, name in zip(router["interfaces"], V3_ROUTER_PORTS, strict=True):
            renamed[router["name"], interface["name"]] = name
            interfaces.append({**interface, "name": name})
        moved.append({**keep, "address": f"{host}:{port}", "interfaces": interfaces,
                      **user.agent_keys("public")})  # fmt: skip
    links = [
        {**link, "interface": renamed.get((link["device"], link["interface"]), link["interface"])}
        for link in devices["links"]
    ]
    return {**devices, "snmp": moved + devices["snmp"][2:], "links": links}


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
    parser.add_argument("--snmp-v3", choices=[user.suite for user in V3_USERS])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-centre-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        workdir.chmod(0o755)  # snmpsim reads its recording as nobody
        _, devices = stack.enter_context(simulator(workdir, ["centre"]))
        if args.snmp_v3:
            user = next(user for user in V3_USERS if user.suite == args.snmp_v3)
            source = recording_source(V3_ROUTER_RECORDING)
            hosts = ("127.0.0.1", "127.0.0.2")
            ports = stack.enter_context(snmpsim(workdir / "snmpsim", source, [user], hosts))
            for host, port in zip(hosts, ports, strict=True):
                wait_snmp(host, port)
            devices = v3_routers(devices, user, ports)
        result = {
            "startup": startup(workdir, devices, args.starts),
            "footprint": footprint(workdir, devices, args.minutes, args.settle),
            "devices": {
                "snmp": len(devices["snmp"]),
                "modbus": len(devices["modbus"]),
                "links": len(devices["links"]),
            },
            "routers_snmp_v3": args.snmp_v3,
        }
    write_result(args.json, result)


if __name__ == "__main__":
    main()
