"""Benchmark 1: erozgar-agent's SNMP poll next to a prometheus-snmp-exporter if_mib scrape.

Both sides read the same snmpsim-data recordings, served by one snmpsim per recording on
loopback under the community `public` (a copy named public.snmprec): by default cisco-c3560
(57 interfaces) and zte-zrx10, a ZTE ZXR10 9908 chassis switch with 221 interfaces (216
Ethernet ports; 5 rows without 64-bit counters, which the agent reads in 32 bits). Others
with hundreds: network/appliance/cisco-unknown-01 (Catalyst 6509, 459 interfaces, 110 of them
Ethernet), network/switch/h3c-comware-lsq1wcmd0-2509p61 (1,317).

    /opt/erozgar-venv/bin/python bench/snmp_vs_exporter.py [--rounds 20] [--json FILE]
        [--recording network/switch/cisco-c3560 ...]   (paths under snmpsim_data/data)
        [--suite v2c --suite SHA/AES-128 ...]          (default: v2c and every v3 suite)

Suites: v2c, and SNMPv3 authPriv with SHA/AES-128, SHA-256/AES-128 and SHA-256/AES-256, the
same snmpsim serving the recording to a v3 user per suite (context `public`) and the exporter
reading it through a copy of the if_mib module with that user's auth (snmp_exporter 0.21 takes
SHA256, and AES-256 as AES256C, the Reeder key extension the agent's AES-256 is; benchlib.py).
Every exporter scrape discovers the engine again (one packet more than v2c); the agent keeps
the engine ID and its boots and time across polls, as the daemon does.

Per recording and suite, N rounds in one run, A/B alternated (the exporter first in odd rounds, the
agent first in even ones): one exporter scrape and one agent poll each. The agent polls as the
daemon does between name refreshes: one collector kept across polls, the name table of its
first poll passed back in. Both read the same values (interface names, status, speed, in/out
octets, errors, discards); the script checks they agree row by row.

CPU: the agent's is time.process_time around its poll in this process; the exporter's is
the sum over its threads of /proc/PID/task/TID/schedstat (nanoseconds) around its scrape,
because utime+stime in /proc/PID/stat counts 10 ms ticks, too coarse for one small scrape;
the utime+stime total over all scrapes is printed beside it as a cross-check. Both come from
the kernel's per-thread run time. snmpsim is slow (Python), so wall time says little.

The exporter keeps its module's settings (the if_mib module sets none: 5 s per request, 3
retries, max_repetitions 25). snmpsim answers each request within milliseconds, so even a
1,317-port scrape of about 8 s sees no timeout; the output gives the retried packets of both
sides and the slowest scrape, so a timeout, which would add packets, shows.

Needs, besides the test extra (snmpsim, snmpsim-data):
    apt-get install -y prometheus-snmp-exporter python3-gdbm      (Debian 12: 0.21.0)
and the if_mib module bench/snmp_exporter_if_mib.yml (a copy of the shared reference
../shared/bench/snmp_exporter_if_mib.yml, kept here so a clean clone runs it; or --exporter-config).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncGenerator, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from benchlib import (
    V3_USERS,
    SnmpV3User,
    cpu_seconds,
    free_port,
    recording_source,
    snmpsim,
    spread,
    stop,
)

from collectors.readings import InterfaceNames, SnmpReading
from collectors.snmp.client import SnmpSessions, UsmAuth
from collectors.snmp.collector import SnmpCollector

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "bench" / "snmp_exporter_if_mib.yml"
RECORDINGS = ("network/switch/cisco-c3560", "network/switch/zte-zrx10")
CPU_TARGET, PACKETS_TARGET = 1.0, 0.5  # agent/exporter ratios, issue 7 item 1, issue 12 item 1
CONTEXT = "public"  # the v3 context name: snmpsim serves the recording of that file name
# snmp_exporter 0.21 defaults for a module that sets none (config/config.go)
EXPORTER_DEFAULTS = {"timeout": "5s", "retries": 3, "max_repetitions": 25}
FIELDS = ("name", "oper_up", "speed_bps", "in_octets", "out_octets", "in_errors",
          "out_errors", "in_discards", "out_discards")  # fmt: skip


def thread_cpu_seconds(pid: int) -> float:
    """Run time of all threads of a process, in seconds (first field of each schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except FileNotFoundError:  # a thread that ended since the listing
            continue
    return total / 1e9


@contextmanager
def exporter(binary: str, config: Path) -> Iterator[tuple[int, int]]:
    """prometheus-snmp-exporter on loopback; yields its PID and HTTP port."""
    port = free_port()
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--web.listen-address={HOST}:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield process.pid, port
    finally:
        stop(process)


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=300) as answer:
        return str(answer.read().decode())


