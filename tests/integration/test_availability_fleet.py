"""An ISP outage seen end to end: the agent's link dies and so does the way to the store; the
shipped vmagent keeps the samples on disk and delivers them, with their own timestamps, when
the line returns; the central report then shows the minutes the agent counted."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.report_page import parse

from .deploy_stack import (
    DEPLOY,
    VictoriaMetrics,
    agent_process,
    free_tcp_port,
    running,
    scrape_config,
    vmagent_command,
    vmagent_metric,
)
from .test_deploy_fleet import FAST_S, SLOW_S
from .test_ledger import IspLine
from .test_service_loss import key, samples

pytestmark = pytest.mark.integration

OUTAGE_S = 26  # longer than the 20 s a loss must last to go on record


def test_an_isp_outage_reaches_the_central_report_after_the_line_returns(tmp_path: Path) -> None:
    line = IspLine()
    config = {
        "site": {"id": "TST-AV"},
        "state_dir": str(tmp_path),
        "links": [
            {"name": "ptcl", "isp": "PTCL", "interval": 1, "count": 1, "timeout": 0.3,
             "targets": [{"name": "edge", "address": "127.0.0.1", "tcp_port": line.port}]}
        ],
    }  # fmt: skip
    vm = VictoriaMetrics(tmp_path)
    vm.start()
    vmagent_port = free_tcp_port()
    counter = key("erozgar_link_unavailable_seconds_total", link="ptcl", cause="isp")
    try:
        with agent_process(config, tmp_path, 0) as agent_port:
            argv = vmagent_command(
                tmp_path,
                f"{vm.url}/api/v1/write",
                "TST-AV",
                scrape_config(FAST_S, SLOW_S, f"127.0.0.1:{agent_port}", {}),
                vmagent_port,
            )
            with running(argv, tmp_path / "vmagent.log", f"http://127.0.0.1:{vmagent_port}/health"):
                time.sleep(4)
                vm.stop()  # the line is the way to the store too
                line.up = False
                start = time.time()
                time.sleep(OUTAGE_S)
                line.up = True
                vm.start()
                end = time.time()
                deadline = time.monotonic() + 30
                while vmagent_metric(vmagent_port, "vmagent_remotewrite_pending_data_bytes") > 0:
                    assert time.monotonic() < deadline, "vmagent did not drain its buffer in 30 s"
                    time.sleep(0.5)
                deadline = time.monotonic() + 30
                while not (lost := samples(agent_port).get(counter, 0.0)):
                    assert time.monotonic() < deadline, "the outage not on record in 30 s"
                    time.sleep(0.5)
                time.sleep(3 * SLOW_S + 2)  # the counter's rise scraped and shipped
        (link_up,) = vm.export('erozgar_link_up{site="TST-AV"}')
        stored = vm.query('erozgar_link_unavailable_seconds_total{site="TST-AV",cause="isp"}')
        out = tmp_path / "report.html"
        report = subprocess.run(
            [sys.executable, str(DEPLOY / "central" / "report.py"), "--url", vm.url,
             "--month", time.strftime("%Y-%m", time.gmtime()), "--tz", "UTC", "--isp", "PTCL",
             "--out", str(out)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        vm.stop()
        line.close()
    # the samples of the outage arrived after it, stamped when they were scraped during it
    during = [
        value
        for stamp, value in zip(link_up["timestamps"], link_up["values"], strict=True)
        if start + 3 < stamp / 1000 < end - 1
    ]
    assert len(during) >= OUTAGE_S / 2 / FAST_S and set(during) == {0}, link_up
    assert 20 <= lost <= OUTAGE_S + 2
    assert float(stored[0]["value"][1]) == pytest.approx(lost, abs=1e-6)
    assert report.returncode == 0, report.stderr
    (row,) = parse(out.read_text()).tables["summary"][1:]
    assert row[:3] == ["TST-AV", "ptcl", "PTCL"]
    assert row[5] == f"{lost / 60:.1f}"  # the ISP's minutes, as the agent counted them
