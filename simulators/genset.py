"""A simulated standby generator behind a DSE GenComm controller, served over Modbus TCP through
the real profile (collectors/profiles/modbus/dse-gencomm.yaml), and the supply it makes for the
UPSes behind the transfer switch::

    genset = SimulatedGenset(start_delay_seconds=15)
    ups = SimulatedUps(...)
    genset.feed(ups)                  # the UPS's input: grid, else the generator once on load
    host, port = await genset.start()
    genset.set_mains(False)           # the cut: the UPS goes on battery, the engine cranks
    # 15 s later: engine running, on load; the UPS sees its input back (OL)
    genset.set_mains(True)            # the grid returns: off load, cools down, stops

The controller is in auto: it starts `start_delay_seconds` after it sees mains go (a real DSE
waits its mains-fail delay, cranks and warms up; here one figure), unless `fail_to_start` is
set, when it raises the shutdown alarm instead (DSE "fail to start"). Times come from `clock`
(default time.monotonic), injectable so tests can fast-forward.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from collectors.modbus.profile import ModbusProfile, load_profile
from simulators.modbus_server import (
    GATEWAY_TARGET_FAILED,
    ModbusTcpServer,
)
from simulators.profile_read import profile_read
from simulators.ups import MAINS_HZ, MAINS_VOLTS, Schedule, SimulatedUps

COOLDOWN_SECONDS = 60.0  # running off load after the grid returns, as DSE's cooling timer does
STARTER_VOLTS_RESTING, STARTER_VOLTS_CHARGING = 25.4, 27.4  # a 24 V starter battery


class SimulatedGenset:
    """One DSE controller on one unit id. Drive it from the event loop that serves it.

    The grid's history is a list of changes (clock time, grid on, fail_to_start then); every
    figure at a time t is computed from it, so the UPSes it feeds can ask about any moment.
    """

    def __init__(
        self,
        unit: int = 10,
        start_delay_seconds: float = 15.0,
        load_w: float = 4200.0,
        rated_w: float = 20000.0,
        fuel_percent: float = 80.0,
        fuel_percent_per_hour: float = 12.0,
        *,
        fail_to_start: bool = False,
        run_seconds: float = 1_234_000.0,  # engine hours before the simulation, as seconds
        starts: int = 320,
        clock: Callable[[], float] = time.monotonic,
        schedule: Schedule | None = None,  # the grid by itself (PeriodicOutages, ...)
    ) -> None:
        self.profile: ModbusProfile = load_profile("dse-gencomm")
        self.unit = unit
        self.start_delay_seconds = start_delay_seconds
        self.load_w = load_w
        self.rated_w = rated_w
        self.fuel_percent = fuel_percent
        self.fuel_percent_per_hour = fuel_percent_per_hour
        self.fail_to_start = fail_to_start
        self.run_seconds, self.starts = run_seconds, starts
        self.clock = clock
        self.schedule = schedule
        self.answering = True
        self._start = clock()
        self._changes: list[tuple[float, bool, bool]] = [(self._start - 86400.0, True, False)]
        self._scheduled_to = self._start  # schedule edges recorded up to here
        self._by_hand = False  # set_mains replaced the schedule
        self.server = ModbusTcpServer(self.register_source)

    # --- control ---------------------------------------------------------------------------

    def set_mains(self, on: bool) -> None:
        """The grid at the controller's mains sensing (and the transfer switch) goes or returns;
        this replaces the schedule from now on."""
        now = self.clock()
        self._follow_schedule(now)
        self._by_hand = True
        self._change(now, on)

    def feed(self, ups: SimulatedUps) -> None:
        """Put `ups` behind the transfer switch: its input follows the grid and the generator."""
        ups.schedule = StandbySupply(self, ups.started)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        return await self.server.start(host, port)

    async def stop(self) -> None:
        await self.server.stop()

    # --- the grid and the engine ---------------------------------------------------------------

    def _change(self, at: float, on: bool) -> None:
        if on != self._changes[-1][1]:
            self._changes.append((at, on, self.fail_to_start))

    def _follow_schedule(self, until: float) -> None:
        if self.schedule is None or self._by_hand:
            return
        t = self._scheduled_to
        while (edge := self._start + self.schedule.next_edge(t - self._start)) <= until:
            self._change(edge, self.schedule.mains_on(edge - self._start))
            t = edge
        self._scheduled_to = max(t, until)

    def _spells(self, until: float) -> list[tuple[float, float, bool, bool]]:
        """(from, to, grid on, fails to start) for every spell of the grid up to `until`."""
        self._follow_schedule(until)
        ends = [at for at, _, _ in self._changes[1:]] + [float("inf")]
        return [
            (at, end, on, fail) for (at, on, fail), end in zip(self._changes, ends, strict=True)
        ]

    def _spell_at(self, at: float) -> tuple[int, list[tuple[float, float, bool, bool]]]:
        spells = self._spells(at)
        return next(i for i in reversed(range(len(spells))) if spells[i][0] <= at), spells

    def _loaded_spell(self, spell: tuple[float, float, bool, bool]) -> bool:
        """A grid-off spell in which the generator took the load."""
        begin, end, on, fail = spell
        return not on and not fail and begin + self.start_delay_seconds < end

    def _running_span(
        self, i: int, spells: list[tuple[float, float, bool, bool]]
    ) -> tuple[float, float]:
        begin, end, on, fail = spells[i]
        if not on:
            return (begin + self.start_delay_seconds, end) if not fail else (end, end)
        cools = i > 0 and self._loaded_spell(spells[i - 1])  # then the cooling timer
        return begin, min(end, begin + COOLDOWN_SECONDS) if cools else begin

    def on_load(self, at: float) -> bool:
        """The generator carries the load at clock time `at`."""
        i, spells = self._spell_at(at)
        begin, _, on, fail = spells[i]
        return not on and not fail and at >= begin + self.start_delay_seconds

    def running(self, at: float) -> bool:
        i, spells = self._spell_at(at)
        begin, end = self._running_span(i, spells)
        return begin <= at < end

    def input_live(self, at: float) -> bool:
        """What reaches the UPS inputs behind the transfer switch at `at`."""
        i, spells = self._spell_at(at)
        return spells[i][2] or self.on_load(at)

    def next_edge(self, at: float) -> float:
        """The first clock time after `at` at which the UPS inputs may change (inf: never)."""
        i, spells = self._spell_at(at)
        begin, end, on, fail = spells[i]
        if self.schedule is not None and not self._by_hand:
            end = self._start + self.schedule.next_edge(at - self._start)
        loads = begin + self.start_delay_seconds
        return min(loads, end) if not on and not fail and at < loads else end

    def truth(self) -> tuple[dict[str, float | str], set[str]]:
        """What the controller serves now: values in the profile's names, and its flags."""
        now = self.clock()
        i, spells = self._spell_at(now)
        begin, _, grid_on, fail = spells[i]
        running, loaded = self.running(now), self.on_load(now)
        ran = sum(
            max(0.0, min(end, now) - max(start, self._start))
            for start, end in (self._running_span(j, spells) for j in range(len(spells)))
        )
        starts = sum(  # the cuts since the simulation began in which it took the load by now
            1
            for begin_, end_, on_, fail_ in spells
            if begin_ >= self._start and self._loaded_spell((begin_, min(end_, now), on_, fail_))
        )
        if running:
            state = "running"
        elif not grid_on and not fail:
            state = "pre-start"
        else:
            state = "stopped"
        fuel = self.fuel_percent - self.fuel_percent_per_hour * ran / 3600.0
        values: dict[str, float | str] = {
            "generator.mode": "auto",
            "engine.state": state,
            "fuel.level": float(round(max(0.0, fuel))),
            "engine.battery.voltage": STARTER_VOLTS_CHARGING if running else STARTER_VOLTS_RESTING,
            "engine.speed": 1500.0 if running else 0.0,
            "output.frequency": MAINS_HZ if running else 0.0,
            "output.l1.voltage": MAINS_VOLTS if running else 0.0,
            "output.l2.voltage": 0.0,
            "output.l3.voltage": 0.0,
            "input.frequency": MAINS_HZ if grid_on else 0.0,
            "output.power": self.load_w if loaded else 0.0,
            "output.load": 100.0 * self.load_w / self.rated_w if loaded else 0.0,
            "engine.runtime": float(round(self.run_seconds + ran)),
            "engine.starts": float(self.starts + starts),
        }
        flags = {"RUNNING"} if running else set()
        if not grid_on and fail and now >= begin + self.start_delay_seconds:
            flags.add("SHUTDOWN")  # DSE "fail to start" is a shutdown alarm
        return values, flags

    # --- Modbus ------------------------------------------------------------------------------

    def register_source(
        self, unit: int, function: int, address: int, count: int
    ) -> list[int] | int | None:
        """Serve reads that fall inside one profile block; None: silent."""
        if not self.answering:
            return None
        if unit != self.unit:
            return GATEWAY_TARGET_FAILED
        return profile_read(self.profile, function, address, count, self.truth)


class StandbySupply:
    """A SimulatedUps schedule: its input is live while the grid is on or the generator is on
    load (elapsed counts from the UPS's `started`)."""

    def __init__(self, genset: SimulatedGenset, origin: float) -> None:
        self.genset, self.origin = genset, origin

    def mains_on(self, elapsed: float) -> bool:
        return self.genset.input_live(self.origin + elapsed)

    def next_edge(self, elapsed: float) -> float:
        return self.genset.next_edge(self.origin + elapsed) - self.origin
