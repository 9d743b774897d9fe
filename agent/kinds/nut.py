"""UPS units served by NUT's upsd (a USB UPS on this box or another)."""

from __future__ import annotations

from exporters.cards import ups_card
from exporters.power import ups_families

from ..commission.nut import check_nut
from ..config import NutDevice
from ..poller import DevicePoller, nut_poller
from ..state import DeviceState
from ..verdict import DeviceVerdict
from .base import DeviceKind, Pools


def _poller(
    device: NutDevice, state: DeviceState, pools: Pools, state_dir: str | None
) -> DevicePoller:
    return nut_poller(device, state, state_dir)


async def _check(device: NutDevice, pools: Pools, sample_seconds: float) -> DeviceVerdict:
    return await check_nut(device)


KIND = DeviceKind(
    name="nut",
    config=NutDevice,
    poller=_poller,
    check=_check,
    metrics=ups_families,
    card=lambda device: ups_card(device, device.status),
    power=lambda status: status,
    always_supply=True,
)
