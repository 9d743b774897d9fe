"""The monthly availability report: one self-contained HTML page PSEB can put before an ISP.

Built at the centre from the outage ledger (`erozgar-agent report`, `from_ledger`) and centrally
from the fleet store (deploy/central/report.py builds the same MonthReport from the store's
counters): availability per link for the month and per day, the time lost by cause, the
outages themselves (at the centre), capacity tests against the contract, and one plot per link.
The page has no external assets (inline CSS, SVG drawn here), so it opens from a USB stick or
an e-mail and prints to PDF (A4, print CSS: no page breaks inside a table row or a plot).

Availability of a link = 1 - (seconds it was down, any cause, agent's own gaps included) /
(seconds of the period). The ISP's share is the seconds of cause "isp" alone: what the ISP is
accountable for; power, LAN and the agent's gaps are the centre's.
"""

from __future__ import annotations

import argparse
import calendar
import html
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .ledger import LEDGER_CAUSES, Ledger, OutageRecord

COLOURS = {"power": "#d97706", "isp": "#dc2626", "lan": "#2563eb", "agent": "#6b7280"}


@dataclass(frozen=True, slots=True)
class LinkMonth:
    """One link's seconds lost per cause and day of the month."""

    site: str
    link: str
    isp: str
    lost: Mapping[str, tuple[float, ...]]  # cause -> seconds per day
    day_seconds: tuple[float, ...]  # length of each day (the month's last may be cut short)

    def lost_on(self, day: int) -> float:
        return sum(days[day] for days in self.lost.values())

    def availability(self, day: int | None = None) -> float:
        days = range(len(self.day_seconds)) if day is None else [day]
        period = sum(self.day_seconds[d] for d in days)
        lost = sum(self.lost_on(d) for d in days)
        return max(0.0, 1.0 - lost / period) if period else 1.0

    def total(self, cause: str) -> float:
        return sum(self.lost.get(cause, ()))


@dataclass(frozen=True, slots=True)
class CapacityRow:
    site: str
    link: str
    isp: str
    when: str
    download_bps: float | None
    upload_bps: float | None
    contract_down_bps: float | None
    contract_up_bps: float | None
    ratio: float | None  # delivered / contracted, download
    note: str = ""


@dataclass(frozen=True, slots=True)
class MonthReport:
    title: str
    year: int
    month: int
    tz: tzinfo
    links: tuple[LinkMonth, ...]
    outages: tuple[OutageRecord, ...]  # empty centrally: the store keeps counters, not events
    capacity: tuple[CapacityRow, ...]
    source: str  # where the figures come from, one line

    @property
    def days(self) -> int:
        return calendar.monthrange(self.year, self.month)[1]


def parse_month(value: str) -> tuple[int, int]:
    """YYYY-MM as (year, month); an argparse type."""
    try:
        year, month = (int(part) for part in value.split("-"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not YYYY-MM") from None
    if not (1970 <= year <= 9999 and 1 <= month <= 12):
        raise argparse.ArgumentTypeError(f"{value!r} is not YYYY-MM")
    return year, month


def parse_zone(value: str) -> ZoneInfo:
    """A time zone name (Asia/Karachi); an argparse type."""
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a time zone (e.g. Asia/Karachi)"
        ) from None


def month_bounds(year: int, month: int, tz: tzinfo) -> list[float]:
    """Unix times of the month's day boundaries in `tz`: days + 1 of them."""
    days = calendar.monthrange(year, month)[1]
    after = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=tz)
    edges = [datetime(year, month, d, tzinfo=tz).timestamp() for d in range(1, days + 1)]
    return [*edges, after.timestamp()]


def split_by_day(
    records: Iterable[OutageRecord], link: str, bounds: Sequence[float]
) -> dict[str, tuple[float, ...]]:
    """Seconds `link` was down per cause and day (`bounds`: the days' edges)."""
    lost = {c: [0.0] * (len(bounds) - 1) for c in LEDGER_CAUSES}
    for record in records:
        if not record.strikes(link) or record.cause not in lost:
            continue
        for day in range(len(bounds) - 1):
            overlap = min(record.end, bounds[day + 1]) - max(record.start, bounds[day])
            if overlap > 0:
                lost[record.cause][day] += overlap
    return {c: tuple(v) for c, v in lost.items()}


