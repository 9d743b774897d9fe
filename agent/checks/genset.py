"""Genset check: a generator controller's reading in, its judged state out; and the watch over
its start after a mains loss.

A standby generator exists to take the load when mains goes, so what matters is not that its
engine runs but that it carries the centre, and how soon:

- Running: the controller says the engine runs (RUNNING, from its engine state).
- On load: the generator breaker is closed (ON_LOAD) when the map has that bit; else, since a
  running engine with no output carries nothing, running and putting out at least
  ON_LOAD_WATTS (GenComm's public map has no breaker register).
- The start delay is measured by the agent, not read from the controller: from the first site
  judgement at which mains is lost (any UPS on battery, or the controller's own MAINS_OK gone
  when its map has one) to the first at which the generator is on load, on the monotonic
  clock. Controllers count their own start attempts, but only the agent sees the whole gap the
  UPS batteries had to bridge.
- The UPSes see their input back a moment before the controller is next polled on load (the
  generator feeds them): mains back without the generator on load ends the wait only once it
  has lasted `settle_seconds` (the genset's poll interval and timeout), so a generator that
  took the load is not mistaken for the grid returning.
- A start failure is a mains loss the generator has not taken on load within
  `start_timeout_seconds` (default 120 s): counted once per loss, so the alert can fire while
  the batteries still hold. The gap is still measured if it starts late.
- Alarms: the controller's summary alarm classes (shutdown, electrical trip, warning).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import MappingProxyType

from collectors.readings import GensetReading

log = logging.getLogger(__name__)

# A running set putting out less than this carries no load (CT offsets read a few watts).
ON_LOAD_WATTS = 100.0
ALARMS = {"SHUTDOWN": "shutdown", "TRIP": "electrical_trip", "WARNING": "warning"}


@dataclass(frozen=True, slots=True)
class GensetStatus:
    """Judged state of one generator controller. Values keep the profile's names and units."""

    running: bool
    on_load: bool
    mains_available: bool | None  # the controller's MAINS_OK; None: its map cannot tell
    alarms: MappingProxyType[str, int]  # alarm class -> 0/1, for the classes it reports
    values: MappingProxyType[str, float]
    info: MappingProxyType[str, str]
    invalid_fields: tuple[str, ...]


def genset_status(reading: GensetReading) -> GensetStatus:
    """The judged state of one reading (the module docstring gives the rules)."""
    flags, known = reading.flags, reading.known_flags
    running = "RUNNING" in flags
    if "ON_LOAD" in known:
        on_load = "ON_LOAD" in flags
    else:
        on_load = running and reading.values.get("output.power", 0.0) >= ON_LOAD_WATTS
    return GensetStatus(
        running=running,
        on_load=on_load,
        mains_available=("MAINS_OK" in flags) if "MAINS_OK" in known else None,
        alarms=MappingProxyType(
            {name: int(token in flags) for token, name in ALARMS.items() if token in known}
        ),
        values=MappingProxyType(dict(reading.values)),
        info=MappingProxyType(dict(reading.info)),
        invalid_fields=reading.invalid,
    )


class GensetCheck:
    """Per-genset state: running and on load at the last poll, to log changes once."""

    def __init__(self, device: str) -> None:
        self.device = device
        self._last: tuple[bool, bool] | None = None

    def update(self, reading: GensetReading) -> GensetStatus:
        status = genset_status(reading)
        now = (status.running, status.on_load)
        if self._last is not None and now != self._last:
            state = "on load" if status.on_load else "running" if status.running else "stopped"
            log.info("%s: generator %s", self.device, state)
        self._last = now
        return status


@dataclass(frozen=True, slots=True)
class StartRecord:
    """What the start watch of one genset has seen so far."""

    start_delay_seconds: float | None  # the last measured mains loss -> on load; None: none yet
    start_failures: int  # mains losses not taken on load within the timeout
    waiting_since: float | None  # monotonic time of the mains loss it waits on, if any


class StartWatch:
    """Measures one genset's start after each mains loss; fed by the site's power judgement."""

    def __init__(self, device: str, timeout_seconds: float, settle_seconds: float = 0.0) -> None:
        self.device = device
        self.timeout_seconds = timeout_seconds
        self.settle_seconds = settle_seconds
        self._delay: float | None = None
        self._failures = 0
        self._since: float | None = None  # the mains loss waited on
        self._back: float | None = None  # mains back (without the generator) since
        self._failed = False  # this loss is counted already

    def update(self, mains_lost: bool, on_load: bool, now: float) -> StartRecord:
        if on_load:
            if self._since is not None:
                self._delay = now - self._since
                log.info(
                    "%s: generator on load %.1f s after the mains loss", self.device, self._delay
                )
            self._since, self._back, self._failed = None, None, False
        elif mains_lost:
            self._back = None
            if self._since is None:
                self._since = now
        elif self._since is not None:  # mains back: the grid, or the generator not yet polled
            if self._back is None:
                self._back = now
            if now - self._back >= self.settle_seconds:
                self._since, self._back, self._failed = None, None, False
        waited = 0.0 if self._since is None else now - self._since
        if waited >= self.timeout_seconds and not self._failed:  # the timeout is above 0
            self._failed = True
            self._failures += 1
            log.warning(
                "%s: generator not on load %.0f s after a mains loss (start failure)",
                self.device,
                waited,
            )
        return StartRecord(self._delay, self._failures, self._since)