def exporter_scrape(pid: int, url: str) -> tuple[float, str]:
    """One scrape: the exporter's CPU seconds for it, and its body."""
    before = thread_cpu_seconds(pid)
    body = scrape(url)
    return thread_cpu_seconds(pid) - before, body


def usm(user: SnmpV3User) -> UsmAuth:
    return UsmAuth(user.name, user.auth, user.auth_key, user.priv, user.priv_key, CONTEXT)


async def agent_polls(
    port: int, user: SnmpV3User | None
) -> AsyncGenerator[tuple[float, SnmpReading], bool]:
    """The agent's side, all of it: one collector kept across polls as in the daemon, with the
    daemon's shared SnmpSessions (for v3: engine ID discovered on the first poll, then kept).
    The first poll walks the names; later ones pass its name table back in, unless the caller
    sends True (the refresh every name_cache_minutes). Yields (CPU seconds of this process,
    reading)."""
    sessions = SnmpSessions()
    collector = (
        SnmpCollector(HOST, port, "public", timeout=5, retries=1, sessions=sessions)
        if user is None
        else SnmpCollector(
            HOST, port, version="3", usm=usm(user), timeout=5, retries=1, sessions=sessions
        )
    )
    known: InterfaceNames | None = None
    try:
        while True:
            started = time.process_time()
            reading = await collector.poll(known)
            refresh = yield time.process_time() - started, reading
            known = None if refresh else reading.names
    finally:
        await collector.close()
        await sessions.close()


_SAMPLE = re.compile(r"^(\w+)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def exposition(body: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Samples by metric name: (labels, value)."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for line in body.splitlines():
        match = _SAMPLE.match(line)
        if match is None:
            continue
        labels = {
            key: re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], value)
            for key, value in _LABEL.findall(match[2] or "")
        }
        out.setdefault(match[1], []).append((labels, float(match[3])))
    return out


def scalar(samples: dict[str, list[tuple[dict[str, str], float]]], name: str) -> float:
    return samples[name][0][1] if name in samples else float("nan")


def exporter_rows(samples: dict[str, list[tuple[dict[str, str], float]]]) -> dict[int, dict]:
    """What the exporter says of each ifTable row, in the agent's terms (collector.py)."""
    columns: dict[int, dict[str, float]] = {}
    labels: dict[int, dict[str, str]] = {}
    for metric in ("ifIndex", "ifOperStatus", "ifAdminStatus", "ifSpeed", "ifHighSpeed",
                   "ifHCInOctets", "ifHCOutOctets", "ifInOctets", "ifOutOctets", "ifInErrors",
                   "ifOutErrors", "ifInDiscards", "ifOutDiscards"):  # fmt: skip
        for found, value in samples.get(metric, []):
            index = int(found["ifIndex"])
            columns.setdefault(index, {})[metric] = value
            labels.setdefault(index, found)
    rows = {}
    for index, row in columns.items():
        if not {"ifIndex", "ifOperStatus", "ifAdminStatus", "ifSpeed"} & row.keys():
            continue  # ifXTable-only rows, which the agent leaves out too
        hc = "ifHCInOctets" in row and "ifHCOutOctets" in row
        status = row.get("ifOperStatus")
        name = labels[index].get("ifName", "").strip() or labels[index].get("ifDescr", "").strip()
        rows[index] = {
            "name": name or f"if{index}",
            "oper_up": status == 1 if status is not None and 1 <= status <= 7 else None,
            "speed_bps": row["ifHighSpeed"] * 1e6 if row.get("ifHighSpeed") else row.get("ifSpeed"),
            "in_octets": row.get("ifHCInOctets" if hc else "ifInOctets"),
            "out_octets": row.get("ifHCOutOctets" if hc else "ifOutOctets"),
            "in_errors": row.get("ifInErrors"),
            "out_errors": row.get("ifOutErrors"),
            "in_discards": row.get("ifInDiscards"),
            "out_discards": row.get("ifOutDiscards"),
        }
    return rows


