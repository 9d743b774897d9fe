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

from collectors.modbus.encode import encode_image
from collectors.modbus.profile import ModbusProfile, load_profile
from simulators.modbus_server import (
    GATEWAY_TARGET_FAILED,
    ILLEGAL_DATA_ADDRESS,
    READ_HOLDING,
    READ_INPUT,
    ModbusTcpServer,
)
from simulators.ups import MAINS_HZ, MAINS_VOLTS, SimulatedUps

COOLDOWN_SECONDS = 60.0  # running off load after the grid returns, as DSE's cooling timer does
STARTER_VOLTS_RESTING, STARTER_VOLTS_CHARGING = 25.4, 27.4  # a 24 V starter battery


class SimulatedGenset:
    """One DSE controller on one unit id. Drive it from the event loop that serves it."""

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
    ) -> None:
        self.profile: ModbusProfile = load_profile("dse-gencomm")
        self.unit = unit
        self.start_delay_seconds = start_delay_seconds
        self.load_w = load_w
        self.rated_w = rated_w
        self.fuel_percent = fuel_percent
        self.fuel_percent_per_hour = fuel_percent_per_hour
        self.fail_to_start = fail_to_start
        self.clock = clock
        self.answering = True
        self._grid_on = True
        self._changed = clock() - 24 * 3600.0  # the grid has been on for a day
        self._run_seconds, self._starts = run_seconds, starts
        self._started = False  # this cut's start is counted
        self._cool_until = self._changed  # running off load until then, after a cut
        self._counted_to = clock()  # run time and fuel integrated up to here
        self.server = ModbusTcpServer(self.register_source)

    # --- control ---------------------------------------------------------------------------

    def set_mains(self, on: bool) -> None:
        """The grid at the controller's mains sensing (and the transfer switch) goes or returns."""
        now = self.clock()
        self._integrate(now)
        if on == self._grid_on:
            return
        if on and self.on_load(now):  # back to the grid: off load, then the cooling timer
            self._cool_until = now + COOLDOWN_SECONDS
        self._grid_on, self._changed, self._started = on, now, False

    def feed(self, ups: SimulatedUps) -> None:
        """Put `ups` behind the transfer switch: its input follows the grid and the generator."""
        ups.schedule = StandbySupply(self, ups.started)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        return await self.server.start(host, port)

    async def stop(self) -> None:
        await self.server.stop()

    # --- the engine --------------------------------------------------------------------------

    def on_load(self, at: float) -> bool:
        """The generator carries the load at clock time `at` (no grid change since `at`)."""
        return not self._grid_on and not self.fail_to_start and at >= self._on_load_from()

    def running(self, at: float) -> bool:
        return self.on_load(at) or (self._grid_on and at < self._cool_until)

    def input_live(self, at: float) -> bool:
        """What reaches the UPS inputs behind the transfer switch at `at`."""
        return self._grid_on or self.on_load(at)

    def next_edge(self, at: float) -> float:
        """The first clock time after `at` at which the UPS inputs change (inf: never)."""
        if not self._grid_on and not self.fail_to_start and at < self._on_load_from():
            return self._on_load_from()
        return float("inf")

    def _on_load_from(self) -> float:
        return self._changed + self.start_delay_seconds

    def _integrate(self, now: float) -> None:
        """Run time, starts and fuel from the last call to `now` (the grid unchanged since)."""
        if self._grid_on:
            begin, end = self._counted_to, min(now, self._cool_until)
        elif self.fail_to_start:
            begin, end = now, now
        else:
            begin, end = max(self._counted_to, self._on_load_from()), now
            if now >= self._on_load_from() and not self._started:
                self._started, self._starts = True, self._starts + 1
        if end > begin:
            self._run_seconds += end - begin
            burnt = self.fuel_percent_per_hour * (end - begin) / 3600.0
            self.fuel_percent = max(0.0, self.fuel_percent - burnt)
        self._counted_to = max(self._counted_to, now)

    def truth(self) -> tuple[dict[str, float | str], set[str]]:
        """What the controller serves now: values in the profile's names, and its flags."""
        now = self.clock()
        self._integrate(now)
        running, loaded = self.running(now), self.on_load(now)
        failed = not self._grid_on and self.fail_to_start and now >= self._on_load_from()
        if running:
            state = "running"
        elif not self._grid_on and not self.fail_to_start:
            state = "pre-start"
        else:
            state = "stopped"
        values: dict[str, float | str] = {
            "generator.mode": "auto",
            "engine.state": state,
            "fuel.level": round(self.fuel_percent),
            "engine.battery.voltage": STARTER_VOLTS_CHARGING if running else STARTER_VOLTS_RESTING,
            "engine.speed": 1500.0 if running else 0.0,
            "output.frequency": MAINS_HZ if running else 0.0,
            "output.l1.voltage": MAINS_VOLTS if running else 0.0,
            "output.l2.voltage": 0.0,
            "output.l3.voltage": 0.0,
            "input.frequency": MAINS_HZ if self._grid_on else 0.0,
            "output.power": self.load_w if loaded else 0.0,
            "output.load": 100.0 * self.load_w / self.rated_w if loaded else 0.0,
            "engine.runtime": float(round(self._run_seconds)),
            "engine.starts": float(self._starts),
        }
        flags = {"RUNNING"} if running else set()
        if failed:
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
        table = {READ_HOLDING: "holding", READ_INPUT: "input"}[function]
        if self.profile.block_for(table, address, count) is None:
            return ILLEGAL_DATA_ADDRESS
        values, flags = self.truth()
        image = encode_image(self.profile, values, flags)
        return [image[(table, a)] for a in range(address, address + count)]


class StandbySupply:
    """A SimulatedUps schedule: its input is live while the grid is on or the generator is on
    load (elapsed counts from the UPS's `started`)."""

    def __init__(self, genset: SimulatedGenset, origin: float) -> None:
        self.genset, self.origin = genset, origin

    def mains_on(self, elapsed: float) -> bool:
        return self.genset.input_live(self.origin + elapsed)

    def next_edge(self, elapsed: float) -> float:
        return self.genset.next_edge(self.origin + elapsed) - self.origin
