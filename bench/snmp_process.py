"""Benchmark 1, whole process: the `erozgar-agent run` process polling an snmpsim recording
next to prometheus-snmp-exporter scraped at the same pace, both measured from /proc.

    /opt/erozgar-venv/bin/python bench/snmp_process.py [--rounds 6] [--interval 2] [--polls 15]
        [--recording network/switch/cisco-c3560] [--suite v2c --suite SHA/AES-128 ...] [--json F]

What a user's box sees: the agent's utime+stime (/proc/PID/stat) per poll, checks, metrics
and event loop included, against the exporter's per scrape, on one snmpsim serving the recording
to both (v2c and the v3 users of bench/snmp_vs_exporter.py).

Per suite, one agent process polls the device every `--interval` seconds (its shipped timeout
and retries, host readings once a day so only the device's polls run). Rounds are A/B alternated
(the exporter first in even rounds): an agent window, then an exporter window of `--polls`
intervals each. Outside its windows the agent is held with SIGSTOP, so the two never run at
once; after SIGCONT it makes its catch-up poll, and the window starts 0.75 interval after the
next poll starts (found by reading its /metrics), so no poll is in flight at either edge and
the window holds whole polls. The polls are counted from the agent's own /metrics
(erozgar_agent_scheduler_start_delay_seconds_count: every job start), read at both edges; the
exporter is scraped `--polls` times, once per interval.

Idle, subtracted: the same process doing everything but poll. For the agent, the same config
with the device's interval at one day (polled once at start, then idle), measured over a window
as long, with the same two /metrics reads; for the exporter, a window with no scrape. Both as
CPU-seconds per second times the window. utime+stime counts 10 ms ticks, so a window must hold
tens of ticks (the default: 15 polls); it also counts threads that ended, which a sum over
/proc/PID/task would miss (the agent's /metrics requests each run in a thread of their own).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchlib import (
    SnmpV3User,
    agent,
    base_config,
    cpu_seconds,
    http_get,
    recording_source,
    samples,
    snmpsim,
    spread,
)
from snmp_vs_exporter import (
    DEFAULT_CONFIG,
    HOST,
    exporter,
    exporter_config,
    exporter_version,
    module_name,
    scrape,
    suite_name,
    suites,
    wait_ready,
)

TARGETS = {"v2c": 0.3, "v3": 1.0}  # agent/exporter, issue 12 item 2
IDLE_INTERVAL = 86400.0  # seconds: the idle agent's device is polled once, at start
POLLS = "erozgar_agent_scheduler_start_delay_seconds_count"
PHASE = 0.75  # of an interval after a poll start: the window's edges, between two polls


def agent_config(workdir: Path, port: int, user: SnmpV3User | None, interval: float) -> dict:
    device: dict[str, Any] = {"name": "bench-switch", "address": f"{HOST}:{port}"}
    device |= {"community": "public"} if user is None else user.agent_keys("public")
    return {
        **base_config(workdir, "BENCH-PROCESS"),
        "host": {"interval": IDLE_INTERVAL},
        "snmp": [{**device, "interval": interval}],
    }


def polls(port: int) -> tuple[float, dict[str, float]]:
    """Job starts so far, and the device's up and latest poll duration, from its /metrics."""
    text = http_get(f"http://{HOST}:{port}/metrics").decode()
    device = {
        key: found[0][1] if (found := samples(text, f"erozgar_device_{name}")) else float("nan")
        for key, name in (("up", "up"), ("poll_seconds", "poll_duration_seconds"))
    }
    return samples(text, POLLS)[0][1], device


def wait_polls(port: int, count: float, timeout: float = 120) -> float:
    """Read /metrics until more than `count` jobs started; the time it was seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if polls(port)[0] > count:
                return time.monotonic()
        except (OSError, IndexError):  # not listening yet, or no job run yet
            pass
        time.sleep(0.05)
    raise RuntimeError(f"the agent on port {port} made no poll within {timeout:g} s")


def sleep_until(when: float) -> None:
    time.sleep(max(0.0, when - time.monotonic()))


def agent_window(pid: int, port: int, t0: float, seconds: float) -> dict[str, float]:
    """The agent's CPU and job starts from `t0` for `seconds`, read by /metrics at both edges."""
    sleep_until(t0)
    cpu0 = cpu_seconds(pid)
    before, _ = polls(port)
    sleep_until(t0 + seconds)
    after, device = polls(port)
    cpu1 = cpu_seconds(pid)
    return {"seconds": time.monotonic() - t0, "stat": cpu1 - cpu0, "jobs": after - before,
            **device}  # fmt: skip


