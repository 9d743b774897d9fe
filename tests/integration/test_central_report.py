"""deploy/central/report.py against a real VictoriaMetrics: the counters a month of known
outages leaves in the store (imported with their timestamps, as vmagent's buffer delivers them
late) give, per ISP and region, the figures the centre's own ledger gives (test_report.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.ledger import LEDGER_CAUSES, OutageRecord
from tests.report_page import parse

from .deploy_stack import DEPLOY, VictoriaMetrics, http_get
from .test_report import OUTAGES, at
from .test_status_page import chromium

pytestmark = pytest.mark.integration

STEP = 600  # a sample every 10 minutes
FROM = datetime(2026, 8, 31, tzinfo=UTC).timestamp()
TO = datetime(2026, 10, 1, 0, 10, tzinfo=UTC).timestamp()
# site, region, link, isp -> the outages that strike it
LINKS = {
    ("ISB-001", "islamabad", "ptcl", "PTCL"): [r for r in OUTAGES if r.strikes("ptcl")],
    ("LHR-004", "punjab", "ptcl", "PTCL"): [OutageRecord(at(15, 12), 3600, "isp", "wan", "ptcl")],
    ("LHR-004", "punjab", "nayatel", "Nayatel"): [],
}
CONTRACT = {("ISB-001", "ptcl"): 0.82, ("LHR-004", "ptcl"): 0.5, ("LHR-004", "nayatel"): 0.97}


def lost(records: list[OutageRecord], cause: str, t: float) -> float:
    """The agent's counter at `t`: seconds of `cause` lost so far."""
    return sum(min(max(t - r.start, 0.0), r.seconds) for r in records if r.cause == cause)


def series() -> list[dict]:
    times = [FROM + i * STEP for i in range(int((TO - FROM) / STEP) + 1)]
    stamps = [int(t * 1000) for t in times]
    out = []
    for (site, region, link, isp), records in LINKS.items():
        where = {"site": site, "region": region, "link": link, "job": "erozgar-agent"}
        out.append(
            {
                "metric": {"__name__": "erozgar_link_info", **where, "isp": isp, "device": ""},
                "values": [1] * len(times),
                "timestamps": stamps,
            }
        )
        for cause in LEDGER_CAUSES:
            out.append(
                {
                    "metric": {
                        "__name__": "erozgar_link_unavailable_seconds_total", **where,
                        "cause": cause,
                    },
                    "values": [lost(records, cause, t) for t in times],
                    "timestamps": stamps,
                }
            )  # fmt: skip
        out.append(
            {
                "metric": {"__name__": "erozgar_capacity_contract_ratio", **where},
                "values": [CONTRACT[(site, link)]] * len(times),
                "timestamps": stamps,
            }
        )
    return out


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("central-report")
    vm = VictoriaMetrics(root, retention="100y")
    vm.start()
    try:
        body = "\n".join(json.dumps(s) for s in series()).encode()
        request = urllib.request.Request(f"{vm.url}/api/v1/import", data=body, method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 204
        http_get(f"{vm.url}/internal/force_flush")
        yield vm
    finally:
        vm.stop()


def report(vm: VictoriaMetrics, out: Path, *selection: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DEPLOY / "central" / "report.py"), "--url", vm.url,
         "--month", "2026-09", "--tz", "UTC", "--out", str(out), *selection],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_page_for_an_isp_has_its_links_figures(store: VictoriaMetrics, tmp_path: Path) -> None:
    out = tmp_path / "ptcl.html"
    result = report(store, out, "--isp", "PTCL")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "ISB-001 ptcl (PTCL): 99.65 %",
        "LHR-004 ptcl (PTCL): 99.86 %",
    ]
    dom = chromium(out.as_uri(), "--dump-dom", profile=tmp_path / "profile")
    assert dom.returncode == 0, dom.stderr[-2000:]
    seen = parse(dom.stdout)
    # the same figures as the centre's ledger gives (test_report.py), and the August outage
    # before the month's first midnight is not September's
    assert seen.tables["summary"][1:] == [
        ["ISB-001", "ptcl", "PTCL", "99.65 %", "45.0", "90.0", "0.0", "15.0"],
        ["LHR-004", "ptcl", "PTCL", "99.86 %", "0.0", "60.0", "0.0", "0.0"],
    ]
    days = {row[0]: row[1:] for row in seen.tables["days"][1:]}
    assert days["2026-09-01"] == ["100.00 %", "100.00 %"]
    assert days["2026-09-15"] == ["100.00 %", "95.83 %"]
    assert days["2026-09-20"] == days["2026-09-21"] == ["97.92 %", "100.00 %"]
    capacity = [(row[0], row[7]) for row in seen.tables["capacity"][1:]]
    assert capacity == [("ISB-001", "82.00 %"), ("LHR-004", "50.00 %")]
    assert seen.svgs == 2
    assert "PTCL: availability, September 2026 (2 centres)" in dom.stdout


def test_a_region_takes_every_isp_of_its_centres(store: VictoriaMetrics, tmp_path: Path) -> None:
    result = report(store, tmp_path / "punjab.html", "--region", "punjab")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "LHR-004 nayatel (Nayatel): 100.00 %",
        "LHR-004 ptcl (PTCL): 99.86 %",
    ]


def test_a_store_that_does_not_answer_is_exit_1(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(DEPLOY / "central" / "report.py"), "--url", "http://127.0.0.1:9",
         "--month", "2026-09", "--out", str(tmp_path / "x.html")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("the store cannot be asked: http://127.0.0.1:9")
    assert "Traceback" not in result.stderr
