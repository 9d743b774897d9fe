"""/metrics latency at about 10,000 series, while one device answers seconds late (benchmark 4).

    /opt/erozgar-venv/bin/python bench/scrape.py [--scrapes 300] [--switches 11] [--json OUT]

The reference centre with `--switches` access switches (about 850 series each) plus a router
whose every SNMP answer comes `--slow-seconds` late, so one of its polls is almost always in
progress. Scrapes run back to back, each timed from connect to the last byte. Each scrape is
marked "during a slow poll" when the slow router's poll was running at its start (read from the
agent's own erozgar_device_poll_duration_seconds and last-success time afterwards is not
precise enough, so the bench asks: does the latency distribution differ at all?).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchlib import (
    agent,
    base_config,
    cpu_seconds,
    samples,
    series_count,
    simulator,
    spread,
    timed_get,
    wait_complete,
    write_result,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrapes", type=int, default=300)
    parser.add_argument("--switches", type=int, default=11)
    parser.add_argument("--slow-seconds", type=float, default=3.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-scrape-") as tmp:
        workdir = Path(tmp)
        sim_args = ["centre", "--switches", str(args.switches)]
        sim_args += ["--slow-seconds", str(args.slow_seconds)]
        with simulator(workdir, sim_args) as (_, devices):
            config = {**base_config(workdir, "BENCH-SCRAPE"), "snmp": devices["snmp"],
                      "modbus": devices["modbus"]}  # fmt: skip
            with agent(workdir, config) as (process, port, _):
                url = f"http://127.0.0.1:{port}/metrics"
                wait_complete(port, len(devices["snmp"]) + len(devices["modbus"]), timeout=180)
                time.sleep(2)
                _, body = timed_get(url)
                text = body.decode()
                latencies, sizes = [], []
                cpu0 = cpu_seconds(process.pid)
                for _ in range(args.scrapes):
                    seconds, body = timed_get(url)
                    latencies.append(seconds)
                    sizes.append(len(body))
                    time.sleep(0.02)
                scrape_cpu = (cpu_seconds(process.pid) - cpu0) / args.scrapes
                _, body = timed_get(url)
                durations = samples(body.decode(), "erozgar_device_poll_duration_seconds")
                slow = {labels["device"]: value for labels, value in durations}
    write_result(
        args.json,
        {
            "series": series_count(text),
            "bytes": int(sum(sizes) / len(sizes)),
            "latency_seconds": spread(latencies),
            "agent_cpu_seconds_per_scrape": scrape_cpu,
            "slow_router_poll_seconds": slow.get("slow-router"),
            "slow_router_answer_delay_seconds": args.slow_seconds,
        },
    )


if __name__ == "__main__":
    main()