def disagreements(reading: SnmpReading, rows: dict[int, dict]) -> list[str]:
    """Where the agent's reading and the exporter's scrape differ; empty when they agree."""
    out = []
    agent = {sample.index: sample for sample in reading.interfaces}
    for index in sorted(agent.keys() ^ rows.keys()):
        out.append(f"ifIndex {index} only {'by the agent' if index in agent else 'exported'}")
    for index in sorted(agent.keys() & rows.keys()):
        sample, row = agent[index], rows[index]
        for field in FIELDS:
            mine, theirs = getattr(sample, field), row[field]
            if field == "name":
                same = mine in (theirs, f"{theirs}#{index}")  # the agent's unique names
            elif isinstance(mine, bool) or mine is None:
                same = mine == theirs
            else:  # the exporter's floats: a counter above 2**53 is rounded the same way
                same = theirs is not None and float(mine) == theirs
            if not same:
                out.append(f"ifIndex {index} {field}: agent {mine!r}, exporter {theirs!r}")
    return out


def module_settings(config: Path) -> dict[str, Any]:
    module = yaml.safe_load(config.read_text())["if_mib"]
    return {key: module.get(key, default) for key, default in EXPORTER_DEFAULTS.items()}


def module_name(user: SnmpV3User | None) -> str:
    return "if_mib" if user is None else f"if_mib_{user.name}"


def exporter_config(config: Path, users: Sequence[SnmpV3User], workdir: Path) -> Path:
    """The if_mib module as given, plus one copy per v3 user reading as that user."""
    module = yaml.safe_load(config.read_text())["if_mib"]
    modules = {"if_mib": module}
    modules |= {module_name(user): user.exporter_module(module, CONTEXT) for user in users}
    path = workdir / "snmp_exporter.yml"
    path.write_text(yaml.safe_dump(modules))
    return path


def wait_ready(url: str, what: str) -> None:
    """Scrape until the exporter reads the recording: snmpsim indexes it first (minutes for a
    big one); this also warms both up."""
    deadline = time.monotonic() + 300
    while True:
        try:
            if "ifOperStatus" in scrape(url):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            sys.exit(f"{what}: snmpsim or the exporter did not answer within 300 s")
        time.sleep(1)


async def measure(
    recording: str, users: Sequence[SnmpV3User | None], rounds: int, pid: int, http_port: int,
    workdir: Path,
) -> list[dict]:  # fmt: skip
    """Figures of one recording, per user (None: v2c), from one snmpsim serving them all."""
    v3 = [user for user in users if user is not None]
    results = []
    with snmpsim(workdir, recording_source(recording), v3) as (snmp_port,):
        base = f"http://{HOST}:{http_port}/snmp?target={HOST}:{snmp_port}&module="
        for user in users:
            url = base + module_name(user)
            wait_ready(url, f"{recording} over {suite_name(user)}")
            result = await compare(snmp_port, user, url, rounds, pid)
            results.append({"recording": recording, **result})
    return results


def suite_name(user: SnmpV3User | None) -> str:
    return "v2c" if user is None else f"v3 authPriv {user.suite}"