def from_ledger(
    ledger: Ledger,
    site: str,
    links: Mapping[str, str | None],
    year: int,
    month: int,
    tz: tzinfo,
    now: float,
) -> MonthReport:
    """The centre's report for a month: its configured links (link -> ISP) and the ledger."""
    bounds = month_bounds(year, month, tz)
    until = min(bounds[-1], now)  # the month so far, when it is the current one
    outages, tests = ledger.between(bounds[0], until)
    day_seconds = tuple(max(0.0, min(b, until) - a) for a, b in itertools.pairwise(bounds))
    rows = tuple(
        LinkMonth(site, link, isp or "", split_by_day(outages, link, bounds), day_seconds)
        for link, isp in links.items()
    )
    capacity = tuple(
        CapacityRow(
            site,
            t.link,
            t.isp or "",
            _when(t.finished, tz),
            t.download_bps,
            t.upload_bps,
            t.contract_down_bps,
            t.contract_up_bps,
            t.ratio("download"),
            t.error or t.method,
        )
        for t in sorted(tests, key=lambda t: t.finished)
    )
    return MonthReport(
        f"{site}: availability, {calendar.month_name[month]} {year}",
        year,
        month,
        tz,
        rows,
        tuple(sorted(outages, key=lambda r: r.start)),
        capacity,
        f"the centre's outage ledger ({ledger.path})",
    )


def _when(unix: float, tz: tzinfo) -> str:
    return datetime.fromtimestamp(unix, tz).strftime("%Y-%m-%d %H:%M")


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f}"


def _percent(ratio: float | None) -> str:
    return "" if ratio is None else f"{ratio * 100:.2f} %"


def _mbps(bps: float | None) -> str:
    return "" if bps is None else f"{bps / 1e6:.1f}"


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "") -> str:
    e = html.escape
    out = [f'<table class="{cls}"><thead><tr>']
    out += [f"<th>{e(h)}</th>" for h in head]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def plot(link: LinkMonth, width: int = 720, height: int = 200) -> str:
    """Minutes lost per day, stacked by cause, as inline SVG."""
    days = len(link.day_seconds)
    left, bottom, top = 44, 22, 10
    inner_w, inner_h = width - left - 8, height - bottom - top
    peak = max([link.lost_on(d) / 60 for d in range(days)] + [60.0])
    step = inner_w / days
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="minutes lost per day, '
        f'{html.escape(link.link)}">',
        f'<line x1="{left}" y1="{top + inner_h}" x2="{width - 8}" y2="{top + inner_h}" '
        'stroke="#444"/>',
    ]
    for tick in (0.0, peak / 2, peak):
        y = top + inner_h - tick / peak * inner_h
        parts.append(
            f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">'
            f"{tick:.0f}</text>"
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - 8}" y2="{y:.1f}" stroke="#ddd"/>'
        )
    for day in range(days):
        x, base = left + day * step, top + inner_h
        for cause in LEDGER_CAUSES:
            minutes = link.lost.get(cause, (0.0,) * days)[day] / 60
            if minutes <= 0:
                continue
            h = minutes / peak * inner_h
            base -= h
            parts.append(
                f'<rect class="bar {cause}" x="{x + 1:.1f}" y="{base:.1f}" width="{step - 2:.1f}" '
                f'height="{h:.1f}" fill="{COLOURS[cause]}"><title>day {day + 1}: '
                f"{minutes:.1f} min {cause}</title></rect>"
            )
        if day % 5 == 0 or day == days - 1:
            parts.append(
                f'<text x="{x + step / 2:.1f}" y="{height - 6}" font-size="10" '
                f'text-anchor="middle">{day + 1}</text>'
            )
    parts.append(f'<text x="4" y="{top + 8}" font-size="10">min</text></svg>')
    return "".join(parts)


