"""A simulated UPS: a small physical model served over Modbus TCP through a real profile.

The model integrates battery energy between reads: on battery the charge falls at load/capacity,
on mains it recovers over `recharge_seconds`. Its state is encoded with the same profile the
collector decodes, so the simulator serves exactly the map a real unit would (if the map is
right; golden fixtures written by hand guard against a shared mistake)::

    ups = SimulatedUps(capacity_wh=864, load_w=450, outage_every=3600, outage_length=1200)
    host, port = await ups.start()          # 127.0.0.1, a free port
    ups.truth()  # {"battery.charge": 100.0, "input.voltage": 230.0, "ups.status": "OL", ...}

`clock` (default time.monotonic) is injectable so tests can fast-forward through an outage.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from agent.simulators.modbus_server import READ_HOLDING, READ_INPUT, ModbusTcpServer
from collectors.modbus.encode import encode_image
from collectors.modbus.profile import ModbusProfile, load_profile

ILLEGAL_DATA_ADDRESS = 2
GATEWAY_TARGET_FAILED = 11

MAINS_VOLTS, MAINS_HZ = 230.0, 50.0  # Pakistan: 230 V 50 Hz
CELL_EMPTY_V, CELL_FULL_V = 2.0, 2.27  # lead-acid volts per cell, flat to float
LOW_RUNTIME_S, LOW_CHARGE_PCT = 120.0, 10.0
MAX_RUNTIME_S = 86400.0  # what the profile accepts as plausible; idle UPSs report huge numbers


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
    ) -> None:
        if outage_every is not None and not 0 <= outage_length <= outage_every:
            raise ValueError("outage_length must lie between 0 and outage_every")
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
        }
        self.nominal = {
            "ups.power.nominal": float(nominal_va),
            "ups.realpower.nominal": float(nominal_w),
        }
        self.outage_every = outage_every
        self.outage_length = outage_length
        self.clock = clock
        self.charge_pct = charge_pct
        self._start = self._last = clock()
        self._mains_override: bool | None = None
        self.server = ModbusTcpServer(self.register_source)

    # --- control ---------------------------------------------------------------------------

    def set_mains(self, on: bool) -> None:
        """Switch mains by hand; this replaces the outage schedule from now on."""
        self._advance()
        self._mains_override = on

    def mains_on(self, at: float | None = None) -> bool:
        if self._mains_override is not None:
            return self._mains_override
        if self.outage_every is None:
            return True
        phase = ((self.clock() if at is None else at) - self._start) % self.outage_every
        return phase < self.outage_every - self.outage_length

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        return await self.server.start(host, port)

    async def stop(self) -> None:
        await self.server.stop()

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
            else:
                self.charge_pct -= 100.0 * self.load_w * seconds / 3600.0 / self._usable_wh()
            self.charge_pct = min(100.0, max(0.0, self.charge_pct))
            t = step_end
        self._last = now

    def _next_edge(self, t: float) -> float:
        if self._mains_override is not None or self.outage_every is None:
            return float("inf")
        every, length = self.outage_every, self.outage_length
        cycle_start = self._start + (t - self._start) // every * every
        # The third edge only matters when float rounding puts t at the very end of a cycle;
        # it guarantees _advance always moves forward.
        edges = (
            cycle_start + every - length,
            cycle_start + every,
            cycle_start + 2 * every - length,
        )
        return next(edge for edge in edges if edge > t)

    def _usable_wh(self) -> float:
        return self.capacity_wh * self.health

    def truth(self) -> dict[str, float | str]:
        """What the UPS serves right now, in NUT names; ups.status holds the flags."""
        self._advance()
        mains = self.mains_on()
        output_on = mains or self.charge_pct > 0.0
        load_w = self.load_w if output_on else 0.0
        remaining_wh = self._usable_wh() * self.charge_pct / 100.0
        if remaining_wh <= 0.0:
            runtime = 0.0
        elif load_w <= 0.0:
            runtime = MAX_RUNTIME_S
        else:
            runtime = min(MAX_RUNTIME_S, remaining_wh * 3600.0 / load_w)
        cell_v = CELL_EMPTY_V + (CELL_FULL_V - CELL_EMPTY_V) * self.charge_pct / 100.0
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
            "battery.voltage": self.cells * cell_v,
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
    ) -> list[int] | int:
        """Serve reads that fall inside one profile block, like APC's card does."""
        if unit != self.unit:
            return GATEWAY_TARGET_FAILED
        table = {READ_HOLDING: "holding", READ_INPUT: "input"}[function]
        if self.profile.block_for(table, address, count) is None:
            return ILLEGAL_DATA_ADDRESS
        truth = self.truth()
        flags = str(truth.pop("ups.status")).split()
        image = encode_image(self.profile, truth, flags)
        return [image[(table, a)] for a in range(address, address + count)]
