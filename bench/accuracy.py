"""Throughput accuracy against known traffic (benchmark 5).

    /opt/erozgar-venv/bin/python bench/accuracy.py [--minutes 3] [--load 2] [--json OUT]

A simulator process serves constant, known rates: a 1 Gb/s port at 950/910 Mb/s on 32-bit
counters (it wraps every 36 s, so every 10 s poll sees a wrap about every fourth time) and
64-bit ports on a 48-port router; halfway through, every router restarts (sysUpTime and the
counters from 0). The agent (its own process) polls every 10 s; after each poll the exported
erozgar_interface_*_bytes_per_second is compared with the truth. `--load N` runs N busy-loop
processes beside it, as a loaded box would. Error = measured / true - 1, every poll counted.
"""

from __future__ import annotations

import argparse
import multiprocessing
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import (
    agent,
    base_config,
    http_get,
    samples,
    simulator,
    spread,
    wait_complete,
    write_result,
)


def _burn() -> None:
    while True:
        pass


def measure(minutes: float, load: int, interval: float) -> dict[str, Any]:
    burners = [multiprocessing.Process(target=_burn, daemon=True) for _ in range(load)]
    for burner in burners:
        burner.start()
    try:
        return _measure(minutes, interval) | {"busy_loops_beside": load}
    finally:
        for burner in burners:
            burner.terminate()


def _measure(minutes: float, interval: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-accuracy-") as tmp:
        workdir = Path(tmp)
        args = ["accuracy", "--interval", str(interval)]
        with simulator(workdir, args) as (sim, devices):
            truth = devices["truth_bytes_per_second"]
            config = {**base_config(workdir, "BENCH-ACC"), "snmp": devices["snmp"]}
            with agent(workdir, config) as (_, port, _):
                wait_complete(port, len(devices["snmp"]))
                errors: dict[str, list[float]] = {f"{p}/{d}": [] for p in truth for d in "rt"}
                restart_errors: list[float] = []
                seen: dict[str, float] = {}
                end = time.monotonic() + minutes * 60
                restart_at = time.monotonic() + minutes * 30
                restarted = None  # the poll stamp after which the restart shows
                while time.monotonic() < end:
                    if restart_at and time.monotonic() >= restart_at:
                        sim.send_signal(signal.SIGUSR1)
                        restart_at = 0
                        restarted = dict(seen)
                    text = http_get(f"http://127.0.0.1:{port}/metrics").decode()
                    polls = dict(
                        (labels["device"], value)
                        for labels, value in samples(
                            text, "erozgar_device_last_success_timestamp_seconds"
                        )
                    )
                    for name in ("receive", "transmit"):
                        for labels, value in samples(
                            text, f"erozgar_interface_{name}_bytes_per_second"
                        ):
                            iface, device = labels["interface"], labels["device"]
                            if iface not in truth or polls.get(device) == seen.get(iface + name):
                                continue
                            seen[iface + name] = polls[device]
                            error = value / truth[iface][name == "transmit"] - 1
                            # the first poll of each port after the restart is judged apart
                            after = restarted is not None and restarted.pop(iface + name, None)
                            (restart_errors if after else errors[f"{iface}/{name[0]}"]).append(
                                error
                            )
                    time.sleep(0.25)
                text = http_get(f"http://127.0.0.1:{port}/metrics").decode()
                rejected = samples(text, "erozgar_interface_rejected_deltas_total")
    flat = [abs(e) for values in errors.values() for e in values]
    return {
        "polls_compared": len(flat),
        "abs_error": spread(flat) if flat else None,
        "per_port_max_abs_error": {k: max(map(abs, v)) for k, v in errors.items() if v},
        "first_poll_after_restart_errors": restart_errors,
        "rejections": [(labels, value) for labels, value in rejected if value],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3)
    parser.add_argument("--load", type=int, default=0)
    parser.add_argument("--interval", type=float, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    write_result(args.json, measure(args.minutes, args.load, args.interval))


if __name__ == "__main__":
    main()
