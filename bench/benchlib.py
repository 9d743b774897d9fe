"""What the benchmarks share: the machine, a process's own CPU and memory from /proc, the agent
as a real process, scrapes, and medians with their spread.

The agent always runs as its own process (`erozgar-agent run`) and simulators in another, so
the CPU and memory read from /proc/PID are the agent's alone.
"""

from __future__ import annotations

import asyncio
import bz2
import importlib.util
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
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


@dataclass(frozen=True)
class SnmpV3User:
    """One SNMPv3 authPriv user as snmpsim, the agent's config and snmp_exporter 0.21 spell it.

    AES-256 is the Reeder (Cisco, net-snmp "AES-256C") key extension on every side: snmpsim's
    AES256, the agent's AES-256 and the exporter's AES256C. The exporter's AES256 is the
    Blumenthal extension (draft-blumenthal-aes-usm-04), which the agent does not speak."""

    suite: str  # "SHA/AES-128": what the reports call it
    name: str
    auth: str  # the agent's spelling
    priv: str
    auth_key: str = "bench-auth-key"
    priv_key: str = "bench-priv-key"

    def snmpsim_args(self) -> list[str]:
        spelled = {"SHA": "SHA", "SHA-256": "SHA256", "AES": "AES", "AES-256": "AES256"}
        return [f"--v3-user={self.name}", f"--v3-auth-key={self.auth_key}",
                f"--v3-auth-proto={spelled[self.auth]}", f"--v3-priv-key={self.priv_key}",
                f"--v3-priv-proto={spelled[self.priv]}"]  # fmt: skip

    def agent_keys(self, context: str) -> dict[str, str]:
        """The keys of an agent config's `snmp:` entry."""
        return {"version": "3", "user": self.name, "auth_protocol": self.auth,
                "auth_password": self.auth_key, "priv_protocol": self.priv,
                "priv_password": self.priv_key, "context": context}  # fmt: skip

    def exporter_module(self, module: dict[str, Any], context: str) -> dict[str, Any]:
        """An snmp_exporter 0.21 module (generator output format) reading as this user."""
        spelled = {"SHA": "SHA", "SHA-256": "SHA256", "AES": "AES", "AES-256": "AES256C"}
        auth = {"username": self.name, "security_level": "authPriv", "password": self.auth_key,
                "auth_protocol": spelled[self.auth], "priv_protocol": spelled[self.priv],
                "priv_password": self.priv_key, "context_name": context}  # fmt: skip
        return {**module, "version": 3, "auth": auth}


V3_USERS = (
    SnmpV3User("SHA/AES-128", "bench-sha-aes", "SHA", "AES"),
    SnmpV3User("SHA-256/AES-128", "bench-sha256-aes", "SHA-256", "AES"),
    SnmpV3User("SHA-256/AES-256", "bench-sha256-aes256", "SHA-256", "AES-256"),
)


def recording_source(recording: str) -> Path:
    """A recording of snmpsim-data, e.g. network/switch/cisco-c3560."""
    spec = importlib.util.find_spec("snmpsim_data")
    if spec is None or spec.origin is None:
        sys.exit("pip install snmpsim snmpsim-data first")
    source = Path(spec.origin).parent / "data" / f"{recording}.snmprec.bz2"
    if not source.exists():
        sys.exit(f"no recording {recording!r} in snmpsim-data ({source} missing)")
    return source


@contextmanager
def snmpsim(
    workdir: Path,
    source: Path,
    users: Sequence[SnmpV3User] = (),
    hosts: Sequence[str] = ("127.0.0.1",),
) -> Iterator[list[int]]:
    """snmpsim serving `source` as community `public` and, to `users`, as v3 context `public`
    (the file name selects the recording), one UDP port on each of `hosts`; yields the ports.
    The workdir must be readable by `nobody`, whom snmpsim runs as."""
    data, cache = workdir / "data", workdir / "cache"
    data.mkdir(mode=0o755, parents=True)
    cache.mkdir(mode=0o777)
    cache.chmod(0o777)
    target = data / "public.snmprec"
    target.write_bytes(bz2.decompress(source.read_bytes()))
    target.chmod(0o644)
    binary = shutil.which("snmpsim-command-responder", path=str(VENV_BIN))
    if binary is None:
        sys.exit("snmpsim-command-responder not found next to this Python")
    ports = [free_port(socket.SOCK_DGRAM) for _ in hosts]
    # one engine: its ID first, then its data, users and endpoints (snmpsim's grouping)
    argv = [binary, "--v3-engine-id=auto", f"--data-dir={data}", f"--cache-dir={cache}"]
    for user in users:
        argv += user.snmpsim_args()
    argv += [
        f"--agent-udpv4-endpoint={host}:{port}" for host, port in zip(hosts, ports, strict=True)
    ]
    argv += ["--process-user=nobody", "--process-group=nogroup"]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield ports
    finally:
        stop(process)


def wait_snmp(host: str, port: int, timeout: float = 300) -> None:
    """Until an SNMP agent answers a v2c poll as community `public` (snmpsim indexes its
    recording at the first request: seconds to minutes, which no agent start should count)."""
    from collectors.readings import PollError
    from collectors.snmp.collector import SnmpCollector

    deadline = time.monotonic() + timeout
    while True:
        try:
            asyncio.run(SnmpCollector(host, port, "public", timeout=5, retries=0).poll())
            return
        except PollError:  # not answering yet
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


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
