"""UPS units served by NUT's upsd (a USB UPS on this box or another)."""

from __future__ import annotations

from collectors.nut import NutCollector
from exporters.cards import ups_card
from exporters.power import ups_families

from ..checks.battery import monitor_for
from ..config import NutDevice
from ..poller import DevicePoller, UpsJudge, poll_budget
from ..state import DeviceState
from ..verdict import DeviceVerdict
from .base import DeviceKind, Pools


def nut_poller(device: NutDevice, state: DeviceState, state_dir: str | None = None) -> DevicePoller:
    host, port = device.host_port
    password = device.password.get_secret_value() if device.password else None
    collector = NutCollector(
        host, port, device.ups, username=device.username, password=password,
        timeout=device.timeout,
    )  # fmt: skip
    budget = poll_budget(device.interval, device.timeout, 0)
    judge = UpsJudge(device.name, monitor_for(device.name, device, state_dir))
    return DevicePoller(state, collector, judge, budget)


def _poller(
    device: NutDevice, state: DeviceState, pools: Pools, state_dir: str | None
) -> DevicePoller:
    return nut_poller(device, state, state_dir)


async def _check(device: NutDevice, pools: Pools, sample_seconds: float) -> DeviceVerdict:
    from ..commission.nut import check_nut  # commissioning code stays out of the daemon

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
