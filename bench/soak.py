"""Soak: the reference centre for `--minutes` with faults injected at random.

    /opt/erozgar-venv/bin/python bench/soak.py [--minutes 60] [--warmup 5] [--interval 2]
        [--seed N] [--json OUT]

The centre of bench/simulate.py (2 routers, 6 switches of 48 + 2 ports, 3 APC UPS on
Modbus/TCP, 2 probed ISP links) in its own process, every device polled every `--interval`
seconds (time sped up: the shipped intervals are 5-30 s). Faults come at random, a few devices
at a time, each for 2-4 intervals: a device goes silent or answers later than its timeout, an
SNMP device restarts (counters from 0), a Modbus answer is cut by a TCP reset or refused with an
exception, a Modbus gateway reboots (nothing listens meanwhile).

Measured on the agent's process: RSS (VmRSS) and open file descriptors (/proc/PID/fd) at the
end of the warm-up and at the end, each taken when every fault is over and every device
answered again; erozgar_agent_scheduler_stuck_jobs on every scrape; for each fault, that the
device's erozgar_device_last_success_timestamp_seconds passes the fault's end (it recovered by
itself) and which down reason the agent showed meanwhile; no rate above the fastest port.

Prints the figures as JSON and exits 1 when a verdict fails: RSS growth over `--rss-limit` %
(default 5), more than `--fd-slack` new descriptors, a stuck job, a fault not recovered from
within `--recover-seconds`, a false rate.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchlib import (
    agent,
    base_config,
    http_get,
    memory_kib,
    samples,
    simulator,
    wait_complete,
    write_result,
)

SNMP_FAULTS = ("silent", "slow", "restart")
MODBUS_FAULTS = ("silent", "slow", "reset", "exception", "gateway_restart")
# The fastest simulated port is 10 Gb/s; a rate from a counter reset taken for a wrap is
# around 2^64 bytes over one interval, far above this.
MAX_TRUE_RATE = 10e9 / 8 * 1.5
ALL_FAULTS = [("snmp", kind) for kind in SNMP_FAULTS] + [("modbus", k) for k in MODBUS_FAULTS]
RATE_METRICS = (
    "erozgar_interface_receive_bytes_per_second",
    "erozgar_interface_transmit_bytes_per_second",
)


@dataclass
class Fault:
    device: str
    kind: str
    started: float  # time.time(), comparable with last_success timestamps
    until: float  # time.monotonic() at which it ends
    ended: float | None = None
    reasons: set[str] = field(default_factory=set)
    recovered_after: float | None = None


class Control:
    """bench/simulate.py's fault socket (FaultControl)."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(str(path))
        self.file = self.sock.makefile("rwb")

    def send(self, device: str, fault: str, on: bool, seconds: float = 0.0) -> None:
        command = {"device": device, "fault": fault, "on": on, "seconds": seconds}
        self.file.write(json.dumps(command).encode() + b"\n")
        self.file.flush()
        answer = self.file.readline().decode().strip()
        if answer != "ok":
            raise RuntimeError(f"simulator refused {command}: {answer}")

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def fast_config(workdir: Path, devices: dict[str, Any], interval: float) -> dict[str, Any]:
    """The centre with every interval at `interval` s and timeouts that fit inside it."""
    timeout = interval / 2
    snmp = [{**d, "interval": interval, "timeout": timeout, "retries": 0} for d in devices["snmp"]]
    modbus = [
        {**d, "interval": interval, "timeout": timeout, "retries": 0} for d in devices["modbus"]
    ]
    links = [
        {**link, "interval": max(interval, 2), "count": 3, "spacing": 0.2, "timeout": 0.5}
        for link in devices["links"]
    ]
    return {
        **base_config(workdir, "SOAK-001"),
        "host": {"interval": max(interval, 5)},
        "snmp": snmp,
        "modbus": modbus,
        "links": links,
    }


