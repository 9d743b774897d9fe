"""`check` for a solar hybrid inverter: serial port or TCP connect, one poll through the
daemon's own poller, and what it says (which source feeds the load, PV, battery)."""

from __future__ import annotations

from collectors.readings import InverterReading, PollError

from ..checks.inverter import judge
from ..config import InverterDevice
from ..poller import DevicePoller
from ..verdict import DeviceVerdict, Step
from .modbus import reach_step
from .steps import failure, poll


async def check_inverter(device: InverterDevice, poller: DevicePoller) -> DeviceVerdict:
    verdict = DeviceVerdict(device.name, "inverter")
    verdict.checks.append(await reach_step(device))
    if verdict.status == "FAIL":
        await poller.close()
        return verdict
    try:
        reading = await poll(poller)
    except PollError as exc:
        verdict.checks.append(failure("modbus answer", exc))
        return verdict
    assert isinstance(reading, InverterReading)
    verdict.checks.append(Step("modbus answer", "PASS", f"unit {device.unit}: {summary(reading)}"))
    if reading.invalid:
        verdict.checks.append(
            Step(
                "values",
                "WARN",
                f"not available: {', '.join(reading.invalid)}",
                f"if these should have values, check that profile {device.profile} matches "
                "this inverter (model, firmware)",
            )
        )
    return verdict


def summary(reading: InverterReading) -> str:
    """'load on grid, PV 1200 W, battery 95 % charging' (what the map has)."""
    status = judge(reading)
    parts = [f"load on {status.load_source}"]
    if reading.pv_watts is not None:
        parts.append(f"PV {reading.pv_watts:.0f} W")
    if reading.battery_charge is not None:
        parts.append(f"battery {reading.battery_charge:.0f} % {status.battery_state or ''}".strip())
    if status.grid_present is not None:
        parts.append("grid present" if status.grid_present else "no grid")
    return ", ".join(parts)