async def compare(snmp_port: int, user: SnmpV3User | None, url: str, rounds: int, pid: int) -> dict:
    """`rounds` A/B rounds plus one name refresh of the agent."""
    agent = agent_polls(snmp_port, user)
    _, first = await anext(agent)  # names walked; the daemon's first poll, not timed
    exporter_cpu: list[float] = []
    agent_cpu: list[float] = []
    bodies: list[dict[str, list[tuple[dict[str, str], float]]]] = []
    readings: list[SnmpReading] = []
    stat_before = cpu_seconds(pid)
    for number in range(rounds):
        for side in ("exporter", "agent") if number % 2 == 0 else ("agent", "exporter"):
            if side == "exporter":
                cpu, body = exporter_scrape(pid, url)
                exporter_cpu.append(cpu)
                bodies.append(exposition(body))
            else:
                cpu, reading = await agent.asend(False)
                agent_cpu.append(cpu)
                readings.append(reading)
    stat_total = cpu_seconds(pid) - stat_before
    refresh_cpu, refresh = await agent.asend(True)
    await agent.aclose()
    last, rows = readings[-1], exporter_rows(bodies[-1])
    packets = [scalar(b, "snmp_scrape_packets_sent") for b in bodies]
    agent_packets = [r.requests + r.retries for r in readings]
    exporter_figures = spread(exporter_cpu)
    agent_figures = spread(agent_cpu)
    paired = [mine / theirs for mine, theirs in zip(agent_cpu, exporter_cpu, strict=True)]
    return {
        "suite": suite_name(user),
        "rounds": rounds,
        "interfaces": {"agent": len(last.interfaces), "exporter": len(rows)},
        "disagreements": disagreements(last, rows),
        "exporter": {
            "packets": spread(packets),
            "retried": sum(scalar(b, "snmp_scrape_packets_retried") for b in bodies),
            "varbinds": scalar(bodies[-1], "snmp_scrape_pdus_returned"),
            "cpu_seconds": exporter_figures,
            "stat_cpu_seconds_total": stat_total,
            "slowest_scrape_seconds": max(
                scalar(b, "snmp_scrape_duration_seconds") for b in bodies
            ),
        },
        "agent": {
            "packets": spread([float(p) for p in agent_packets]),
            "retried": sum(r.retries for r in readings),
            "varbinds": last.varbinds,
            "cpu_seconds": agent_figures,
            "profile": last.profile,
            "names_refreshed_polls": sum(r.names_refreshed for r in readings),
        },
        "agent_names_walked": {
            "packets": refresh.requests + refresh.retries,
            "varbinds": refresh.varbinds,
            "cpu_seconds": refresh_cpu,
            "first_poll_packets": first.requests + first.retries,
        },
        "ratios": {
            "cpu": agent_figures["median"] / exporter_figures["median"],
            "cpu_per_round": spread(paired),
            "packets": statistics.median(agent_packets) / statistics.median(packets),
        },
    }


def verdict(ratio: float, target: float) -> str:
    return f"{'meets' if ratio <= target else 'MISSES'} the target of {target:.1f} or less"


def row(what: str, packets: str, varbinds: str, cpu: str, note: str) -> str:
    return f"  {what:<31} {packets:>9} {varbinds:>9} {cpu:>12} {note}"


def packets_text(figures: dict[str, float]) -> str:
    if figures["min"] == figures["max"]:
        return f"{figures['median']:.0f}"
    return f"{figures['median']:.0f} ({figures['min']:.0f}-{figures['max']:.0f})"


