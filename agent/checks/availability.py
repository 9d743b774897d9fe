"""Availability check: the losses of service (checks/service.py) as a durable calendar record.

Each loss the service check reports is written to the outage ledger (agent/ledger.py) when it
ends, with its cause, link (and the link's ISP), device and port; and the seconds lost are kept
as counters that survive restarts: per cause for the site (`site`: time during which any loss of
that cause went on, as erozgar_service_loss says) and per configured link and cause (`links`).
A loss shorter than SETTLE_SECONDS is not on record (a flicker, as the service check counts it).

Clocks. Start and end are wall-clock Unix times (the ledger is a calendar); how long a loss
lasted is measured on the monotonic clock while the agent runs, and the end is start + that, so
an NTP step in the middle of an outage moves neither its length nor the counters.

Restarts. Every HEARTBEAT_SECONDS (and at every change) the check saves, atomically, the wall
time, the counters, the losses still open with the seconds counted so far, and whether the site
was on battery with a UPS nearly empty. The counters are exported as saved, so they never go
back after a restart (a counter that went back would read as a reset to rate() and increase()).
At start:

- a loss still open in the saved state (a crash, a power cut, kill -9) is closed at the
  heartbeat that last saw it, with the seconds counted then: the agent cannot know more;
- a clean stop closes every loss at the stop and saves a last heartbeat;
- the time from the last heartbeat to the start, when longer than AGENT_GAP_SECONDS (a restart
  or an upgrade takes seconds), is a loss of cause "agent" for the site and every link: nobody
  watched. It is "power" when the last heartbeat saw the site on battery with a UPS nearly
  empty: the box went down with its UPS. A gap that is negative or longer than the ledger keeps
  (a clock set from 1970 to now by NTP after a boot without RTC) is logged and left out.

Why this works centrally: the counters integrate on the site, so the store needs only their
values at the two ends of a day or month. While the ISP's line is down, vmagent keeps the
scraped samples in its on-disk buffer and sends them, with their own timestamps, when the line
returns: the store then holds the counters' rise at the times it happened. While the box itself
is off nothing is scraped and nothing is lost: at the restart the gap is added to the counters
at once (the rise is stamped at the restart, not spread over the gap), so a day or month figure
computed from the counters' values at its two ends is right, except that a gap across midnight
counts on the day the box came back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from ..ledger import (
    KEEP_SECONDS,
    LEDGER_CAUSES,
    LEDGER_FILE,
    Ledger,
    OutageRecord,
)
from ..persist import JsonStateFile
from .capacity import CapacityResult
from .service import SETTLE_SECONDS, ServiceStatus, Supply

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 60.0
# Three heartbeats: a restart is no outage, a box that was off for minutes is.
AGENT_GAP_SECONDS = 3 * HEARTBEAT_SECONDS
# A UPS on battery below this charge is nearly empty: the agent's box going silent then is the
# cut's doing.
NEAR_EMPTY_PERCENT = 10.0
STATE_FILE = "availability.json"
_COMPACT_SECONDS = 86400.0
# What is saved of a loss still open: all but its monotonic start, which means nothing later.
_SAVED = ("cause", "kind", "link", "isp", "device", "interface", "start", "counted")


@dataclass(frozen=True, slots=True)
class AvailabilityTotals:
    """Seconds lost since the ledger began, as exported."""

    site: MappingProxyType[str, float]  # cause -> seconds
    links: MappingProxyType[str, MappingProxyType[str, float]]  # link -> cause -> seconds


@dataclass(slots=True)
class _Open:
    """A loss (or, kind "site", a cause at the site) going on, and the seconds counted of it."""

    cause: str
    kind: str
    link: str
    isp: str
    device: str
    interface: str
    start: float  # wall
    since: float  # monotonic, this run
    counted: float = 0.0

    @property
    def identity(self) -> tuple[str, ...]:
        """The loss this is, whatever its cause (the site's: per cause)."""
        if self.kind == "site":
            return ("site", self.cause)
        return (self.kind, self.link, self.device, self.interface)

    def record(self, seconds: float) -> OutageRecord:
        return OutageRecord(
            self.start, seconds, self.cause, self.kind, self.link, self.isp, self.device,
            self.interface,
        )  # fmt: skip


def running_out(supplies: Iterable[Supply]) -> bool:
    """A UPS of the site is on battery and nearly empty (or has run out)."""
    return any(
        s.on_battery
        and (s.run_out or (s.charge_percent is not None and s.charge_percent < NEAR_EMPTY_PERCENT))
        for s in supplies
    )


class AvailabilityCheck:
    def __init__(
        self,
        state_dir: str | Path,
        settle_seconds: float = SETTLE_SECONDS,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        gap_seconds: float = AGENT_GAP_SECONDS,
    ) -> None:
        self.ledger = Ledger(Path(state_dir) / LEDGER_FILE)
        self.store = JsonStateFile(Path(state_dir) / STATE_FILE)
        self.settle_seconds = settle_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.gap_seconds = gap_seconds
        self._site: dict[str, float] = dict.fromkeys(LEDGER_CAUSES, 0.0)
        self._links: dict[str, dict[str, float]] = {}
        self._open: dict[str, _Open] = {}
        self._running_out = False
        self._saved = float("-inf")  # monotonic
        self._compacted = float("-inf")

    def start(self, links: Mapping[str, str | None], now: float, wall: float) -> None:
        """Take over the saved state: close what the last run left open, record its gap."""
        saved = self.store.load()
        self._site = _seconds(saved.get("site"))
        links_saved = saved.get("links")
        for link, causes in links_saved.items() if isinstance(links_saved, dict) else ():
            self._links[link] = _seconds(causes)
        opened = saved.get("open")
        for item in opened if isinstance(opened, list) else ():
            try:
                lost = _Open(**{**item, "since": now})
            except TypeError:
                continue
            numbers = isinstance(lost.start, int | float) and isinstance(lost.counted, int | float)
            if numbers and lost.kind != "site" and lost.counted >= self.settle_seconds:
                self.ledger.append(lost.record(lost.counted))
        self._links_of(links)
        last = saved.get("wall")
        if isinstance(last, int | float):
            self._gap(float(last), wall, bool(saved.get("running_out")), links)
        self._save(now, wall)
        self._compact(now, wall)

    def _gap(self, last: float, wall: float, power: bool, links: Mapping[str, str | None]) -> None:
        gap = wall - last
        if gap < 0 or gap > KEEP_SECONDS:
            log.warning(
                "the clock moved %.0f s between the last heartbeat and this start; "
                "the time the agent was off is not on record",
                gap,
            )
            return
        if gap <= self.gap_seconds:
            return
        cause = "power" if power else "agent"
        log.warning(
            "the agent was not running for %.0f s; on record as a loss of cause %s", gap, cause
        )
        self.ledger.append(OutageRecord(last, gap, cause, "site"))
        self._site[cause] += gap
        for link in links:
            self._links[link][cause] += gap

    def update(
        self,
        status: ServiceStatus,
        supplies: Iterable[Supply],
        links: Mapping[str, str | None],
        now: float,
        wall: float,
    ) -> AvailabilityTotals:
        """`links`: configured link -> ISP; `now` monotonic, `wall` Unix time."""
        current: dict[str, _Open] = {}
        for loss in status.losses:
            isp = links.get(loss.link) or ""
            key = f"{loss.kind}|{loss.link}|{loss.device}|{loss.interface}|{loss.cause}"
            current[key] = _Open(
                loss.cause, loss.kind, loss.link, isp, loss.device, loss.interface, wall, now
            )
        for cause, active in status.active.items():
            if active:
                current[f"site|{cause}"] = _Open(cause, "site", "", "", "", "", wall, now)
        out = running_out(supplies)
        changed, self._running_out = out != self._running_out, out
        before = {o.identity for o in self._open.values()}
        for key in list(self._open):
            if key not in current:
                self._close(self._open.pop(key), now)
                changed = True
        for key, lost in current.items():
            if key not in self._open:
                if lost.cause == "lan" and lost.identity not in before:
                    # the service check concludes LAN once it has held settle_seconds: it began
                    # then, and it is settled already
                    lost.start -= self.settle_seconds
                    lost.since -= self.settle_seconds
                self._open[key] = lost
                changed = True
        self._links_of(links)
        if changed or now - self._saved >= self.heartbeat_seconds:
            self._count(now)
            self._save(now, wall)
        self._compact(now, wall)
        return self.totals(links)

    def record_capacity(self, result: CapacityResult) -> bool:
        """The seam for the capacity check: each finished test goes into the ledger, for the
        monthly report."""
        return self.ledger.append(result)

    def stop(self, now: float, wall: float) -> None:
        """A clean stop: every loss going on ends now."""
        for lost in self._open.values():
            self._close(lost, now)
        self._open.clear()
        self._save(now, wall)

    def totals(self, links: Iterable[str]) -> AvailabilityTotals:
        return AvailabilityTotals(
            MappingProxyType(dict(self._site)),
            MappingProxyType({link: MappingProxyType(dict(self._links[link])) for link in links}),
        )

    def _links_of(self, links: Iterable[str]) -> None:
        for link in links:
            self._links.setdefault(link, dict.fromkeys(LEDGER_CAUSES, 0.0))

    def _add(self, lost: _Open, seconds: float) -> None:
        if lost.kind == "site":
            self._site[lost.cause] += seconds
        elif lost.kind == "wan" and lost.link in self._links:
            self._links[lost.link][lost.cause] += seconds

    def _count(self, now: float) -> None:
        for lost in self._open.values():
            elapsed = now - lost.since
            if elapsed >= self.settle_seconds:
                self._add(lost, elapsed - lost.counted)
                lost.counted = elapsed

    def _close(self, lost: _Open, now: float) -> None:
        elapsed = now - lost.since
        if elapsed < self.settle_seconds:
            return
        self._add(lost, elapsed - lost.counted)
        if lost.kind != "site":
            self.ledger.append(lost.record(elapsed))

    def _save(self, now: float, wall: float) -> None:
        self._saved = now
        self.store.save(
            {
                "version": 1,
                "wall": wall,
                "running_out": self._running_out,
                "site": self._site,
                "links": self._links,
                "open": [{name: getattr(o, name) for name in _SAVED} for o in self._open.values()],
            }
        )

    def _compact(self, now: float, wall: float) -> None:
        if now - self._compacted >= _COMPACT_SECONDS:
            self._compacted = now
            self.ledger.compact(wall)


def _seconds(value: object) -> dict[str, float]:
    """A saved cause -> seconds map, every cause present, anything unusable as 0."""
    out = dict.fromkeys(LEDGER_CAUSES, 0.0)
    for cause, seconds in value.items() if isinstance(value, dict) else ():
        if cause in out and isinstance(seconds, int | float) and seconds >= 0:
            out[cause] = float(seconds)
    return out
