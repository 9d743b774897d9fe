"""Centre power view: which source powers the centre now (grid, generator, battery, solar), how long
each has, and each generator's start after a mains loss (agent/checks/genset.py StartWatch).

Every device kind says what it knows about the sources as feeds, (source, powering) pairs
(agent/kinds/base.py `DeviceKind.feeds`); a UPS says grid or battery, a genset says generator
(on load) and, when its map has a mains bit, grid. The source of the centre is the first of
SOURCES some answering device says is powering it:

- generator before grid: a UPS behind the transfer switch sees the generator as mains (OL),
  so "grid" from a UPS means "the input is live", and only the genset knows it is its own.
- battery before grid: a UPS on battery carries its load even when another UPS is on mains
  (a cut on one phase); the centre is not on the grid then.
- solar after battery, before grid: a hybrid inverter whose load PV carries takes that load
  off the grid, but in a cut the UPS batteries are what the centre must watch.
- None when no answering device says anything (no UPS and no genset answers).

Mains is lost when any feed says the grid is not powering (a UPS on battery outside a test, a
genset whose mains bit is gone); that starts each genset's start watch. A genset that does not
answer is not on load as far as the agent can tell, so its silence through a cut counts a
start failure: it cannot prove it took the load.

A solar hybrid inverter feeds ("solar", PV carries its load), ("battery", its battery does)
and, where it sees the grid, ("grid", present) (agent/kinds/inverter.py). A further source is
one more entry in SOURCES at its rank and a kind that feeds it; nothing else here changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ..config import Config
from ..kinds import KINDS
from ..state import AgentState
from .genset import StartRecord, StartWatch

SOURCES = ("generator", "battery", "solar", "grid")  # first powering source wins


@dataclass(frozen=True, slots=True)
class PowerView:
    """What the site's answering devices say about the sources, and its gensets' timeouts."""

    feeds: tuple[tuple[str, str, bool], ...]  # (device, source, powering)
    # every configured genset -> (start timeout, settle seconds) of its StartWatch
    watches: Mapping[str, tuple[float, float]]


@dataclass(frozen=True, slots=True)
class CentrePowerStatus:
    source: str | None  # one of SOURCES; None: nothing answering says
    seconds: MappingProxyType[str, float]  # source -> seconds the centre ran on it so far
    starts: MappingProxyType[str, StartRecord]  # genset -> its start watch


def power_source(feeds: tuple[tuple[str, str, bool], ...]) -> str | None:
    powering = {source for _, source, on in feeds if on}
    return next((source for source in SOURCES if source in powering), None)


def mains_lost(feeds: tuple[tuple[str, str, bool], ...]) -> bool:
    return any(source == "grid" and not on for _, source, on in feeds)


class CentrePower:
    """Time on each source, and one StartWatch per configured genset."""

    def __init__(self) -> None:
        self._seconds = dict.fromkeys(SOURCES, 0.0)
        self._source: str | None = None
        self._at: float | None = None
        self._watches: dict[str, StartWatch] = {}

    def update(self, view: PowerView, now: float) -> CentrePowerStatus:
        if self._source is not None and self._at is not None:
            self._seconds[self._source] += now - self._at
        self._source, self._at = power_source(view.feeds), now
        lost = mains_lost(view.feeds)
        on_load = {device for device, source, on in view.feeds if source == "generator" and on}
        starts: dict[str, StartRecord] = {}
        for device, (timeout, settle) in view.watches.items():
            watch = self._watches.get(device)
            if watch is None:
                watch = self._watches[device] = StartWatch(device, timeout, settle)
            watch.timeout_seconds, watch.settle_seconds = timeout, settle  # a reload may change
            starts[device] = watch.update(lost, device in on_load, now)
        for gone in self._watches.keys() - view.watches.keys():  # removed by a reload
            del self._watches[gone]
        return CentrePowerStatus(
            self._source, MappingProxyType(dict(self._seconds)), MappingProxyType(starts)
        )


def power_view(state: AgentState, config: Config) -> PowerView:
    """What the pollers last saw, in the view's terms: only answering devices feed it."""
    feeds: list[tuple[str, str, bool]] = []
    for device in list(state.devices.values()):
        if not device.up or device.status is None:
            continue
        kind = KINDS[device.kind]
        ups = kind.power(device.status)
        if ups is not None:
            feeds += [(device.name, "grid", not ups.on_battery)]
            feeds += [(device.name, "battery", ups.on_battery)]
        feeds += [(device.name, source, on) for source, on in kind.feeds(device.status)]
    watches = {
        genset.name: (genset.start_timeout_seconds, genset.interval + genset.timeout)
        for genset in config.genset
    }
    return PowerView(tuple(feeds), watches)
