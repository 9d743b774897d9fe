"""What the benchmarks share: the machine, a process's own CPU and memory from /proc, the agent
as a real process, scrapes, and medians with their spread.

The agent always runs as its own process (`erozgar-agent run`) and simulators in another, so
the CPU and memory read from /proc/PID are the agent's alone.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
TICKS = os.sysconf("SC_CLK_TCK")


def machine() -> dict[str, str]:
    """The facts RESULTS.md states about the machine the figures come from."""
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (fields 14 and 15 of /proc/PID/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # the name may hold spaces
    return (int(fields[11]) + int(fields[12])) / TICKS


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak resident set) of a process, in KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 10, gzip: bool = False) -> bytes:
    """The body as sent; `gzip` asks for it compressed, as Prometheus and vmagent do."""
    headers = {"Accept-Encoding": "gzip"} if gzip else {}
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return bytes(answer.read())


def timed_get(url: str, timeout: float = 10) -> tuple[float, bytes]:
    """Seconds from connect to the last byte of the body, and the body."""
    started = time.perf_counter()
    body = http_get(url, timeout)
    return time.perf_counter() - started, body


def stop(process: subprocess.Popen[Any], timeout: float = 10) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def simulator(
    workdir: Path, args: Sequence[str], cpu: int | None = None
) -> Iterator[tuple[subprocess.Popen[Any], dict[str, Any]]]:
    """bench/simulate.py in its own process; yields it and what it wrote to its ready file."""
    ready = workdir / f"sim-{time.monotonic_ns()}.json"
    argv = [sys.executable, str(ROOT / "bench" / "simulate.py"), "--ready", str(ready), *args]
    if cpu is not None:
        argv = ["taskset", "-c", str(cpu), *argv]
    log = (workdir / "simulator.log").open("ab")
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"simulator did not start: see {workdir / 'simulator.log'}")
            time.sleep(0.05)
        yield process, json.loads(ready.read_text())
    finally:
        stop(process)
        log.close()


@contextmanager
def agent(
    workdir: Path, config: dict[str, Any], cpu: int | None = None
) -> Iterator[tuple[subprocess.Popen[Any], int, float]]:
    """`erozgar-agent run` as a process; yields it, its port and the perf_counter at exec."""
    path = workdir / "agent.yml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    argv = [str(VENV_BIN / "erozgar-agent"), "run", "--config", str(path)]
    argv += ["--listen", f"127.0.0.1:{port}"]
    if cpu is not None:
        argv = ["taskset", "-c", str(cpu), *argv]
    log = (workdir / "agent.log").open("ab")
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        yield process, port, started
    finally:
        stop(process)
        log.close()


def base_config(workdir: Path, site: str) -> dict[str, Any]:
    state = workdir / "state"
    state.mkdir(exist_ok=True)
    return {"site": {"id": site, "name": "benchmark"}, "state_dir": str(state)}


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of every sample of metric `name` in an exposition (no parser needed:
    label values here never hold a comma or a quote)."""
    out = []
    prefix = name + "{"
    for line in text.splitlines():
        if line.startswith(prefix):
            labels_text, _, value = line[len(prefix) :].rpartition("} ")
            pairs = (pair.partition("=") for pair in labels_text.split('",'))
            labels = {key: value.strip('"') for key, _, value in pairs}
            out.append((labels, float(value)))
        elif line.startswith(name + " "):
            out.append(({}, float(line.split()[1])))
    return out


def complete(text: str, devices: int, links: int = 0) -> bool:
    """Every device answered its first poll and every link was probed once."""
    up = [value for _, value in samples(text, "erozgar_device_up")]
    probed = samples(text, "erozgar_link_up")
    return len(up) == devices and all(v == 1 for v in up) and len(probed) >= links


def wait_complete(port: int, devices: int, links: int = 0, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        try:
            text = http_get(f"http://127.0.0.1:{port}/metrics").decode()
        except OSError:
            time.sleep(0.02)
            continue
        if complete(text, devices, links):
            return text
        time.sleep(0.02)
    raise RuntimeError(f"/metrics not complete after {timeout:g} s:\n{text[-2000:]}")


def series_count(text: str) -> int:
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, quartiles (IQR), min, max, p95 and p99 of a sample."""
    ordered = sorted(values)
    n = len(ordered)

    def pct(p: float) -> float:
        if n == 1:
            return ordered[0]
        k = (n - 1) * p
        lo = int(k)
        hi = min(lo + 1, n - 1)
        return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)

    return {
        "n": n,
        "median": statistics.median(ordered),
        "q1": pct(0.25),
        "q3": pct(0.75),
        "min": ordered[0],
        "max": ordered[-1],
        "p95": pct(0.95),
        "p99": pct(0.99),
    }


def write_result(path: Path | None, result: dict[str, Any]) -> None:
    """Print the figures; with `--json PATH` also keep them for RESULTS.md."""
    print(json.dumps(result, indent=2))
    if path is not None:
        path.write_text(json.dumps(result, indent=2))
