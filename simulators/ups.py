"""A simulated UPS: a small physical model served over Modbus TCP through a real profile.

The model integrates battery energy between reads: on battery the charge falls at load/capacity,
on mains it recovers over `recharge_seconds`. Its state is encoded with the same profile the
collector decodes, so the simulator serves exactly the map a real unit would (if the map is
right; golden fixtures written by hand guard against a shared mistake)::

    ups = SimulatedUps(capacity_wh=864, load_w=450, outage_every=3600, outage_length=1200)
    host, port = await ups.start()          # 127.0.0.1, a free port
    ups.truth()  # {"battery.charge": 100.0, "input.voltage": 230.0, "ups.status": "OL", ...}

`clock` (default time.monotonic) is injectable so tests can fast-forward through an outage.

Battery physics, simple but with the shape of a real lead-acid string:
- Full-charge runtime follows NUT's runtime law, T(P) = health * T_rated(P_ref) * (P_ref/P)^n
  (`runtime_exponent` n, 1.0 = plain energy counting; `health` = share of rated capacity left),
  so an aged battery's charge falls faster at the same load and its runtime is shorter.
- On mains the string sits at float (2.27 V/cell) when full, at absorption (2.35 V/cell) while
  recharging; on battery at its open-circuit voltage (11.9 V to 12.7 V per 12 V block, by
  charge) minus I*R, where the string's resistance rises as health falls, so an old battery sags
  more when mains is lost.
Scenarios (load-shedding days, an aged battery, a rebooting gateway, a UPS that goes silent) are
in simulators/scenarios.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from collectors.modbus.profile import ModbusProfile, load_profile
from simulators.modbus_server import (
    GATEWAY_TARGET_FAILED,
    ModbusTcpServer,
)
from simulators.profile_read import profile_read

MAINS_VOLTS, MAINS_HZ = 230.0, 50.0  # Pakistan: 230 V 50 Hz
CELL_FLOAT_V, CELL_ABSORB_V = 2.27, 2.35  # on mains: full (float) and recharging (absorption)
CELL_OCV_EMPTY_V, CELL_OCV_FULL_V = 1.98, 2.117  # open circuit: 11.9 V to 12.7 V per 12 V block
INVERTER_EFFICIENCY = 0.9
LOW_RUNTIME_S, LOW_CHARGE_PCT = 120.0, 10.0
MAX_RUNTIME_S = 86400.0  # what the profile accepts as plausible; idle UPSs report huge numbers


class Schedule(Protocol):
    """When mains is present, as a function of seconds since the simulator started."""

    def mains_on(self, elapsed: float) -> bool: ...

    def next_edge(self, elapsed: float) -> float:
        """The first elapsed time after `elapsed` at which mains changes (inf: never)."""
        ...


class PeriodicOutages:
    """Mains off for the last `length` seconds of every `every` seconds."""

    def __init__(self, every: float, length: float) -> None:
        if not 0 <= length <= every:
            raise ValueError("outage_length must lie between 0 and outage_every")
        self.every, self.length = every, length

    def mains_on(self, elapsed: float) -> bool:
        return elapsed % self.every < self.every - self.length

    def next_edge(self, elapsed: float) -> float:
        every, length = self.every, self.length
        cycle_start = elapsed // every * every
        # The third edge only matters when float rounding puts `elapsed` at the very end of a
        # cycle; it guarantees the integration always moves forward.
        edges = (
            cycle_start + every - length,
            cycle_start + every,
            cycle_start + 2 * every - length,
        )
        return next(edge for edge in edges if edge > elapsed)


class SimulatedUps:
    """One UPS on one unit id. Not thread-safe: drive it from the event loop that serves it."""

    def __init__(
        self,
        profile_name: str = "apc-smart-ups",
        unit: int = 1,
        capacity_wh: float = 864.0,  # SMT1500: 2 x 12 V 18 Ah blocks
        load_w: float = 450.0,
        model: str = "Smart-UPS SMT1500",
        serial: str = "AS1234567890",
        *,
        part: str = "SMT1500I",
        firmware: str = "UPS 15.1",
        nominal_va: int = 1500,
        nominal_w: int = 1000,
        cells: int = 12,
        health: float = 1.0,  # usable fraction of rated capacity; 1.0 = new battery
        charge_pct: float = 100.0,
        recharge_seconds: float = 4 * 3600.0,  # empty to full on mains
        temperature_c: float = 31.0,  # a hot Lahore comms room
        replace_battery: bool = False,  # sets RB
        mfr_date: str = "2022-06-14",
        battery_date: str = "2023-11-02",
        outage_every: float | None = None,  # seconds per cycle (mains on, then off)
        outage_length: float = 0.0,  # seconds of each cycle without mains
        clock: Callable[[], float] = time.monotonic,
        schedule: Schedule | None = None,  # replaces outage_every/outage_length
        runtime_exponent: float = 1.0,  # n in T ~ P^-n; ~1.2-1.6 for real UPS batteries
        resistance_ohms: float = 0.03,  # battery string of a new battery (2 x 18 Ah blocks)
    ) -> None:
        if schedule is None and outage_every is not None:
            schedule = PeriodicOutages(outage_every, outage_length)
        self.profile: ModbusProfile = load_profile(profile_name)
        self.unit = unit
        self.capacity_wh = capacity_wh
        self.load_w = load_w
        self.cells = cells
        self.health = health
        self.recharge_seconds = recharge_seconds
        self.temperature_c = temperature_c
        self.replace_battery = replace_battery
        self.nominal_w = nominal_w
        self.info = {
            "device.model": model,
            "device.serial": serial,
            "device.part": part,
            "ups.firmware": firmware,
            "ups.mfr.date": mfr_date,
            "battery.date": battery_date,
            "battery.date.maintenance": battery_date,
            "ups.test.result": "Done and passed",  # the weekly self-test, as APC reg 23 says
        }
        self.nominal = {
            "ups.power.nominal": float(nominal_va),
            "ups.realpower.nominal": float(nominal_w),
        }
        self.outage_every = outage_every
        self.outage_length = outage_length
        self.schedule = schedule
        self.runtime_exponent = runtime_exponent
        self.resistance_ohms = resistance_ohms
        self.answering = True  # False: the UPS behind the gateway is silent (client times out)
        self.clock = clock
        self.charge_pct = charge_pct
        self._start = self._last = clock()
        self._mains_override: bool | None = None
        self.server = ModbusTcpServer(self.register_source)
        self._bound: tuple[str, int] | None = None

    # --- control ---------------------------------------------------------------------------

    def set_mains(self, on: bool) -> None:
        """Switch mains by hand; this replaces the outage schedule from now on."""
        self._advance()
        self._mains_override = on

    def mains_on(self, at: float | None = None) -> bool:
        if self._mains_override is not None:
            return self._mains_override
        if self.schedule is None:
            return True
        return self.schedule.mains_on((self.clock() if at is None else at) - self._start)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        self._bound = await self.server.start(host, port)
        return self._bound

    async def stop(self) -> None:
        await self.server.stop()

    async def restart(self) -> None:
        """Listen again on the address of the first start, as a card back from a reboot does."""
        if self._bound is None:
            raise RuntimeError("restart() before start()")
        await self.server.start(*self._bound)

    @property
    def started(self) -> float:
        """clock() when the simulator was made: a schedule's elapsed time counts from here."""
        return self._start

    def runtimecal(self) -> tuple[float, float, float, float]:
        """A NEW battery's datasheet as NUT runtimecal: [s at 100 % load, 100, s at 50 %, 50]."""
        full, half = float(self.nominal_w), self.nominal_w / 2.0
        return (self._full_runtime(full, 1.0), 100.0, self._full_runtime(half, 1.0), 50.0)

    # --- physics ---------------------------------------------------------------------------

    def _advance(self) -> None:
        """Integrate charge from the last read to now, split at schedule edges."""
        now = self.clock()
        t = self._last
        while t < now:
            step_end = min(now, self._next_edge(t))
            seconds = step_end - t
            if self.mains_on(t):
                self.charge_pct += 100.0 * seconds / self.recharge_seconds
            elif self.load_w > 0:
                self.charge_pct -= 100.0 * seconds / self._full_runtime(self.load_w, self.health)
            self.charge_pct = min(100.0, max(0.0, self.charge_pct))
            t = step_end
        self._last = now

    def _next_edge(self, t: float) -> float:
        if self._mains_override is not None or self.schedule is None:
            return float("inf")
        return self._start + self.schedule.next_edge(t - self._start)

    def _full_runtime(self, watts: float, health: float) -> float:
        """Seconds from full to empty at `watts`; the rated Wh hold at half the rated power."""
        reference = self.nominal_w / 2.0
        rated = self.capacity_wh * 3600.0 / reference
        return health * rated * (reference / watts) ** self.runtime_exponent

    def _string_resistance(self) -> float:
        # Resistance climbs as capacity fades (sulphation, dry-out): 1.8x at 60 % health.
        return self.resistance_ohms * (1.0 + 2.0 * (1.0 - self.health))

    def _battery_volts(self, mains: bool, load_w: float) -> float:
        if mains:
            return self.cells * (CELL_FLOAT_V if self.charge_pct >= 99.5 else CELL_ABSORB_V)
        ocv = self.cells * (
            CELL_OCV_EMPTY_V + (CELL_OCV_FULL_V - CELL_OCV_EMPTY_V) * self.charge_pct / 100.0
        )
        amps = load_w / (INVERTER_EFFICIENCY * ocv)
        return ocv - amps * self._string_resistance()

    def truth(self) -> dict[str, float | str]:
        """What the UPS serves right now, in NUT names; ups.status holds the flags."""
        self._advance()
        mains = self.mains_on()
        output_on = mains or self.charge_pct > 0.0
        load_w = self.load_w if output_on else 0.0
        if self.charge_pct <= 0.0:
            runtime = 0.0
        elif self.load_w <= 0.0:
            runtime = MAX_RUNTIME_S
        else:
            full = self._full_runtime(self.load_w, self.health)
            runtime = min(MAX_RUNTIME_S, full * self.charge_pct / 100.0)
        flags = ["OL" if mains else "OB"]
        if not output_on:
            flags.append("OFF")
        if runtime < LOW_RUNTIME_S or self.charge_pct < LOW_CHARGE_PCT:
            flags.append("LB")
        if self.replace_battery:
            flags.append("RB")
        values: dict[str, float | str] = {
            "battery.charge": self.charge_pct,
            "battery.runtime": float(round(runtime)),
            "battery.voltage": self._battery_volts(mains, load_w),
            "battery.temperature": self.temperature_c,
            "ups.load": 100.0 * load_w / self.nominal_w,
            "input.voltage": MAINS_VOLTS if mains else 0.0,
            "output.voltage": MAINS_VOLTS if output_on else 0.0,
            "output.current": load_w / MAINS_VOLTS,
            **self.nominal,
            **self.info,
            "ups.status": " ".join(flags),
        }
        # A dead output has no frequency or efficiency; APC then reports 0 and a reason code,
        # which the profile drops, so the truth leaves them out.
        if output_on:
            values["output.frequency"] = MAINS_HZ
        if mains and load_w > 0:
            values["ups.efficiency"] = 95.0
        return values

    # --- Modbus ----------------------------------------------------------------------------

    def register_source(
        self, unit: int, function: int, address: int, count: int
    ) -> list[int] | int | None:
        """Serve reads that fall inside one profile block, like APC's card does; None: silent."""
        if not self.answering:
            return None
        if unit != self.unit:
            return GATEWAY_TARGET_FAILED
        return profile_read(self.profile, function, address, count, self._registers_truth)

    def _registers_truth(self) -> tuple[dict[str, float | str], list[str]]:
        truth = self.truth()
        return truth, str(truth.pop("ups.status")).split()
