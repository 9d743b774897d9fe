"""A simulated solar hybrid inverter: power flows set by hand, served over Modbus TCP through
a real inverter profile (encoded with collectors/modbus/encode.py, so it serves exactly the map
the collector reads)::

    inverter = SimulatedInverter("deye-sunsynk-1p")
    host, port = await inverter.start()
    inverter.set(grid=False, pv_watts=0.0)   # a night-time cut: the battery carries the load

The flows follow the load: battery = load - PV - grid import, the rule a hybrid inverter's DC
bus obeys (losses left out). On grid the grid covers what PV does not; in a cut the battery
does. The battery's charge is set, not integrated: tests and demos change it when they want.
"""

from __future__ import annotations

from collections.abc import Callable

from collectors.modbus.profile import load_profile
from simulators.modbus_server import (
    GATEWAY_TARGET_FAILED,
    ModbusTcpServer,
)
from simulators.profile_read import profile_read
from simulators.ups import MAINS_VOLTS

BATTERY_VOLTS = 52.0  # a 48 V lithium bank


class SimulatedInverter:
    """`grid_on`, when given, says whether the grid is there (the demo ties it to the UPS's
    mains schedule); else `grid` does, set by hand."""

    def __init__(
        self,
        profile: str,
        unit: int = 1,
        load_watts: float = 850.0,
        pv_watts: float = 0.0,
        grid_on: Callable[[], bool] | None = None,
    ) -> None:
        self.profile = load_profile(profile)
        self.unit = unit
        self.load_watts = load_watts
        self.grid = True
        self.grid_on = grid_on
        self.pv_watts = pv_watts
        self.charge_pct = 90.0
        self.server = ModbusTcpServer(self.register_source)

    def set(self, **changes: float | bool) -> None:
        """Change grid, pv_watts, load_watts or charge_pct."""
        for name, value in changes.items():
            if not hasattr(self, name):
                raise AttributeError(name)
            setattr(self, name, value)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        return await self.server.start(host, port)

    async def stop(self) -> None:
        await self.server.stop()

    def truth(self) -> dict[str, float | str]:
        """The inverter's state in the inverter vocabulary (collectors/modbus/inverter.py)."""
        pv = self.pv_watts
        on = self.grid if self.grid_on is None else self.grid_on()
        grid = max(self.load_watts - pv, 0.0) if on else 0.0
        battery = self.load_watts - pv - grid  # > 0 discharging
        half = pv / 2
        return {
            "pv.power": pv,
            "pv1.power": half,
            "pv2.power": pv - half,
            "pv1.energy": 0.0,
            "pv2.energy": 0.0,
            "grid.power": grid,
            "grid.voltage": MAINS_VOLTS if on else 0.0,
            "grid.present": 1.0 if on else 0.0,
            "load.power": self.load_watts,
            # Growatt's status words: 6 AC charge on grid, 2 discharge, 12 PV charge + discharge
            "load.source": "grid" if on else "pv-discharge" if pv else "battery",
            "battery.power": battery,
            "battery.current": battery / BATTERY_VOLTS,
            "battery.voltage": BATTERY_VOLTS,
            "battery.charge": self.charge_pct,
            "battery.temperature": 30.0,
        }

    def register_source(
        self, unit: int, function: int, address: int, count: int
    ) -> list[int] | int:
        if unit != self.unit:
            return GATEWAY_TARGET_FAILED
        return profile_read(self.profile, function, address, count, self._registers_truth)

    def _registers_truth(self) -> tuple[dict[str, float | str], tuple[str, ...]]:
        names = {spec.name for spec in self.profile.fields}
        return {name: value for name, value in self.truth().items() if name in names}, ()
