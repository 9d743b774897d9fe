"""UPS units read over Modbus (TCP, RTU over TCP, or a serial RS-485 port)."""

from __future__ import annotations

from collectors.modbus.collector import ModbusCollector
from collectors.modbus.profile import ModbusProfile, load_profile
from collectors.modbus.transport import GatewayPool
from exporters.cards import ups_card
from exporters.power import ups_families

from ..checks.battery import monitor_for
from ..config import ModbusConnection, ModbusDevice
from ..poller import DevicePoller, UpsJudge, poll_budget
from ..state import DeviceState
from ..verdict import DeviceVerdict
from .base import DeviceKind, Pools


def device_profile(device: ModbusConnection) -> ModbusProfile:
    """The device's profile with its own byte_order, when the config gives one."""
    profile = load_profile(device.profile)
    if device.byte_order is not None:
        profile = profile.model_copy(update={"byte_order": device.byte_order})
    return profile


def modbus_poller(
    device: ModbusDevice,
    state: DeviceState,
    gateways: GatewayPool | None = None,
    state_dir: str | None = None,  # None: battery history in memory only (the check command)
) -> DevicePoller:
    """`gateways` shares one connection per gateway among devices; None: a private one."""
    gateway = (gateways or GatewayPool()).gateway(
        device.link, timeout=device.timeout, retries=device.retries, pause=device.pause
    )
    collector = ModbusCollector.on_gateway(gateway, device.unit, device_profile(device))
    budget = poll_budget(device.interval, device.timeout, device.retries)
    judge = UpsJudge(device.name, monitor_for(device.name, device, state_dir))
    return DevicePoller(state, collector, judge, budget)


def _poller(
    device: ModbusDevice, state: DeviceState, pools: Pools, state_dir: str | None
) -> DevicePoller:
    return modbus_poller(device, state, pools.gateways, state_dir)


async def _check(device: ModbusDevice, pools: Pools, sample_seconds: float) -> DeviceVerdict:
    from ..commission.modbus import check_modbus  # commissioning code stays out of the daemon

    return await check_modbus(device, pools.gateways)


KIND = DeviceKind(
    name="modbus",
    config=ModbusDevice,
    poller=_poller,
    check=_check,
    metrics=ups_families,
    card=lambda device: ups_card(device, device.status),
    power=lambda status: status,
    always_supply=True,
)
