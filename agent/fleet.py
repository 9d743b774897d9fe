"""The running devices and link probes of one config, and the move to a new config on reload.

A device whose settings are unchanged keeps its poller, its judge (counter history, so rates go
on without a gap) and its DeviceState (its `_total` counters keep growing). A changed device is
replaced with a fresh one, a deleted one is stopped and its metrics go, a new one starts polling
within a couple of seconds. Link probes move the same way.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from collectors.host import read_host
from collectors.modbus.transport import GatewayPool

from .checks.capacity import TICK_SECONDS, CapacityResult, CapacityTester, contract_bps
from .checks.link_quality import LinkProber
from .config import Config, DeviceSettings, HostSettings, LinkSettings
from .kinds import configured, kind_of
from .poller import DevicePoller
from .schedule import MonotonicScheduler
from .state import AgentState, DeviceState

log = logging.getLogger(__name__)

# (device settings, its state, the gateway pool, state_dir) -> its poller
PollerFactory = Callable[[DeviceSettings, DeviceState, GatewayPool, str], DevicePoller]

_MAX_START_JITTER_SECONDS = 2.0
# Each further device's first poll starts this much later (at most 20 first polls a second),
# so a hub's polls stay spread over the interval instead of arriving as one burst every beat
# (Prometheus spreads its targets' scrapes the same way); the phase stays spread afterwards.
# 11 devices start within 2.5 s instead of 2.
_START_SPACING_SECONDS = 0.05
_BACKOFF_MIN_SECONDS, _BACKOFF_MAX_SECONDS = 1.0, 30.0  # GatewayPool's own defaults


@dataclass
class _Running:
    settings: DeviceSettings
    state_dir: str  # battery history lives there (modbus, nut): a change replaces the device
    poller: DevicePoller


@dataclass(frozen=True)
class Changes:
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    kept: int = 0

    def __str__(self) -> str:
        parts = [f"{self.kept} unchanged"]
        for word, names in (("added", self.added), ("changed", self.changed),
                            ("removed", self.removed)):  # fmt: skip
            if names:
                parts.append(f"{word} {', '.join(names)}")
        return "; ".join(parts)


class Fleet:
    """Owns the scheduler's device, link and host jobs; `apply(config)` reconciles them."""

    def __init__(
        self,
        state: AgentState,
        scheduler: MonotonicScheduler,
        factory: PollerFactory,
        record_capacity: Callable[[CapacityResult], object] = lambda result: None,
    ) -> None:
        self.state = state
        self._record_capacity = record_capacity  # each finished capacity test, for the ledger
        self.scheduler = scheduler
        self.gateways = GatewayPool()
        self._factory = factory
        self._devices: dict[str, _Running] = {}
        self._links: dict[str, LinkSettings] = {}
        # link -> what its capacity tester was built from (settings, contract, state_dir)
        self._capacity: dict[str, tuple[LinkSettings, tuple[float | None, float | None], str]] = {}
        self._host: tuple[HostSettings, str] | None = None

    @property
    def pollers(self) -> list[DevicePoller]:
        return [running.poller for running in self._devices.values()]

    async def apply(self, config: Config) -> Changes:
        """Move to `config` (already validated, so building a poller does not fail)."""
        wanted = {d.name: d for d in configured(config)}
        kept = {
            name
            for name, running in self._devices.items()
            if wanted.get(name) == running.settings and self._same_dir(running, config.state_dir)
        }
        leaving = [name for name in self._devices if name not in kept]
        coming = [name for name in wanted if name not in kept]
        for name in leaving:
            await self._stop(name)
        # A gateway whose devices all left goes, so one that comes back with another transport
        # gets a fresh Gateway instead of clashing with the old one.
        await self.gateways.retire(
            {key for r in self._devices.values() if (key := r.settings.gateway_key) is not None}
        )
        intervals = [d.interval for d in wanted.values() if d.gateway_key is not None]
        if intervals:
            # A gateway back from a reboot must be polled again within one interval: cap the
            # reconnect back-off (agent-wide, for gateways created from now on) below it.
            cap = 0.9 * min(intervals)
            self.gateways.backoff_min = min(_BACKOFF_MIN_SECONDS, cap)
            self.gateways.backoff_max = min(_BACKOFF_MAX_SECONDS, cap)
        for name in coming:
            self._start(wanted[name], config.state_dir)
        self._apply_links(config.links)
        self._apply_capacity(config)
        self._apply_host(config.host, config.state_dir)
        self.state.site_id, self.state.site_name = config.site.id, config.site.name
        return Changes(
            added=tuple(n for n in coming if n not in leaving),
            changed=tuple(n for n in coming if n in leaving),
            removed=tuple(n for n in leaving if n not in wanted),
            kept=len(kept),
        )

    async def close(self) -> None:
        for name in list(self._devices):
            await self._stop(name)
        await self.gateways.close()

    @staticmethod
    def _same_dir(running: _Running, state_dir: str) -> bool:
        kind = kind_of(running.settings)
        return not kind.restart_on_state_dir or running.state_dir == state_dir

    def _start(self, device: DeviceSettings, state_dir: str) -> None:
        device_state = DeviceState(device.name, kind_of(device).name)
        poller = self._factory(device, device_state, self.gateways, state_dir)
        self.state.devices[device.name] = device_state
        self._devices[device.name] = _Running(device, state_dir, poller)
        self.scheduler.add_job(
            poller.poll,
            "interval",
            seconds=device.interval,
            id=f"poll:{device.name}",
            next_run_time=_soon(device.interval, len(self._devices) - 1),
        )

    async def _stop(self, name: str) -> None:
        running = self._devices.pop(name)
        self.scheduler.remove_job(f"poll:{name}")
        self.state.devices.pop(name, None)
        await running.poller.close()

    def _apply_links(self, links: list[LinkSettings]) -> None:
        wanted = {link.name: link for link in links}
        for name, link in list(self._links.items()):
            if wanted.get(name) != link:
                self.scheduler.remove_job(f"probe:{name}")
                self.state.links.pop(name, None)
                del self._links[name]
        for name, link in wanted.items():
            if name in self._links:
                continue
            self._links[name] = link
            # a probe run ends within its interval (validated in config)
            self.scheduler.add_job(
                LinkProber(link, self.state.links).run,
                "interval",
                seconds=link.interval,
                id=f"probe:{name}",
                next_run_time=_soon(link.interval),
            )

    def _apply_capacity(self, config: Config) -> None:
        wanted = {
            link.name: (link, contract_bps(config, link), config.state_dir)
            for link in config.links
            if link.capacity_test is not None
        }
        for name, built in list(self._capacity.items()):
            if wanted.get(name) != built:
                self.scheduler.remove_job(f"capacity:{name}")
                self.state.capacity.pop(name, None)
                del self._capacity[name]
        for name, built in wanted.items():
            if name in self._capacity:
                continue
            self._capacity[name] = built
            # each run asks `due` first; a test ends well within 3 ticks (the stuck mark)
            self.scheduler.add_job(
                CapacityTester(built[0], config, self.state, self._record_capacity).run,
                "interval",
                seconds=TICK_SECONDS,
                id=f"capacity:{name}",
                next_run_time=_soon(TICK_SECONDS),
            )

    def _apply_host(self, host: HostSettings, state_dir: str) -> None:
        if (host, state_dir) == self._host:
            return
        if self._host is not None:
            self.scheduler.remove_job("host")
        self._host = (host, state_dir)
        # state_dir's filesystem too: the battery history is lost when it fills up
        filesystems = [*host.filesystems, state_dir]

        def refresh_host() -> None:
            self.state.host = read_host(filesystems)

        refresh_host()
        self.scheduler.add_job(refresh_host, "interval", seconds=host.interval, id="host")


def _soon(interval: float, position: int = 0) -> datetime:
    """A first run within a couple of seconds, spread so devices do not poll in lockstep;
    the device at `position` of a large fleet waits `position` spacings more."""
    jitter = random.uniform(0, min(interval, _MAX_START_JITTER_SECONDS))
    jitter += min(interval, position * _START_SPACING_SECONDS)
    return datetime.now().astimezone() + timedelta(seconds=jitter)
