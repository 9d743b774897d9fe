"""UPS units read over Modbus (TCP, RTU over TCP, or a serial RS-485 port)."""

from __future__ import annotations

from exporters.cards import ups_card
from exporters.power import ups_families

from ..commission.modbus import check_modbus
from ..config import ModbusDevice
from ..poller import DevicePoller, modbus_poller
from ..state import DeviceState
from ..verdict import DeviceVerdict
from .base import DeviceKind, Pools


def _poller(
    device: ModbusDevice, state: DeviceState, pools: Pools, state_dir: str | None
) -> DevicePoller:
    return modbus_poller(device, state, pools.gateways, state_dir)


async def _check(device: ModbusDevice, pools: Pools, sample_seconds: float) -> DeviceVerdict:
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
