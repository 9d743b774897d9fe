"""The month's availability report for PSEB, per ISP and region, from the fleet store.

    /opt/erozgar-venv/bin/python deploy/central/report.py --url http://127.0.0.1:8428 \\
        --month 2026-09 --isp PTCL [--region punjab] [--tz Asia/Karachi] --out ptcl-2026-09.html

Reads the store's query API (VictoriaMetrics, or Prometheus: /api/v1/query) and writes the
same self-contained page as `erozgar-agent report` at a centre (agent/report.py), one row per
link of the selection. Each day's seconds lost per link and cause are the rise of the agent's
persisted counter erozgar_link_unavailable_seconds_total over that calendar day, asked at the
day's end: two samples per day are enough, so the samples an ISP outage kept in a centre's
vmagent buffer count once they have arrived, and the time a centre's box was off is counted by
the agent when it came back (agent/checks/availability.py). A link that sent nothing all month
shows as available: the centre's own report (its ledger) is the reference for such a site.
The ISP and region of a link are those of its latest erozgar_link_info in the month. Delivered
against contracted capacity is the month's mean of erozgar_capacity_contract_ratio.

Exit codes: 0 written, 1 the store could not be asked, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import calendar
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from pathlib import Path
from zoneinfo import ZoneInfo

from agent.ledger import LEDGER_CAUSES
from agent.report import (
    CapacityRow,
    LinkMonth,
    MonthReport,
    month_bounds,
    parse_month,
    parse_zone,
    render,
)

Key = tuple[str, str]  # (site, link)


class StoreError(Exception):
    pass


class Store:
    def __init__(self, url: str, timeout: float = 60) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def query(self, expr: str, at: float) -> list[dict]:
        """An instant query at Unix time `at`."""
        params = urllib.parse.urlencode({"query": expr, "time": f"{at:.3f}", "nocache": 1})
        try:
            with urllib.request.urlopen(
                f"{self.url}/api/v1/query?{params}", timeout=self.timeout
            ) as response:
                body = json.load(response)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise StoreError(f"{self.url}: {exc}") from None
        if body.get("status") != "success":
            raise StoreError(f"{self.url}: {body.get('error', body)}")
        return body["data"]["result"]


def _matchers(isp: str | None, region: str | None) -> str:
    pairs = (("isp", isp), ("region", region))
    return ",".join(f"{label}={json.dumps(value)}" for label, value in pairs if value)


def build(
    store: Store,
    year: int,
    month: int,
    tz: ZoneInfo,
    isp: str | None,
    region: str | None,
    now: float,
) -> MonthReport:
    bounds = month_bounds(year, month, tz)
    until = min(bounds[-1], now)
    span = f"{int(until - bounds[0]) + 1}s"
    links: dict[Key, tuple[str, str]] = {}  # -> (isp, region)
    info = f"last_over_time(erozgar_link_info{{{_matchers(isp, region)}}}[{span}])"
    for row in store.query(f"topk by (site, link) (1, {info})", until):
        m = row["metric"]
        links[(m.get("site", ""), m.get("link", ""))] = (m.get("isp", ""), m.get("region", ""))
    days = len(bounds) - 1
    lost: dict[Key, dict[str, list[float]]] = defaultdict(
        lambda: {c: [0.0] * days for c in LEDGER_CAUSES}
    )
    day_seconds = []
    for day in range(days):
        start, end = bounds[day], min(bounds[day + 1], until)
        day_seconds.append(max(0.0, end - start))
        if end <= start:
            continue
        expr = (
            "sum by (site, link, cause) "
            f"(increase(erozgar_link_unavailable_seconds_total[{int(end - start)}s]))"
        )
        for row in store.query(expr, end):
            m = row["metric"]
            key = (m.get("site", ""), m.get("link", ""))
            if key in links and m.get("cause") in LEDGER_CAUSES:
                lost[key][m["cause"]][day] = max(0.0, float(row["value"][1]))
    ratios = {
        (row["metric"].get("site", ""), row["metric"].get("link", "")): float(row["value"][1])
        for row in store.query(
            f"avg by (site, link) (avg_over_time(erozgar_capacity_contract_ratio[{span}]))", until
        )
    }
    ordered = sorted(links, key=lambda k: (links[k], k))
    rows = tuple(
        LinkMonth(
            site,
            link,
            links[(site, link)][0],
            {c: tuple(v) for c, v in lost[(site, link)].items()},
            tuple(day_seconds),
        )
        for site, link in ordered
    )
    capacity = tuple(
        CapacityRow(
            site,
            link,
            links[(site, link)][0],
            "month mean",
            None,
            None,
            None,
            None,
            ratios[(site, link)],
            "erozgar_capacity_contract_ratio",
        )
        for site, link in ordered
        if (site, link) in ratios
    )
    what = ", ".join(filter(None, (isp, region))) or "all ISPs and regions"
    centres = len({site for site, _ in links})
    return MonthReport(
        f"{what}: availability, {calendar.month_name[month]} {year} ({centres} centres)",
        year, month, tz, rows, (), capacity, f"the fleet store at {store.url}",
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the store's query URL (Prometheus API)")
    parser.add_argument("--month", required=True, type=parse_month, metavar="YYYY-MM")
    parser.add_argument("--isp", help="only the links of this ISP (erozgar_link_info's isp)")
    parser.add_argument("--region", help="only the centres of this region")
    parser.add_argument("--tz", type=parse_zone, default=ZoneInfo("Asia/Karachi"), metavar="ZONE")
    parser.add_argument("--out", required=True, metavar="FILE", help="HTML file to write")
    args = parser.parse_args(argv)
    try:
        report = build(Store(args.url), *args.month, args.tz, args.isp, args.region, time.time())
    except StoreError as exc:
        print(f"the store cannot be asked: {exc}", file=sys.stderr)
        return 1
    Path(args.out).write_text(render(report), encoding="utf-8")
    for link in report.links:
        print(f"{link.site} {link.link} ({link.isp}): {link.availability() * 100:.2f} %")
    if not report.links:
        print("no link of that ISP and region sent erozgar_link_info this month", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
