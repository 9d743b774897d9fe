"""`check` for this box: clock synchronised, disk for the state directory, listen port, remote
write."""

from __future__ import annotations

import asyncio
import errno
import shutil
import socket
import subprocess
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from collectors.host import clock_synchronized
from collectors.tcp import ConnectError, knock

from ..config import Config
from ..verdict import Step

MIN_FREE_BYTES, LOW_FREE_BYTES = 50e6, 500e6


def _timedatectl() -> bool | None:
    try:
        out = subprocess.run(
            ["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
            capture_output=True, text=True, timeout=3,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    value = out.stdout.strip()
    return {"yes": True, "no": False}.get(value) if out.returncode == 0 else None


def ntp_step() -> Step:
    name = "clock (NTP)"
    synced = _timedatectl()
    source = "timedatectl"
    if synced is None and Path("/run/systemd/timesync/synchronized").exists():
        synced, source = True, "systemd-timesyncd"
    if synced is None:
        synced, source = clock_synchronized(), "kernel (adjtimex)"
    if synced is None:
        return Step(
            name, "WARN", "cannot tell whether the clock is synchronised (no timedatectl, "
            "no adjtimex: a container?)", "make sure the host runs NTP (chrony or timesyncd)",
        )  # fmt: skip
    if not synced:
        return Step(
            name, "WARN", f"{source}: the clock is not synchronised",
            "enable NTP (timedatectl set-ntp true, or install chrony): graphs and outage times "
            "need the right time, and SNMPv3 needs a sane clock",
        )  # fmt: skip
    return Step(name, "PASS", f"{source}: synchronised")


def disk_step(state_dir: str) -> Step:
    name = "state directory disk"
    path = Path(state_dir)
    existing = next((p for p in (path, *path.parents) if p.exists()), Path("/"))
    free = shutil.disk_usage(existing).free
    seen = f"{free / 1e9:.1f} GB free on {existing}"
    if existing != path:
        seen += f" ({state_dir} does not exist yet)"
    if free < MIN_FREE_BYTES:
        return Step(name, "FAIL", seen, "free disk space: the battery history cannot be saved")
    if free < LOW_FREE_BYTES:
        return Step(name, "WARN", seen, "disk nearly full: free some space")
    return Step(name, "PASS", seen)


def listen_step(host: str, port: int) -> Step:
    name = "listen port"
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            return Step(
                name, "FAIL", f"cannot bind {host}:{port}: {exc.strerror}",
                "change listen: in the config",
            )  # fmt: skip
    else:
        return Step(name, "PASS", f"{host}:{port} is free")
    # In use: by a running agent (fine) or by something else (not fine).
    probe_host = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    url_host = f"[{probe_host}]" if ":" in probe_host else probe_host
    try:
        url = f"http://{url_host}:{port}/healthz"
        with urllib.request.urlopen(url, timeout=2) as response:
            running = response.status == 200 and response.read().startswith(b"ok")
    except OSError:
        running = False
    if running:
        return Step(name, "PASS", f"{host}:{port}: the agent is running and answers /healthz")
    return Step(
        name, "FAIL", f"{host}:{port} is taken by another program",
        "stop that program, or change listen: in the config",
    )  # fmt: skip


async def remote_write_step(url: str) -> Step:
    name = "remote write"
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        seconds = await knock(host, port, 5.0)
    except ConnectError as exc:
        return Step(
            name, "WARN", f"{host}:{port}: {exc}",
            "metrics stay on this box until the central server can be reached: check the "
            "internet link, DNS, and remote_write_url",
        )  # fmt: skip
    return Step(name, "PASS", f"{host}:{port} accepts connections ({seconds * 1000:.0f} ms)")


async def host_steps(config: Config) -> list[Step]:
    steps = [
        await asyncio.to_thread(ntp_step),
        disk_step(config.state_dir),
        await asyncio.to_thread(listen_step, *config.listen_host_port),
    ]
    if config.remote_write_url is not None:
        steps.append(await remote_write_step(config.remote_write_url))
    return steps
