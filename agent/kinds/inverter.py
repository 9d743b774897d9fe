"""Solar hybrid inverters read over Modbus, from profiles with role inverter (Growatt SPF,
Deye/Sunsynk): PV, battery, grid and load power, and which source feeds the load."""

from __future__ import annotations

from collectors.modbus.collector import ModbusCollector
from collectors.modbus.transport import GatewayPool
from collectors.readings import InverterReading
from exporters.cards import inverter_card
from exporters.inverter import inverter_families

from ..checks.inverter import InverterStatus, judge
from ..config import InverterDevice
from ..poller import DevicePoller, poll_budget
from ..state import DeviceState
from ..verdict import DeviceVerdict
from .base import DeviceKind, Feed, Pools
from .modbus import device_profile


class InverterJudge:
    """Turns inverter readings into inverter status; nothing is kept between polls."""

    def apply(self, reading: InverterReading, now: float, state: DeviceState) -> None:
        state.invalid_samples.update(reading.invalid)
        state.status = judge(reading)

    def flush(self) -> None:
        pass


def inverter_poller(
    device: InverterDevice, state: DeviceState, gateways: GatewayPool | None = None
) -> DevicePoller:
    """Polled like a Modbus UPS, on the same shared gateways (one RS-485 bus often has both)."""
    gateway = (gateways or GatewayPool()).gateway(
        device.link, timeout=device.timeout, retries=device.retries, pause=device.pause
    )
    collector = ModbusCollector.on_gateway(gateway, device.unit, device_profile(device))
    budget = poll_budget(device.interval, device.timeout, device.retries)
    return DevicePoller(state, collector, InverterJudge(), budget)


def _poller(
    device: InverterDevice, state: DeviceState, pools: Pools, state_dir: str | None
) -> DevicePoller:
    return inverter_poller(device, state, pools.gateways)


async def _check(device: InverterDevice, pools: Pools, sample_seconds: float) -> DeviceVerdict:
    from ..commission.inverter import check_inverter  # commissioning code stays out of the daemon

    poller = inverter_poller(device, DeviceState(device.name, "inverter"), pools.gateways)
    return await check_inverter(device, poller)


def _feeds(status: InverterStatus) -> tuple[Feed, ...]:
    """What the inverter says of the centre's sources (agent/checks/centre_power.py)."""
    grid = () if status.grid_present is None else (("grid", status.grid_present),)
    return (
        ("solar", status.load_source == "solar"),
        ("battery", status.load_source == "battery"),
        *grid,
    )


KIND = DeviceKind(
    name="inverter",
    config=InverterDevice,
    poller=_poller,
    check=_check,
    metrics=inverter_families,
    card=inverter_card,
    power=lambda status: None,  # not a UPS supply for the service check; it feeds the view
    feeds=_feeds,
    restart_on_state_dir=False,  # it keeps no files
)