def exporter_window(pid: int, url: str | None, interval: float, count: int) -> dict[str, float]:
    """CPU over `count` intervals with one scrape in each (none when `url` is None)."""
    t0 = time.monotonic()
    cpu0 = cpu_seconds(pid)
    for n in range(count):
        sleep_until(t0 + n * interval)
        if url is not None:
            scrape(url)
    sleep_until(t0 + count * interval)
    cpu1 = cpu_seconds(pid)
    return {"seconds": time.monotonic() - t0, "stat": cpu1 - cpu0,
            "polls": count if url else 0}  # fmt: skip


@contextmanager
def running(pid: int) -> Iterator[None]:
    """The agent runs only inside this block (SIGSTOP outside it)."""
    os.kill(pid, signal.SIGCONT)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGSTOP)


def device_polls(window: dict[str, float], idle: dict[str, float], interval: float) -> int:
    """The device's polls in an agent window: its job starts less those of the other jobs (the
    once-a-second service judgement). Their rate comes from the idle agent's window, as a whole
    number per poll interval (the service beat divides it), so the ticks of the edges do not
    add a fraction of a job."""
    per_interval = round(idle["jobs"] / idle["seconds"] * interval)
    return round(window["jobs"] - per_interval * window["seconds"] / interval)


def per_poll(windows: list[dict[str, float]], idle: dict[str, float]) -> list[float]:
    """CPU-seconds per poll of each window, the idle rate times its length subtracted."""
    rate = idle["stat"] / idle["seconds"]
    return [(w["stat"] - rate * w["seconds"]) / w["polls"] for w in windows]


def measure_suite(
    workdir: Path, snmp_port: int, user: SnmpV3User | None, exporter_pid: int, url: str,
    exporter_idle: dict[str, float], args: argparse.Namespace,
) -> dict[str, Any]:  # fmt: skip
    interval, count = args.interval, args.polls
    idle_dir, busy_dir = workdir / "idle", workdir / "busy"
    idle_dir.mkdir(parents=True)
    busy_dir.mkdir()
    with agent(idle_dir, agent_config(idle_dir, snmp_port, user, IDLE_INTERVAL)) as (p, port, _):
        wait_polls(port, 1)  # the host reading and the device's first poll
        time.sleep(interval)
        idle = agent_window(p.pid, port, time.monotonic(), interval * count * 2)
    agent_windows: list[dict[str, float]] = []
    exporter_windows: list[dict[str, float]] = []
    config = agent_config(busy_dir, snmp_port, user, interval)
    with agent(busy_dir, config) as (process, port, _):
        wait_polls(port, 2)  # the host reading, the first poll (names walked), one cached
        os.kill(process.pid, signal.SIGSTOP)
        try:
            for number in range(args.rounds):
                sides: list[Callable[[], None]] = [
                    lambda: exporter_windows.append(
                        exporter_window(exporter_pid, url, interval, count)
                    ),
                    lambda: agent_windows.append(held_window(process.pid, port, interval, count)),
                ]
                for side in sides if number % 2 == 0 else sides[::-1]:
                    side()
        finally:
            os.kill(process.pid, signal.SIGCONT)  # so that SIGTERM can end it
    for window in agent_windows:
        window["polls"] = device_polls(window, idle, interval)
    figures: dict[str, Any] = {"suite": suite_name(user), "rounds": args.rounds}
    mine = per_poll(agent_windows, idle)
    theirs = per_poll(exporter_windows, exporter_idle)
    paired = [a / e for a, e in zip(mine, theirs, strict=True)]
    figures["stat"] = {
        "agent_cpu_seconds_per_poll": spread(mine),
        "exporter_cpu_seconds_per_scrape": spread(theirs),
        "ratio": spread(mine)["median"] / spread(theirs)["median"],
        "ratio_per_round": spread(paired),
    }
    figures |= {
        "agent_idle": idle,
        "agent_windows": agent_windows,
        "exporter_windows": exporter_windows,
        "target": TARGETS["v2c" if user is None else "v3"],
    }
    return figures


