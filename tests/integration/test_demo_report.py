"""`erozgar-agent demo` puts its simulated ISP line drops in the outage ledger, and the report
command it prints turns its state dir into the month's page."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.report_page import parse

from .conftest import require
from .deploy_stack import free_tcp_port
from .test_service_loss import key, samples

pytestmark = pytest.mark.integration


def test_the_demo_ledger_makes_a_report(tmp_path: Path) -> None:
    port = free_tcp_port()
    out, log = tmp_path / "demo.out", tmp_path / "demo.log"
    with out.open("w") as stdout, log.open("w") as stderr:
        demo = subprocess.Popen(
            [require("erozgar-agent"), "demo", "--listen", f"127.0.0.1:{port}",
             "--isp-outage-every", "60", "--isp-outage-length", "25"],
            stdout=stdout, stderr=stderr,
        )  # fmt: skip
    isp = key("erozgar_link_unavailable_seconds_total", link="ptcl", cause="isp")
    try:
        deadline = time.monotonic() + 60
        seen = 0.0
        while time.monotonic() < deadline and seen == 0:
            time.sleep(1)
            try:
                seen = samples(port).get(isp, 0.0)
            except OSError:
                continue
        assert seen >= 20, log.read_text()[-3000:]
    finally:
        demo.send_signal(signal.SIGTERM)
        demo.wait(timeout=30)
    assert "Traceback" not in log.read_text()
    (command,) = re.findall(r"Monthly report: (erozgar-agent report .*)", out.read_text())
    argv = command.split()
    page = tmp_path / "report.html"
    argv[argv.index("--out") + 1] = str(page)
    result = subprocess.run(
        [require("erozgar-agent"), *argv[1:]], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "holds secrets" not in result.stderr  # the demo's config file is its user's only
    minutes = float(re.search(r"ptcl: [\d.]+ % available, ([\d.]+) min lost", result.stderr)[1])
    assert minutes == pytest.approx(seen / 60, abs=0.05)
    outages = parse(page.read_text()).tables["outages"][1:]
    assert [(row[3], row[4], row[5], row[6]) for row in outages] == [
        ("isp", "ptcl", "PTCL", "core-router ether1")
    ]
