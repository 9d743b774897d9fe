"""The agent's own box through the real /metrics, against what psutil and the kernel say in
the test: CPUs, memory, boot time, filesystems (/ and the state directory's), NICs, and the
clock's NTP state."""

from __future__ import annotations

import ctypes
import ctypes.util
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .deploy_stack import agent_process, http_get

_SKIPPED_NICS = ("lo", "veth", "docker", "br-", "virbr")
_TIME_ERROR = 5  # adjtimex(2): Linux answers it whenever STA_UNSYNC is set


@pytest.fixture
def state_on_tmpfs() -> Iterator[Path]:
    """A state directory on another filesystem than / (/dev/shm), not created yet."""
    if not Path("/dev/shm").is_mount():
        pytest.fail("/dev/shm is not a mount point here; the test needs a second filesystem")
    parent = Path(tempfile.mkdtemp(dir="/dev/shm", prefix="erozgar-host-"))
    yield parent / "state"
    shutil.rmtree(parent, ignore_errors=True)


def kernel_synchronized() -> float:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    buffer = ctypes.create_string_buffer(512)  # struct timex, modes 0: read only
    state = libc.adjtimex(buffer)
    assert state >= 0, ctypes.get_errno()
    return 0.0 if state == _TIME_ERROR else 1.0


def host_samples(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = http_get(f"http://127.0.0.1:{port}/metrics").decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("erozgar_host_")
    }


def test_host_metrics_match_psutil_and_the_kernel(tmp_path: Path, state_on_tmpfs: Path) -> None:
    config = {
        "site": {"id": "TST-HOST"},
        "state_dir": str(state_on_tmpfs),
        "host": {"interval": 1, "filesystems": ["/"]},
    }
    with agent_process(config, tmp_path, 0) as port:
        time.sleep(1.5)  # one host refresh after start
        cpu_before = psutil.cpu_times()
        got = host_samples(port)
        cpu_after = psutil.cpu_times()
        text = http_get(f"http://127.0.0.1:{port}/metrics").decode()
        (pid,) = {c.pid for c in psutil.net_connections("tcp") if c.laddr.port == port and c.pid}
        started = psutil.Process(pid).create_time()
    # ErozgarAgentRestarting counts changes of the process start time.
    (line,) = [x for x in text.splitlines() if x.startswith("erozgar_process_start_time_seconds ")]
    assert float(line.split()[1]) == pytest.approx(started, abs=1)
    memory = psutil.virtual_memory()
    assert got[("erozgar_host_cpus", ())] == psutil.cpu_count()
    assert got[("erozgar_host_memory_total_bytes", ())] == memory.total
    assert got[("erozgar_host_memory_available_bytes", ())] == pytest.approx(
        memory.available, rel=0.1
    )
    assert got[("erozgar_host_boot_time_seconds", ())] == psutil.boot_time()
    cpus = psutil.cpu_count() or 1
    for mode in ("user", "system", "idle"):
        value = got[("erozgar_host_cpu_seconds_total", (("mode", mode),))]
        # read within the last refresh (1 s) before the scrape
        assert getattr(cpu_before, mode) - 2 * cpus <= value <= getattr(cpu_after, mode), mode
    # / as configured, and the state directory (not created yet) under its filesystem's mount
    # point, /dev/shm: the disk alert watches the filesystem the battery history lives on.
    sizes = {
        dict(labels)["mountpoint"]: value
        for (name, labels), value in got.items()
        if name == "erozgar_host_filesystem_size_bytes"
    }
    assert sizes == {
        "/": psutil.disk_usage("/").total,
        "/dev/shm": psutil.disk_usage("/dev/shm").total,
    }
    for mount in sizes:
        free = got[("erozgar_host_filesystem_available_bytes", (("mountpoint", mount),))]
        assert free == pytest.approx(psutil.disk_usage(mount).free, rel=0.05), mount
    nics = {
        dict(labels)["interface"]
        for (name, labels) in got
        if name == "erozgar_host_network_receive_bytes_total"
    }
    assert nics == {
        n for n in psutil.net_io_counters(pernic=True) if not n.startswith(_SKIPPED_NICS)
    }
    # The kernel's NTP state (this container's clock is not synchronised: 0 here).
    assert got[("erozgar_host_clock_synchronized", ())] == kernel_synchronized()