class Soak:
    def __init__(self, args: argparse.Namespace, devices: dict[str, Any], control: Control):
        self.args = args
        self.control = control
        self.kinds = {d["name"]: "snmp" for d in devices["snmp"]}
        self.kinds.update({d["name"]: "modbus" for d in devices["modbus"]})
        self.random = random.Random(args.seed)
        self.active: dict[str, Fault] = {}
        self.waiting: dict[str, Fault] = {}  # ended, not yet recovered
        self.done: list[Fault] = []
        self.injected = dict.fromkeys(ALL_FAULTS, 0)
        self.stuck_max = 0.0
        self.false_rates: list[str] = []
        self.scrapes = 0
        self.next_fault = time.monotonic()

    # --- one step: scrape, end due faults, check recoveries, maybe start a fault ----------

    def step(self, port: int, inject: bool) -> None:
        text = http_get(f"http://127.0.0.1:{port}/metrics").decode()
        self.scrapes += 1
        for _, value in samples(text, "erozgar_agent_scheduler_stuck_jobs"):
            self.stuck_max = max(self.stuck_max, value)
        for name in RATE_METRICS:
            for labels, value in samples(text, name):
                if not 0 <= value <= MAX_TRUE_RATE:
                    self.false_rates.append(f"{name}{labels} {value:g}")
        for labels, value in samples(text, "erozgar_device_down_reason"):
            fault = self.active.get(labels["device"])
            if fault is not None and value == 1:
                fault.reasons.add(labels["reason"])
        up = {labels["device"]: v for labels, v in samples(text, "erozgar_device_up")}
        last = {
            labels["device"]: v
            for labels, v in samples(text, "erozgar_device_last_success_timestamp_seconds")
        }
        now = time.monotonic()
        for fault in list(self.active.values()):
            if now >= fault.until:
                self.end(fault)
        for device, fault in list(self.waiting.items()):
            assert fault.ended is not None
            if up.get(device) == 1 and last.get(device, 0) > fault.ended:
                fault.recovered_after = time.time() - fault.ended
                self.done.append(self.waiting.pop(device))
            elif time.time() - fault.ended > self.args.recover_seconds:
                self.done.append(self.waiting.pop(device))  # never recovered: a verdict fails
        if inject and now >= self.next_fault:
            self.start()
            self.next_fault = now + self.random.expovariate(1 / self.args.fault_every)

    def start(self) -> None:
        """A random free device gets a random fault among the ones injected least so far (so
        every kind gets its share, even in a short run)."""
        busy = set(self.active) | set(self.waiting)
        free = sorted(set(self.kinds) - busy)
        if not free or len(self.active) >= self.args.max_faults:
            return
        protocols = {self.kinds[device] for device in free}
        choices = [(proto, kind) for proto, kind in ALL_FAULTS if proto in protocols]
        least = min(self.injected[choice] for choice in choices)
        protocol, kind = self.random.choice([c for c in choices if self.injected[c] == least])
        device = self.random.choice([d for d in free if self.kinds[d] == protocol])
        self.injected[protocol, kind] += 1
        interval = self.args.interval
        length = 0.0 if kind == "restart" else self.random.uniform(2, 4) * interval
        # slow: later than the timeout (interval / 2), still inside the interval
        self.control.send(device, kind, True, 0.8 * interval if kind == "slow" else length)
        fault = Fault(device, kind, time.time(), time.monotonic() + length)
        self.active[device] = fault
        if kind == "restart":
            self.end(fault)

    def end(self, fault: Fault) -> None:
        if fault.kind != "restart":
            self.control.send(fault.device, fault.kind, False)
        fault.ended = time.time()
        self.waiting[fault.device] = self.active.pop(fault.device)

    def quiesce(self, port: int) -> None:
        """Inject no more; wait until every fault ran its course and its device answered."""
        while self.active or self.waiting:
            self.step(port, inject=False)
            time.sleep(0.5)

    # --- figures -------------------------------------------------------------------------

    def faults(self) -> dict[str, Any]:
        by_kind: dict[str, dict[str, Any]] = {}
        for fault in self.done:
            key = f"{self.kinds[fault.device]}:{fault.kind}"
            row = by_kind.setdefault(
                key, {"injected": 0, "recovered": 0, "reasons": {}, "recovery_seconds": []}
            )
            row["injected"] += 1
            for reason in fault.reasons:
                row["reasons"][reason] = row["reasons"].get(reason, 0) + 1
            if fault.recovered_after is not None:
                row["recovered"] += 1
                row["recovery_seconds"].append(fault.recovered_after)
        for row in by_kind.values():
            seconds = row.pop("recovery_seconds")
            row["recovery_seconds_median"] = statistics.median(seconds) if seconds else None
            row["recovery_seconds_max"] = max(seconds) if seconds else None
        return dict(sorted(by_kind.items()))


