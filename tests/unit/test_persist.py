"""State files: atomic under kill -9, corrupt files set aside, unwritable directories survived."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.checks.battery import BatteryMonitor
from agent.persist import JsonStateFile
from collectors.readings import UpsReading

WRITER = """
import sys
from pathlib import Path
from agent.persist import JsonStateFile
store = JsonStateFile(Path(sys.argv[1]))
n = 0
while True:
    n += 1
    # A few kB per write, so a kill lands inside a write as well as between writes.
    store.save({"n": n, "pad": "x" * 4000 + str(n)})
    if n == 20:
        print("writing", flush=True)
"""


def test_kill_9_during_writes_leaves_the_old_or_the_new_file(tmp_path: Path) -> None:
    path = tmp_path / "ups-x.json"
    for round_ in range(5):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "writing"
        time.sleep(0.05 * round_)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        data = json.loads(path.read_text())  # never torn
        assert data["pad"].endswith(str(data["n"])) and data["n"] >= 20
    assert JsonStateFile(path).load()["n"] >= 20


def test_corrupt_file_is_reported_and_set_aside(tmp_path: Path, caplog) -> None:
    path = tmp_path / "ups-ups-rack.json"
    path.write_text('{"version": 1, "outages": 3')  # torn by something other than us
    with caplog.at_level(logging.ERROR, logger="agent.persist"):
        monitor = BatteryMonitor("ups-rack", state_dir=tmp_path, clock=lambda: 1000.0)
    assert monitor.report().outages == 0
    assert monitor.report().state_errors == {"corrupt": 1}
    aside = list(tmp_path.glob("ups-ups-rack.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text() == '{"version": 1, "outages": 3'
    assert not path.exists()
    assert "is corrupt (not valid JSON" in caplog.text and str(aside[0]) in caplog.text


def test_wrong_layout_is_set_aside_too(tmp_path: Path) -> None:
    (tmp_path / "ups-u.json").write_text('{"version": 99}')
    monitor = BatteryMonitor("u", state_dir=tmp_path)
    assert monitor.report().state_errors == {"corrupt": 1}


def test_unwritable_state_path_is_reported_and_polling_goes_on(tmp_path: Path, caplog) -> None:
    # A regular file where the directory should be: fails for root too (ENOTDIR).
    blocker = tmp_path / "state"
    blocker.write_text("")
    _unwritable(blocker, caplog)


def _unwritable(state_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    now = [1000.0]
    monitor = BatteryMonitor("ups-rack", state_dir=state_dir, clock=lambda: now[0])
    reading = UpsReading(
        values={"battery.charge": 100.0}, info={}, flags=frozenset({"OL"}), known_flags=frozenset()
    )
    outage = UpsReading(
        values={"battery.charge": 90.0}, info={}, flags=frozenset({"OB"}), known_flags=frozenset()
    )
    with caplog.at_level(logging.ERROR, logger="agent.persist"):
        monitor.update(reading)
        now[0] += 60
        report = monitor.update(outage)  # an event: saved at once, or tried
        now[0] += 60
        report = monitor.update(outage)
    assert report.outages == 1  # judged from memory all the same
    assert report.state_errors["write"] >= 2
    assert caplog.text.count("cannot be written") == 1  # once per failure streak, not per poll
