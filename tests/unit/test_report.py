"""The month's figures from a ledger (agent/report.py): days in the site's time zone, the
month so far when it is the current one, outages split at midnight."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from agent.ledger import LEDGER_FILE, Ledger, OutageRecord
from agent.report import from_ledger, month_bounds, render
from tests.report_page import parse

KARACHI = ZoneInfo("Asia/Karachi")


def utc(day: int, hour: int, minute: int = 0) -> float:
    return datetime(2026, 9, day, hour, minute, tzinfo=UTC).timestamp()


def test_days_begin_at_the_sites_midnight() -> None:
    bounds = month_bounds(2026, 9, KARACHI)
    assert len(bounds) == 31
    assert bounds[0] == datetime(2026, 8, 31, 19, tzinfo=UTC).timestamp()  # UTC+5
    assert bounds[-1] == datetime(2026, 9, 30, 19, tzinfo=UTC).timestamp()


def test_the_current_month_counts_only_the_time_gone_by(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / LEDGER_FILE)
    ledger.append(OutageRecord(utc(3, 10), 30 * 60, "isp", "wan", "ptcl", "PTCL"))
    # 23:30 to 00:30 in Karachi is 18:30 to 19:30 UTC: half on the 5th, half on the 6th
    ledger.append(OutageRecord(utc(5, 18, 30), 60 * 60, "isp", "wan", "ptcl", "PTCL"))
    report = from_ledger(ledger, "LHR-017", {"ptcl": "PTCL"}, 2026, 9, KARACHI, utc(10, 7))
    (link,) = report.links
    gone_by = (utc(10, 7) - month_bounds(2026, 9, KARACHI)[0]) / 60  # 9.5 days of minutes
    assert link.availability() == 1 - 90 / gone_by
    assert link.lost["isp"][4] == link.lost["isp"][5] == 1800.0
    days = {row[0]: row[1] for row in parse(render(report)).tables["days"][1:]}
    assert days["2026-09-06"] == "97.92 %"
    assert days["2026-09-10"] == "100.00 %"  # half gone by, nothing lost
    assert days["2026-09-11"] == ""  # not yet
