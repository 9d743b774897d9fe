"""Wire cost and CPU per poll: erozgar-agent's SNMP collector next to snmp_exporter's if_mib.

Both read the cisco-c3560 recording of snmpsim-data, served by one snmpsim on loopback under
the community `public` (a copy named public.snmprec), in one run:

    /opt/erozgar-venv/bin/python bench/snmp_vs_exporter.py [--polls 20]

Prints figures, not pass/fail. Needs, besides the test extra (snmpsim, snmpsim-data):
    apt-get install -y prometheus-snmp-exporter python3-gdbm      (Debian 12: 0.21.0)
and the if_mib module at ../shared/bench/snmp_exporter_if_mib.yml (or --exporter-config).

The agent is measured in this process (time.process_time around its polls, one shared
SnmpEngine as in the daemon); the exporter by its /proc/PID/stat utime+stime around its scrapes.
snmpsim is slow, so wall time says little; CPU time of each side is what is compared.
"""

from __future__ import annotations

import argparse
import asyncio
import bz2
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from pysnmp.hlapi.v3arch.asyncio import SnmpEngine

from collectors.readings import SnmpReading
from collectors.snmp.collector import SnmpCollector

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT.parent / "shared" / "bench" / "snmp_exporter_if_mib.yml"
RECORDING = "network/switch/cisco-c3560"


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def start_snmpsim(root: Path, port: int) -> subprocess.Popen[bytes]:
    spec = importlib.util.find_spec("snmpsim_data")
    if spec is None or spec.origin is None:
        sys.exit("pip install snmpsim snmpsim-data first")
    source = Path(spec.origin).parent / "data" / f"{RECORDING}.snmprec.bz2"
    data, cache = root / "data", root / "cache"
    data.mkdir(mode=0o755)
    cache.mkdir(mode=0o777)
    cache.chmod(0o777)
    target = data / "public.snmprec"
    target.write_bytes(bz2.decompress(source.read_bytes()))
    target.chmod(0o644)
    binary = shutil.which("snmpsim-command-responder", path=str(Path(sys.executable).parent))
    if binary is None:
        sys.exit("snmpsim-command-responder not found next to this Python")
    return subprocess.Popen(
        [binary, f"--data-dir={data}", f"--cache-dir={cache}",
         f"--agent-udpv4-endpoint={HOST}:{port}",
         "--process-user=nobody", "--process-group=nogroup"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=60) as answer:
        return answer.read().decode()


def exporter_value(body: str, name: str) -> float:
    match = re.search(rf"^{name}(?:{{[^}}]*}})? (\S+)$", body, re.MULTILINE)
    return float(match.group(1)) if match else float("nan")


async def agent_polls(port: int, polls: int) -> tuple[SnmpReading, list[tuple[float, SnmpReading]]]:
    """One fresh poll (names walked), then `polls` with the name table cached, as the agent
    runs between name refreshes; each with the CPU seconds this process spent on it."""
    engine = SnmpEngine()
    collector = SnmpCollector(HOST, port, "public", timeout=5, retries=1, engine=engine)
    try:
        fresh = await collector.poll()
        timed = []
        for _ in range(polls):
            started = time.process_time()
            reading = await collector.poll(fresh.names)
            timed.append((time.process_time() - started, reading))
        started = time.process_time()
        refresh = await collector.poll()
        timed.insert(0, (time.process_time() - started, refresh))
        return fresh, timed
    finally:
        engine.close_dispatcher()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=20)
    parser.add_argument("--exporter-config", type=Path, default=DEFAULT_CONFIG)
    args = parser.parse_args()
    exporter_binary = shutil.which("prometheus-snmp-exporter")
    if exporter_binary is None:
        sys.exit("apt-get install -y prometheus-snmp-exporter")
    root = Path(tempfile.mkdtemp(prefix="erozgar-bench-"))
    root.chmod(0o755)
    snmp_port, http_port = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM)
    snmpsim = start_snmpsim(root, snmp_port)
    exporter = subprocess.Popen(
        [exporter_binary, f"--config.file={args.exporter_config}",
         f"--web.listen-address={HOST}:{http_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://{HOST}:{http_port}/snmp?target={HOST}:{snmp_port}&module=if_mib"
    try:
        deadline = time.monotonic() + 120
        while True:  # snmpsim indexes the recording first; the exporter must come up too
            try:
                if "ifHCInOctets" in scrape(url):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                sys.exit("snmpsim or the exporter did not come up within 120 s")
            time.sleep(1)
        before = cpu_seconds(exporter.pid)
        bodies = [scrape(url) for _ in range(args.polls)]
        exporter_cpu = (cpu_seconds(exporter.pid) - before) / args.polls
        fresh, timed = asyncio.run(agent_polls(snmp_port, args.polls))
    finally:
        for process in (exporter, snmpsim):
            process.terminate()
            process.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)

    body = bodies[-1]
    cached = [reading for _, reading in timed[1:]]
    cached_cpu = sum(cpu for cpu, _ in timed[1:]) / len(cached)
    print(f"cisco-c3560 recording via snmpsim, {args.polls} polls each, one run")
    print(
        f"snmp_exporter 0.21 if_mib : {exporter_value(body, 'snmp_scrape_packets_sent'):.0f} "
        f"packets ({exporter_value(body, 'snmp_scrape_packets_retried'):.0f} retried), "
        f"{exporter_value(body, 'snmp_scrape_pdus_returned'):.0f} varbinds, "
        f"{exporter_cpu:.3f} CPU-s per scrape"
    )
    print(
        f"erozgar agent, names cached: {cached[-1].requests + cached[-1].retries} packets "
        f"({cached[-1].retries} retried), {cached[-1].varbinds} varbinds, "
        f"{cached_cpu:.3f} CPU-s per poll ({len(cached[-1].interfaces)} interfaces, "
        f"health of profile {cached[-1].profile})"
    )
    refresh_cpu, refresh = timed[0]
    print(
        f"erozgar agent, names walked: {refresh.requests + refresh.retries} packets, "
        f"{refresh.varbinds} varbinds, {refresh_cpu:.3f} CPU-s (every name_cache_minutes; "
        f"first poll: {fresh.requests} packets)"
    )


if __name__ == "__main__":
    main()