def report(result: dict, exporter_version: str, settings: dict[str, Any]) -> list[str]:
    """The figures of one recording over one suite as printed (and kept in RESULTS.md)."""
    seen = result["interfaces"]
    exp, agent, walked, ratios = (
        result["exporter"], result["agent"], result["agent_names_walked"], result["ratios"]
    )  # fmt: skip
    count = (
        f"{seen['agent']} interfaces seen by both sides"
        if seen["agent"] == seen["exporter"]
        else f"interfaces DIFFER: the agent saw {seen['agent']}, the exporter {seen['exporter']}"
    )
    differ = result["disagreements"]
    values = (
        "names, status, speed, in/out octets, errors, discards agree row by row"
        if not differ
        else f"{len(differ)} values DIFFER, first: {'; '.join(differ[:3])}"
    )
    ec, ac, per_round = exp["cpu_seconds"], agent["cpu_seconds"], ratios["cpu_per_round"]
    stat = exp["stat_cpu_seconds_total"] / result["rounds"]
    return [
        "",
        f"{result['recording']} over {result['suite']}, {result['rounds']} rounds A/B alternated "
        "(exporter first in "
        f"odd rounds): {count}; {values}",
        f"  {'per poll or scrape':<31} {'packets':>9} {'varbinds':>9} {'CPU-s median':>12} "
        "IQR (min-max)",
        row(f"snmp_exporter {exporter_version} if_mib", packets_text(exp["packets"]),
            f"{exp['varbinds']:.0f}", f"{ec['median']:.4f}",
            f"{ec['q1']:.4f}-{ec['q3']:.4f} ({ec['min']:.4f}-{ec['max']:.4f})"),
        row("erozgar agent, names cached", packets_text(agent["packets"]), str(agent["varbinds"]),
            f"{ac['median']:.4f}",
            f"{ac['q1']:.4f}-{ac['q3']:.4f} ({ac['min']:.4f}-{ac['max']:.4f})"),
        row("erozgar agent, names walked", str(walked["packets"]), str(walked["varbinds"]),
            f"{walked['cpu_seconds']:.4f}", "one poll, the refresh every name_cache_minutes"),
        row("ratio agent/exporter", f"{ratios['packets']:.2f}", "",
            f"{ratios['cpu']:.2f}",
            f"ratio of medians; per round {per_round['q1']:.2f}-{per_round['q3']:.2f}"),
        f"  CPU ratio {ratios['cpu']:.2f}: {verdict(ratios['cpu'], CPU_TARGET)}; packets "
        f"ratio {ratios['packets']:.2f}: {verdict(ratios['packets'], PACKETS_TARGET)}",
        f"  retried packets: exporter {exp['retried']:.0f}, agent {agent['retried']}. Exporter "
        f"module: timeout {settings['timeout']} per request, {settings['retries']} retries, "
        f"max_repetitions {settings['max_repetitions']}; slowest scrape "
        f"{exp['slowest_scrape_seconds']:.2f} s; its utime+stime (10 ms ticks) {stat:.4f} "
        f"CPU-s per scrape. Agent: health profile {agent['profile']}; cached polls that "
        f"walked the names anyway: {agent['names_refreshed_polls']}",
    ]  # fmt: skip


def exporter_version(binary: str) -> str:
    done = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    match = re.search(r"version (\S+)", done.stdout + done.stderr)
    return match[1] if match else "(unknown version)"


def suites(names: Sequence[str] | None) -> list[SnmpV3User | None]:
    """v2c (None) and the v3 users, by suite name ("v2c", "SHA/AES-128", ...)."""
    known: dict[str, SnmpV3User | None] = {"v2c": None} | {u.suite: u for u in V3_USERS}
    unknown = set(names or ()) - known.keys()
    if unknown:
        sys.exit(f"unknown suite {sorted(unknown)}: choose from {list(known)}")
    return [known[name] for name in names or known]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="A/B rounds per recording")
    parser.add_argument(
        "--recording", action="append", help=f"under snmpsim_data/data (default: {RECORDINGS})"
    )
    parser.add_argument(
        "--suite", action="append",
        help=f"v2c or a v3 suite, {[u.suite for u in V3_USERS]} (default: all)",
    )  # fmt: skip
    parser.add_argument("--exporter-config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    binary = shutil.which("prometheus-snmp-exporter")
    if binary is None:
        sys.exit("apt-get install -y prometheus-snmp-exporter")
    if not Path("/proc/self/schedstat").exists():
        sys.exit("needs /proc/PID/task/TID/schedstat (a Linux kernel with CONFIG_SCHED_INFO)")
    settings = module_settings(args.exporter_config)
    version = exporter_version(binary)
    users = suites(args.suite)
    root = Path(tempfile.mkdtemp(prefix="erozgar-bench-"))
    root.chmod(0o755)  # snmpsim reads its recording as nobody
    results = []
    try:
        config = exporter_config(args.exporter_config, [u for u in users if u], root)
        with exporter(binary, config) as (pid, http_port):
            for number, recording in enumerate(args.recording or RECORDINGS):
                workdir = root / str(number)
                results += asyncio.run(
                    measure(recording, users, args.rounds, pid, http_port, workdir)
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    lines = [
        "CPU-seconds and SNMP packets per poll of the agent and per scrape of "
        f"prometheus-snmp-exporter {version} (if_mib), same snmpsim recordings, one run.",
        "CPU: the agent's from time.process_time, the exporter's from the run time of its "
        "threads (/proc/PID/task/*/schedstat).",
    ]
    for result in results:
        lines += report(result, version, settings)
    print("\n".join(lines))
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {"exporter_version": version, "exporter_module": settings, "recordings": results},
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
