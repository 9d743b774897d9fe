"""A minute of bench/soak.py: the reference centre polled every 2 s with faults injected at
random into every kind of device. Judged on behaviour, not speed: no stuck job, no descriptor
left behind, no false rate, and every device back by itself after each fault. RSS growth needs
the long run (`bench/soak.py --minutes 60`) to mean anything, so it is not judged here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KINDS = {
    "snmp:silent", "snmp:slow", "snmp:restart",
    "modbus:silent", "modbus:slow", "modbus:reset", "modbus:exception", "modbus:gateway_restart",
}  # fmt: skip


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_centre_survives_a_minute_of_random_faults(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    done = subprocess.run(
        [
            sys.executable, str(ROOT / "bench" / "soak.py"),
            "--minutes", "1", "--warmup", "0.25", "--interval", "2",
            "--fault-every", "1", "--max-faults", "4",
            "--rss-limit", "1000",  # not judged in a minute, see the docstring
            "--json", str(out), "--workdir", str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        timeout=280,
    )  # fmt: skip
    assert out.exists(), done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["stuck_jobs_max"] == 0
    assert result["fds"]["end"] - result["fds"]["warm"] <= 3, result["fds"]
    assert result["unrecovered"] == []
    assert result["false_rates"] == []
    # every kind of fault was injected, seen by the agent where it makes the device fail,
    # and recovered from every time
    assert set(result["faults"]) == KINDS, result["faults"]
    for kind, row in result["faults"].items():
        assert row["recovered"] == row["injected"], (kind, row)
    assert "exception_2" in result["faults"]["modbus:exception"]["reasons"]
    assert "refused" in result["faults"]["modbus:gateway_restart"]["reasons"]
    assert "timeout" in result["faults"]["snmp:silent"]["reasons"]
    assert result["verdicts"]["agent_alive_no_traceback"], result["first_traceback"]
    assert done.returncode == 0, result["verdicts"]
