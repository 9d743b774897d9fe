"""The agent's own box, read with psutil: CPU, memory, disks the agent cares about, NICs."""

from __future__ import annotations

import os

import psutil

from .readings import HostReading

# Virtual NICs a small agent box may have that tell nothing about the centre's links.
_SKIPPED_NIC_PREFIXES = ("lo", "veth", "docker", "br-", "virbr")


def read_host(filesystems: list[str]) -> HostReading:
    """One snapshot; a filesystem path that does not exist is left out, not an error."""
    times = psutil.cpu_times()._asdict()
    memory = psutil.virtual_memory()
    disks: dict[str, tuple[float, float]] = {}
    for path in filesystems:
        try:
            usage = psutil.disk_usage(path)
        except OSError:
            continue
        disks[path] = (float(usage.total), float(usage.free))
    nics = {
        name: (float(c.bytes_recv), float(c.bytes_sent))
        for name, c in psutil.net_io_counters(pernic=True).items()
        if not name.startswith(_SKIPPED_NIC_PREFIXES)
    }
    return HostReading(
        cpu_seconds={mode: float(seconds) for mode, seconds in times.items()},
        cpu_count=psutil.cpu_count() or 1,
        load1=os.getloadavg()[0],
        memory_total_bytes=float(memory.total),
        memory_available_bytes=float(memory.available),
        boot_time_seconds=psutil.boot_time(),
        filesystems=disks,
        network=nics,
    )
