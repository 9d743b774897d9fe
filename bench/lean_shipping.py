"""What a centre sends over its ISP line a day: series and remote-write bytes per shipping option.

    PYTHONPATH=$PWD /opt/erozgar-venv/bin/python bench/lean_shipping.py [--minutes 10] [--json OUT]

The reference centre of bench/centre.py (2 routers, 6 switches of 48 + 2 ports, 3 UPS, 2 probed
links, shipped poll intervals) runs once; beside it, one real vmagent per option, all at the
same time over the same window, each started from the shipped erozgar-vmagent.service and
pushing to one VictoriaMetrics with its own `site` label. Options:

- before: deploy/vmagent/scrape.yml as it was before lean shipping (--before-commit), every
  series the agent exposes; shipped flags;
- lean: the shipped scrape.yml and flags (fast job 10 s, slow 120 s, -remoteWrite.flushInterval=1s);
- lean-flush-10s / -30s: -remoteWrite.flushInterval longer (bigger, better compressed
  requests; every second of it adds to the alert latency);
- lean-slow-60s / -300s: the slow job every 60 s or 300 s (the fast job as shipped);
- detail: lean plus the detail-on-demand job switched on (what one centre costs while PSEB
  troubleshoots it).

Bytes are vmagent's own count of compressed request bodies (vmagent_remotewrite_bytes_sent_total,
snappy-compressed Prometheus remote write: the only protocol this vmagent, Debian's 1.79.5,
speaks), read after a warm-up of two slow scrapes and again after --minutes; per day = bytes
in the window x 86400 / window seconds (the centre's traffic is steady, so a day is the window
repeated; HTTP and TLS framing come on top). Series: those the store holds for each option.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from benchlib import ROOT, agent, http_get, series_count, simulator, wait_complete, write_result
from centre import config as centre_config

from tests.integration.deploy_stack import (
    DETAIL,
    VictoriaMetrics,
    free_tcp_port,
    running,
    vmagent_command,
    vmagent_metric,
    with_flags,
)

SHIPPED = ROOT / "deploy" / "vmagent" / "scrape.yml"


def scrape_yml(text: str, target: str, slow_s: int | None = None, detail: bool = False) -> str:
    """A shipped scrape config pointed at `target`; the detail job on (as a static target, the
    same as the centre serving it) or left out."""
    config = yaml.safe_load(text)
    jobs = []
    for job in config["scrape_configs"]:
        if job["job_name"] == DETAIL:
            if not detail:
                continue
            del job["http_sd_configs"], job["relabel_configs"]
        if slow_s is not None and job["job_name"] != "erozgar-agent-fast":
            job["scrape_interval"] = f"{slow_s}s"
        job["static_configs"] = [{"targets": [target]}]
        jobs.append(job)
    config["scrape_configs"] = jobs
    return yaml.safe_dump(config, sort_keys=False)


def options(before: str, target: str) -> dict[str, tuple[str, dict[str, str]]]:
    """option -> (scrape config, vmagent flags changed from the shipped unit)."""
    lean = SHIPPED.read_text()
    return {
        "before": (scrape_yml(before, target), {}),
        "lean": (scrape_yml(lean, target), {}),
        "lean-flush-10s": (scrape_yml(lean, target), {"remoteWrite.flushInterval": "10s"}),
        "lean-flush-30s": (scrape_yml(lean, target), {"remoteWrite.flushInterval": "30s"}),
        "lean-slow-60s": (scrape_yml(lean, target, slow_s=60), {}),
        "lean-slow-300s": (scrape_yml(lean, target, slow_s=300), {}),
        "detail": (scrape_yml(lean, target, detail=True), {}),
    }


def measure(root: Path, vm: VictoriaMetrics, agent_port: int, args: argparse.Namespace) -> Any:
    before = subprocess.run(
        ["git", "show", f"{args.before_commit}:deploy/vmagent/scrape.yml"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    ports: dict[str, int] = {}
    started = []
    try:
        for name, (scrape, flags) in options(before, f"127.0.0.1:{agent_port}").items():
            workdir = root / name
            workdir.mkdir()
            ports[name] = free_tcp_port()
            argv = vmagent_command(workdir, f"{vm.url}/api/v1/write", name, scrape, ports[name])
            argv = with_flags(argv, **{k.replace(".", "__"): v for k, v in flags.items()})
            context = running(
                argv, workdir / "vmagent.log", f"http://127.0.0.1:{ports[name]}/health"
            )
            context.__enter__()
            started.append(context)
        time.sleep(args.warmup)
        start = {n: sent(p) for n, p in ports.items()}
        t0 = time.monotonic()
        time.sleep(args.minutes * 60)
        end = {n: sent(p) for n, p in ports.items()}
        window = time.monotonic() - t0
    finally:
        for context in reversed(started):
            context.__exit__(None, None, None)
    time.sleep(3)
    result = {}
    for name in ports:
        bytes_, rows, requests = (e - s for e, s in zip(end[name], start[name], strict=True))
        series = vm.query(f'count({{site="{name}"}})')
        result[name] = {
            "series": int(series[0]["value"][1]) if series else 0,
            "bytes_in_window": bytes_,
            "samples_in_window": rows,
            "requests_in_window": requests,
            "bytes_per_sample": bytes_ / rows if rows else None,
            "mb_per_day": bytes_ * 86400 / window / 1e6,
        }
    return {"window_seconds": window, "options": result}


def sent(port: int) -> tuple[float, float, float]:
    """Bytes, samples and requests vmagent has sent so far."""
    return (
        vmagent_metric(port, "vmagent_remotewrite_bytes_sent_total"),
        vmagent_metric(port, "vmagent_remotewrite_rows_pushed_after_relabel_total"),
        vmagent_metric(port, "vmagent_remotewrite_requests_total"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=310, help="seconds: a 300 s scrape")
    parser.add_argument("--before-commit", default="f07e5b6")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-lean-") as tmp:
        root = Path(tmp)
        vm = VictoriaMetrics(root)
        vm.start()
        try:
            with (
                simulator(root, ["centre"]) as (_, devices),
                agent(root, centre_config(root, devices)) as (_, agent_port, _),
            ):
                n_devices = len(devices["snmp"]) + len(devices["modbus"])
                wait_complete(agent_port, n_devices, len(devices["links"]))
                result = measure(root, vm, agent_port, args)
                text = http_get(f"http://127.0.0.1:{agent_port}/metrics").decode()
                result["series_on_site"] = series_count(text)
        finally:
            vm.stop()
    write_result(args.json, result)


if __name__ == "__main__":
    main()