_CSS = """
body{font-family:DejaVu Sans,Arial,sans-serif;margin:2em;color:#111;font-size:13px}
h1{font-size:20px;margin-bottom:0}h2{font-size:16px;margin-top:1.6em}
p.source{color:#555;margin-top:.3em}
table{border-collapse:collapse;margin:.5em 0}
th,td{border:1px solid #bbb;padding:3px 7px;text-align:right}
th{background:#eee}td:first-child,th:first-child{text-align:left}
table.days td,table.days th{padding:2px 4px;font-size:11px}
.legend span{display:inline-block;margin-right:1.2em}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}
figure{margin:.5em 0 1.2em 0;page-break-inside:avoid}
@page{size:A4;margin:12mm}
@media print{body{margin:0;font-size:11px}tr,figure{page-break-inside:avoid}
h2{page-break-after:avoid}}
"""


def render(report: MonthReport) -> str:
    """The whole page."""
    e = html.escape
    causes = LEDGER_CAUSES
    summary = _table(
        ["Site", "Link", "ISP", "Availability", *[f"{c} (min)" for c in causes]],
        (
            [
                link.site,
                link.link,
                link.isp,
                _percent(link.availability()),
                *[_minutes(link.total(c)) for c in causes],
            ]
            for link in report.links
        ),
        "summary",
    )
    days = _table(
        ["Day", *[f"{link.site} {link.link}".strip() for link in report.links]],
        (
            [f"{report.year}-{report.month:02d}-{d + 1:02d}"]
            + [
                _percent(link.availability(d) if link.day_seconds[d] else None)
                for link in report.links
            ]
            for d in range(report.days)
        ),
        "days",
    )
    legend = "".join(f'<span><i style="background:{COLOURS[c]}"></i>{c}</span>' for c in causes)
    figures = "".join(
        f"<figure><figcaption>{e(link.site)} {e(link.link)} ({e(link.isp or 'ISP not set')}): "
        f"{_percent(link.availability())}, minutes lost per day</figcaption>{plot(link)}</figure>"
        for link in report.links
    )
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(report.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(report.title)}</h1>",
        f'<p class="source">From {e(report.source)}; days in {e(str(report.tz))}. '
        "Availability: the share of the month the link was not down for any cause; "
        "the ISP is accountable for the minutes of cause isp.</p>",
        "<h2>Availability per link</h2>",
        summary,
        f'<h2>Minutes lost per day</h2><p class="legend">{legend}</p>',
        figures,
        "<h2>Availability per day</h2>",
        days,
    ]
    if report.outages:
        parts += [
            "<h2>Outages</h2>",
            _table(
                ["Start", "End", "Minutes", "Cause", "Link", "ISP", "Device"],
                (
                    [
                        _when(r.start, report.tz),
                        _when(r.end, report.tz),
                        _minutes(r.seconds),
                        r.cause,
                        r.link or ("every link" if r.kind == "site" else ""),
                        r.isp,
                        " ".join(filter(None, (r.device, r.interface))),
                    ]
                    for r in report.outages
                ),
                "outages",
            ),
        ]
    parts += ["<h2>Capacity against the contract</h2>"]
    if report.capacity:
        parts.append(
            _table(
                [
                    "Site",
                    "Link",
                    "ISP",
                    "When",
                    "Down Mb/s",
                    "Up Mb/s",
                    "Contract Mb/s",
                    "Delivered",
                    "Note",
                ],
                (
                    [
                        c.site,
                        c.link,
                        c.isp,
                        c.when,
                        _mbps(c.download_bps),
                        _mbps(c.upload_bps),
                        f"{_mbps(c.contract_down_bps)}/{_mbps(c.contract_up_bps)}",
                        _percent(c.ratio),
                        c.note,
                    ]
                    for c in report.capacity
                ),
                "capacity",
            )
        )
    else:
        parts.append("<p>No capacity test in this month.</p>")
    parts.append("</body></html>\n")
    return "".join(parts)