def held_window(pid: int, port: int, interval: float, count: int) -> dict[str, float]:
    """`count` intervals of the held agent, starting 0.75 interval after a poll started."""
    with running(pid):
        started = wait_polls(port, polls(port)[0])
        return agent_window(pid, port, started + PHASE * interval, count * interval)


def report(result: dict[str, Any], version: str) -> list[str]:
    """The figures of one suite as printed (and kept in RESULTS.md)."""
    stat = result["stat"]
    a, e, r = (stat["agent_cpu_seconds_per_poll"], stat["exporter_cpu_seconds_per_scrape"],
               stat["ratio_per_round"])  # fmt: skip
    polls_seen = [w["polls"] for w in result["agent_windows"]]
    down = sum(1 for w in result["agent_windows"] if w["up"] != 1)
    slowest = max(w["poll_seconds"] for w in result["agent_windows"])
    idle = result["agent_idle"]
    ok = "meets" if stat["ratio"] <= result["target"] else "MISSES"
    return [
        "",
        f"{result['recording']} over {result['suite']}, whole processes, {result['rounds']} "
        f"rounds A/B alternated, windows of {result['interval']:g} s x {result['polls']}:",
        f"  agent CPU-s per poll      median {a['median']:.4f}, IQR {a['q1']:.4f}-{a['q3']:.4f}"
        f" ({a['min']:.4f}-{a['max']:.4f}); device polls per window {min(polls_seen):g}-"
        f"{max(polls_seen):g}, windows with the device down: {down}, slowest poll "
        f"{slowest:.2f} s",
        f"  exporter {version} CPU-s per scrape median {e['median']:.4f}, IQR {e['q1']:.4f}-"
        f"{e['q3']:.4f} ({e['min']:.4f}-{e['max']:.4f})",
        f"  ratio {stat['ratio']:.2f} (per round {r['q1']:.2f}-{r['q3']:.2f}): {ok} the "
        f"target of {result['target']:.1f} or less",
        f"  idle subtracted: agent {idle['stat'] / idle['seconds'] * 100:.3f} % of a core "
        f"({idle['seconds']:.0f} s window, {idle['jobs']:g} other jobs in it), exporter "
        f"{result['exporter_idle']['stat'] / result['exporter_idle']['seconds'] * 100:.3f} %",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between polls")
    parser.add_argument("--polls", type=int, default=15, help="polls (scrapes) per window")
    parser.add_argument("--recording", default="network/switch/cisco-c3560")
    parser.add_argument("--suite", action="append", help="v2c or a v3 suite (default: all)")
    parser.add_argument("--exporter-config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    binary = shutil.which("prometheus-snmp-exporter")
    if binary is None:
        sys.exit("apt-get install -y prometheus-snmp-exporter")
    users = suites(args.suite)
    version = exporter_version(binary)
    results = []
    with tempfile.TemporaryDirectory(prefix="erozgar-bench-process-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)  # snmpsim reads its recording as nobody
        config = exporter_config(args.exporter_config, [u for u in users if u], root)
        v3 = [u for u in users if u is not None]
        source = recording_source(args.recording)
        with (
            snmpsim(root / "snmpsim", source, v3) as (snmp_port,),
            exporter(binary, config) as (exporter_pid, http_port),
        ):
            base = f"http://{HOST}:{http_port}/snmp?target={HOST}:{snmp_port}&module="
            for user in users:
                wait_ready(base + module_name(user), f"{args.recording} over {suite_name(user)}")
            exporter_idle = exporter_window(exporter_pid, None, args.interval, args.polls * 2)
            for number, user in enumerate(users):
                result = measure_suite(root / str(number), snmp_port, user, exporter_pid,
                                       base + module_name(user), exporter_idle, args)  # fmt: skip
                results.append({"recording": args.recording, "interval": args.interval,
                                "polls": args.polls, "exporter_idle": exporter_idle,
                                **result})  # fmt: skip
    lines = [
        "Whole processes: the erozgar-agent run process's utime+stime per poll against "
        f"prometheus-snmp-exporter {version}'s per scrape, each less its own idle."
    ]
    for result in results:
        lines += report(result, version)
    print("\n".join(lines))
    if args.json is not None:
        args.json.write_text(json.dumps({"exporter_version": version, "suites": results}, indent=2))


if __name__ == "__main__":
    main()
