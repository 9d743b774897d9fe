"""Hub scale (benchmark 3): how many 24-port switches one agent polls every 30 s on one core.

    /opt/erozgar-venv/bin/python bench/hub.py [--sizes 500,1000,1500,2000,2500,3000] [--json OUT]

For each size N: bench/hub_responder.py answers N switches from pre-encoded answers on CPU 1,
the agent runs on CPU 0 (`taskset -c 0`), and once every switch answered its first poll and
`--settle` seconds passed, the bench watches `--measure` seconds while /metrics is scraped
every `--scrape-every` seconds (a hub is scraped too; the scrape renders every port): once
gzip-compressed as Prometheus and vmagent ask for it (Accept-Encoding: gzip), then plain. A
scrape's time runs from connect to the last byte of the body.

Memory: the agent's peak resident set (VmHWM) over its whole life, and its RSS at the end.

Late: from the agent's own scheduler accounting on /metrics, the delay of each poll's start
against its due time (erozgar_agent_scheduler_start_delay_seconds, p95 interpolated within the
histogram's buckets as histogram_quantile does), beats skipped because a poll overran the
interval (erozgar_agent_scheduler_skipped_runs_total) and failed polls. Sizes grow until p95
start delay passes `--late` seconds, a beat is skipped or a poll fails.

The responder is checked not to be the bottleneck twice: its own CPU share over the window
(it must stay well below one core), and a control before the runs: a client blasting it with
the agent's largest request shape, which gives its top answer rate to compare with the rate
the agent needs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchlib import (
    ROOT,
    agent,
    base_config,
    cpu_seconds,
    http_get,
    memory_kib,
    samples,
    spread,
    stop,
    wait_complete,
    write_result,
)

RESPONDER_CPU = 1
AGENT_CPU = 0


@contextmanager
def responder(workdir: Path, devices: int) -> Iterator[tuple[Any, dict[str, Any], Path]]:
    ready = workdir / f"hub-{devices}.json"
    stats = workdir / f"hub-{devices}-stats.json"
    argv = ["taskset", "-c", str(RESPONDER_CPU), sys.executable,
            str(ROOT / "bench" / "hub_responder.py"), "--ready", str(ready), "--stats", str(stats),
            "--devices", str(devices)]  # fmt: skip
    log = (workdir / "responder.log").open("ab")
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"responder did not start: see {workdir / 'responder.log'}")
            time.sleep(0.05)
        yield process, json.loads(ready.read_text()), stats
    finally:
        stop(process)
        log.close()


def _bulk_request(request_id: int) -> bytes:
    """A GETBULK of the agent's counter columns (its most frequent large request), encoded as
    the agent encodes it."""
    from collectors.snmp.ber import GETBULK, encode_request
    from collectors.snmp.collector import COUNTER_COLUMNS
    from collectors.snmp.values import parse_oid

    columns = [parse_oid(column) for column in COUNTER_COLUMNS]
    return encode_request(1, b"bench", GETBULK, request_id, columns, 0, 25)


def control(workdir: Path, seconds: float = 3.0) -> dict[str, float]:
    """Answers per second the responder sustains with 32 requests in flight."""
    sys.path.insert(0, str(ROOT))
    with responder(workdir, 1) as (process, devices, _):
        host, port = devices["snmp"][0]["address"].rsplit(":", 1)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(2)
            target = (host, int(port))
            request = _bulk_request(1)  # encoded once: the client must not be the limit
            for _ in range(32):
                sock.sendto(request, target)
            answered, sizes = 0, []
            cpu0 = cpu_seconds(process.pid)
            started = time.monotonic()
            while time.monotonic() - started < seconds:
                data = sock.recv(65535)
                sizes.append(len(data))
                answered += 1
                sock.sendto(request, target)
            wall = time.monotonic() - started
            cpu = cpu_seconds(process.pid) - cpu0
    return {"answers_per_second": answered / wall, "responder_cpu_share": cpu / wall,
            "answer_bytes": sorted(sizes)[len(sizes) // 2]}  # fmt: skip


def _histogram(text: str, name: str) -> tuple[list[tuple[float, float]], float]:
    buckets = sorted(
        (float(labels["le"]), value) for labels, value in samples(text, name + "_bucket")
    )
    count = samples(text, name + "_count")
    return buckets, count[0][1] if count else 0.0


def _quantile(
    q: float, before: list[tuple[float, float]], after: list[tuple[float, float]]
) -> float:
    """histogram_quantile over the increase between two scrapes of a cumulative histogram."""
    diff = [(le, a - b) for (le, a), (_, b) in zip(after, before, strict=True)]
    total = diff[-1][1]
    if total <= 0:
        return 0.0
    rank, lower, below = q * total, 0.0, 0.0
    for le, cumulative in diff:
        if cumulative >= rank:
            if le == float("inf"):
                return lower  # as Prometheus: the highest finite bound
            return lower + (le - lower) * (rank - below) / max(cumulative - below, 1e-9)
        lower, below = le, cumulative
    return lower


def _one(text: str, name: str) -> float:
    found = samples(text, name)
    return found[0][1] if found else 0.0


def run_size(workdir: Path, n: int, args: argparse.Namespace) -> dict[str, Any]:
    delay = "erozgar_agent_scheduler_start_delay_seconds"
    with responder(workdir, n) as (sim, devices, stats):
        config = {**base_config(workdir, f"BENCH-HUB-{n}"), "snmp": devices["snmp"]}
        with agent(workdir, config, cpu=AGENT_CPU) as (process, port, _):
            url = f"http://127.0.0.1:{port}/metrics"
            # switches that never answered within a minute are the figure, not a crash
            with contextlib.suppress(RuntimeError):
                wait_complete(port, n, timeout=60)
            time.sleep(args.settle)
            before = http_get(url, timeout=60).decode()
            cpu0, sim_cpu0, wall0 = cpu_seconds(process.pid), cpu_seconds(sim.pid), time.monotonic()
            scrapes: dict[str, list[float]] = {"gzip": [], "plain": []}
            sizes = {}
            while time.monotonic() - wall0 < args.measure:
                left = args.measure - (time.monotonic() - wall0)
                time.sleep(max(0.0, min(args.scrape_every, left)))
                for kind in scrapes:
                    started = time.perf_counter()
                    body = http_get(url, timeout=60, gzip=kind == "gzip")
                    scrapes[kind].append(time.perf_counter() - started)
                    sizes[kind] = len(body)
            after = body.decode()  # the last plain scrape
            wall = time.monotonic() - wall0
            cpu, sim_cpu = cpu_seconds(process.pid) - cpu0, cpu_seconds(sim.pid) - sim_cpu0
            memory = memory_kib(process.pid)
    stats_read = json.loads(stats.read_text()) if stats.exists() else {}
    hist0, count0 = _histogram(before, delay)
    hist1, count1 = _histogram(after, delay)
    durations = [value for _, value in samples(after, "erozgar_device_poll_duration_seconds")]
    errors = sum(v for _, v in samples(after, "erozgar_device_poll_errors_total")) - sum(
        v for _, v in samples(before, "erozgar_device_poll_errors_total")
    )
    up = [value for _, value in samples(after, "erozgar_device_up")]
    return {
        "devices": n,
        "window_seconds": wall,
        # other work on the box competes for the agent's core: say how busy it was
        "loadavg_1m_at_end": float(Path("/proc/loadavg").read_text().split()[0]),
        "polls_started": count1 - count0,
        "start_delay_p50_seconds": _quantile(0.5, hist0, hist1),
        "start_delay_p95_seconds": _quantile(0.95, hist0, hist1),
        "skipped_runs": _one(after, "erozgar_agent_scheduler_skipped_runs_total")
        - _one(before, "erozgar_agent_scheduler_skipped_runs_total"),
        "poll_errors": errors,
        "devices_up_at_end": sum(1 for v in up if v == 1),
        "poll_duration_seconds": spread(durations) if durations else None,
        "agent_cpu_share_of_one_core": cpu / wall,
        "agent_peak_rss_mib": memory["VmHWM"] / 1024,
        "agent_rss_end_mib": memory["VmRSS"] / 1024,
        "scrape_seconds": spread(scrapes["gzip"] + scrapes["plain"]),
        "scrape_gzip_seconds": spread(scrapes["gzip"]),
        "scrape_plain_seconds": spread(scrapes["plain"]),
        "body_bytes": {"gzip": sizes["gzip"], "plain": sizes["plain"]},
        "responder_cpu_share": sim_cpu / wall,
        "responder_answers_built_by_pyasn1": stats_read.get("built"),
        "responder_datagrams_answered": stats_read.get("answered"),
    }


def _late(run: dict[str, Any], threshold: float) -> bool:
    return bool(
        run["start_delay_p95_seconds"] > threshold
        or run["skipped_runs"] > 0
        or run["poll_errors"] > 0
        or run["devices_up_at_end"] < run["devices"]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="500,1000,1500,2000,2500,3000")
    parser.add_argument("--settle", type=float, default=35, help="seconds after the first polls")
    parser.add_argument("--measure", type=float, default=90)
    parser.add_argument("--scrape-every", type=float, default=15)
    parser.add_argument("--late", type=float, default=2.0, help="p95 start delay that is late")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-hub-") as tmp:
        workdir = Path(tmp)
        check = control(workdir)
        for n in (int(size) for size in args.sizes.split(",")):
            result = run_size(workdir, n, args)
            runs.append(result)
            print(json.dumps(result), flush=True)
            if _late(result, args.late):
                break
    on_time = [r["devices"] for r in runs if not _late(r, args.late)]
    write_result(
        args.json,
        {
            "interval_seconds": 30,
            "ports_per_device": 24,
            "late_threshold_seconds": args.late,
            "largest_on_time": max(on_time, default=0),
            "responder_control": check,
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
