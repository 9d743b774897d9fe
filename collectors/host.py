"""The agent's own box, read with psutil: CPU, memory, disks the agent cares about, NICs, and
whether the kernel's clock is synchronised (adjtimex, as node_exporter's timex collector)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path

import psutil

from .readings import HostReading

# Virtual NICs a small agent box may have that tell nothing about the centre's links.
_SKIPPED_NIC_PREFIXES = ("lo", "veth", "docker", "br-", "virbr")

_TIME_ERROR = 5  # adjtimex(2) return value: the kernel clock is not synchronised
_STA_UNSYNC = 0x0040  # status bit: NTP has not (or no longer) disciplined the clock


class _Timex(ctypes.Structure):
    # struct timex (linux/timex.h) up to `status`; the kernel writes more, so leave room.
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("_rest", ctypes.c_byte * 256),
    ]


def clock_synchronized() -> bool | None:
    """The kernel's view (modes 0: read only, no privilege needed); None when it cannot be
    asked (no libc adjtimex, or a sandbox that refuses the call)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        timex = _Timex()
        state = libc.adjtimex(ctypes.byref(timex))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != _TIME_ERROR and not timex.status & _STA_UNSYNC


def mount_point(path: str) -> str:
    """The mount point of the filesystem holding `path` (or its nearest existing parent)."""
    here = Path(path).absolute()
    while not here.exists():
        here = here.parent
    while not os.path.ismount(here):
        here = here.parent
    return str(here)


def read_host(filesystems: list[str]) -> HostReading:
    """One snapshot. Each path is reported under its filesystem's mount point, once."""
    times = psutil.cpu_times()._asdict()
    memory = psutil.virtual_memory()
    disks: dict[str, tuple[float, float]] = {}
    for path in filesystems:
        try:
            mount = mount_point(path)
            usage = psutil.disk_usage(mount)
        except OSError:
            continue
        disks[mount] = (float(usage.total), float(usage.free))
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
        clock_synchronized=clock_synchronized(),
    )