def measure(pid: int, port: int, count: int = 10) -> dict[str, float]:
    """Median RSS and the fewest descriptors over a few seconds of quiet running: probe
    sockets and reconnects come and go, a leaked descriptor stays (the spacing is off the
    2 s beat of the polls on purpose)."""
    rss, fds = [], []
    for _ in range(count):
        http_get(f"http://127.0.0.1:{port}/metrics")
        rss.append(memory_kib(pid)["VmRSS"] / 1024)
        fds.append(fd_count(pid))
        time.sleep(0.7)
    return {"rss_mib": statistics.median(rss), "fds": min(fds)}


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    sock = workdir / "faults.sock"
    with simulator(workdir, ["centre", "--control", str(sock)]) as (_, devices):
        n_devices = len(devices["snmp"]) + len(devices["modbus"])
        control = Control(sock)
        soak = Soak(args, devices, control)
        config = fast_config(workdir, devices, args.interval)
        with agent(workdir, config) as (process, port, _):
            wait_complete(port, n_devices, len(devices["links"]))
            started = time.monotonic()
            warm_until = started + args.warmup * 60
            end = started + args.minutes * 60
            warm: dict[str, float] | None = None
            fd_max = rss_max = 0.0
            while (now := time.monotonic()) < end:
                if warm is None and now >= warm_until:
                    soak.quiesce(port)
                    warm = measure(process.pid, port)
                    warm["minute"] = (time.monotonic() - started) / 60
                soak.step(port, inject=True)
                fd_max = max(fd_max, fd_count(process.pid))
                rss_max = max(rss_max, memory_kib(process.pid)["VmRSS"] / 1024)
                time.sleep(args.scrape_every)
            soak.quiesce(port)
            final = measure(process.pid, port)
            final["minute"] = (time.monotonic() - started) / 60
            alive = process.poll() is None
        control.close()
    log = (workdir / "agent.log").read_text(errors="replace")
    assert warm is not None, "--warmup must be shorter than --minutes"
    growth = 100 * (final["rss_mib"] - warm["rss_mib"]) / warm["rss_mib"]
    faults = soak.faults()
    unrecovered = [
        f"{f.device}:{f.kind}@{f.ended:.0f}" for f in soak.done if f.recovered_after is None
    ]
    verdicts = {
        "rss_growth_under_limit": growth < args.rss_limit,
        "fd_flat": final["fds"] - warm["fds"] <= args.fd_slack,
        "no_stuck_jobs": soak.stuck_max == 0,
        "every_fault_recovered": not unrecovered,
        "no_false_rates": not soak.false_rates,
        "agent_alive_no_traceback": alive and "Traceback" not in log,
    }
    return {
        "minutes": args.minutes,
        "warmup_minutes": args.warmup,
        "interval_seconds": args.interval,
        "seed": args.seed,
        "devices": {"snmp": len(devices["snmp"]), "modbus": len(devices["modbus"])},
        "scrapes": soak.scrapes,
        "rss_mib": {"warm": warm["rss_mib"], "end": final["rss_mib"], "max": rss_max},
        "rss_growth_percent": growth,
        "fds": {"warm": warm["fds"], "end": final["fds"], "max": fd_max},
        "stuck_jobs_max": soak.stuck_max,
        "faults_injected": len(soak.done),
        "faults_recovered": len(soak.done) - len(unrecovered),
        "faults": faults,
        "unrecovered": unrecovered,
        "false_rates": soak.false_rates[:20],
        "first_traceback": log[log.find("Traceback") - 300 :][:3000]
        if "Traceback" in log
        else None,
        "verdicts": verdicts,
        "pass": all(verdicts.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60, help="whole run, warm-up included")
    parser.add_argument("--warmup", type=float, default=5, help="minutes before the baseline")
    parser.add_argument("--interval", type=float, default=2, help="seconds between polls")
    parser.add_argument("--fault-every", type=float, default=3, help="mean seconds between")
    parser.add_argument("--max-faults", type=int, default=3, help="faulty devices at once")
    parser.add_argument("--recover-seconds", type=float, default=60)
    parser.add_argument("--scrape-every", type=float, default=1)
    parser.add_argument("--rss-limit", type=float, default=5, help="percent growth allowed")
    parser.add_argument("--fd-slack", type=int, default=3, help="new descriptors allowed")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--workdir", type=Path, help="keep agent.log and simulator.log here")
    args = parser.parse_args()
    if args.seed is None:
        args.seed = random.randrange(2**32)
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        result = run(args, args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
            result = run(args, Path(tmp))
    write_result(args.json, result)
    raise SystemExit(0 if result["pass"] else 1)


if __name__ == "__main__":
    main()
