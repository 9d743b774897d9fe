"""`erozgar-agent report` on a known ledger, rendered by headless Chromium: the figures a reader
sees (availability per link and day, minutes by cause, the outages, capacity against contract)
are those the ledger implies, and the page prints to A4 PDF with nothing fetched from outside."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from agent.checks.capacity import CapacityResult
from agent.ledger import LEDGER_FILE, Ledger, OutageRecord
from tests.report_page import parse

from .conftest import require
from .test_status_page import chromium

pytestmark = pytest.mark.integration


def at(day: int, hour: int, minute: int = 0) -> float:
    return datetime(2026, 9, day, hour, minute, tzinfo=UTC).timestamp()


# September 2026, 30 days = 43,200 minutes. ptcl: ISP 30 min on the 3rd, power 45 min on the 10th,
# ISP 60 min across midnight 20th/21st; the agent off 15 min on the 25th (every link);
# a switch dark 20 min (LAN, no link); an ISP outage in August that must not count.
OUTAGES = [
    OutageRecord(at(3, 10), 30 * 60, "isp", "wan", "ptcl", "PTCL", "core-router", "ether1"),
    OutageRecord(at(10, 14), 45 * 60, "power", "wan", "ptcl", "PTCL", "core-router", "ether1"),
    OutageRecord(at(20, 23, 30), 60 * 60, "isp", "wan", "ptcl", "PTCL", "core-router", "ether1"),
    OutageRecord(at(25, 2), 15 * 60, "agent", "site"),
    OutageRecord(at(12, 9), 20 * 60, "lan", "device", device="sw-floor1"),
    OutageRecord(at(1, 0) - 7200, 3600, "isp", "wan", "ptcl", "PTCL", "core-router", "ether1"),
]
TEST = CapacityResult(
    "ptcl", "PTCL", at(4, 3), "iperf3", 82e6, 19.5e6, 0.045, 100e6, 20e6, 1_500_000_000, ""
)


@pytest.fixture
def page(tmp_path: Path) -> Path:
    ledger = Ledger(tmp_path / LEDGER_FILE)
    for record in [*OUTAGES, TEST]:
        assert ledger.append(record)
    target = {"name": "dns", "address": "127.0.0.1"}
    config = {
        "site": {"id": "LHR-017", "name": "e-Rozgar Centre Lahore"},
        "state_dir": str(tmp_path),
        "links": [
            {"name": "ptcl", "isp": "PTCL", "targets": [target]},
            {"name": "nayatel", "isp": "Nayatel", "targets": [target]},
        ],
    }
    (tmp_path / "agent.yml").write_text(yaml.safe_dump(config))
    out = tmp_path / "report.html"
    result = subprocess.run(
        [require("erozgar-agent"), "report", "--config", str(tmp_path / "agent.yml"),
         "--month", "2026-09", "--tz", "UTC", "--out", str(out)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "ptcl: 99.65 % available, 90.0 min lost to the ISP" in result.stderr
    return out


def test_chromium_shows_the_figures_the_ledger_implies(page: Path, tmp_path: Path) -> None:
    dom = chromium(page.as_uri(), "--dump-dom", profile=tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    seen = parse(dom.stdout)
    head, *rows = seen.tables["summary"]
    assert head == ["Site", "Link", "ISP", "Availability", "power (min)", "isp (min)",
                    "lan (min)", "agent (min)"]  # fmt: skip
    # ptcl: 30 + 45 + 60 + 15 = 150 of 43,200 minutes; nayatel: the agent's 15 minutes only
    assert rows == [
        ["LHR-017", "ptcl", "PTCL", "99.65 %", "45.0", "90.0", "0.0", "15.0"],
        ["LHR-017", "nayatel", "Nayatel", "99.97 %", "0.0", "0.0", "0.0", "15.0"],
    ]
    days = {row[0]: row[1:] for row in seen.tables["days"][1:]}
    assert len(days) == 30
    assert days["2026-09-03"] == ["97.92 %", "100.00 %"]  # 30 of 1,440 minutes
    assert days["2026-09-20"] == days["2026-09-21"] == ["97.92 %", "100.00 %"]  # 30 + 30
    assert days["2026-09-25"] == ["98.96 %", "98.96 %"]
    outages = seen.tables["outages"][1:]
    assert [(o[0], o[2], o[3], o[4]) for o in outages] == [
        ("2026-09-03 10:00", "30.0", "isp", "ptcl"),
        ("2026-09-10 14:00", "45.0", "power", "ptcl"),
        ("2026-09-12 09:00", "20.0", "lan", ""),
        ("2026-09-20 23:30", "60.0", "isp", "ptcl"),
        ("2026-09-25 02:00", "15.0", "agent", "every link"),
    ]
    assert outages[3][1] == "2026-09-21 00:30"
    (test,) = seen.tables["capacity"][1:]
    assert test[3:8] == ["2026-09-04 03:00", "82.0", "19.5", "100.0/20.0", "82.00 %"]
    assert seen.svgs == 2  # one plot per link
    assert sorted(seen.bars) == sorted(["isp", "power", "isp", "isp", "agent", "agent"])


def test_the_page_prints_to_a4_pdf_and_fetches_nothing(page: Path, tmp_path: Path) -> None:
    text = page.read_text()
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in text and "<link" not in text and "<script" not in text
    pdf = tmp_path / "report.pdf"
    result = chromium(
        page.as_uri(), f"--print-to-pdf={pdf}", "--no-pdf-header-footer",
        profile=tmp_path / "profile-pdf",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    assert b"/MediaBox [0 0 594.95996 841.91998]" in data  # A4 from the page's @page rule


def test_a_bad_month_is_exit_2_and_an_unwritable_page_exit_1(tmp_path: Path) -> None:
    config = tmp_path / "agent.yml"
    config.write_text(yaml.safe_dump({"site": {"id": "X-1"}, "state_dir": str(tmp_path)}))
    config.chmod(0o600)

    def report(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [require("erozgar-agent"), "report", "--config", str(config), *args],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    bad = report("--month", "2026-13")
    assert bad.returncode == 2 and "--month: '2026-13' is not YYYY-MM" in bad.stderr
    unwritable = report("--month", "2026-09", "--out", str(tmp_path / "no" / "r.html"))
    assert unwritable.returncode == 1
    assert "No such file or directory" in unwritable.stderr
    assert "Traceback" not in unwritable.stderr
