"""SNMP routers and switches, and UPS network cards (a RouterStatus with `ups` set)."""

from __future__ import annotations

from typing import Any

from collectors.snmp.client import SnmpSessions
from exporters.cards import ups_card
from exporters.families import Families
from exporters.network import router_families
from exporters.power import ups_families

from ..checks.battery import BatteryMonitor
from ..checks.power import UpsStatus
from ..config import SnmpDevice
from ..poller import DevicePoller, RouterJudge, UpsJudge, poll_budget
from ..snmp_plan import snmp_collector
from ..state import DeviceState, RouterStatus
from ..verdict import DeviceVerdict
from .base import DeviceKind, Pools


def snmp_poller(
    device: SnmpDevice,
    state: DeviceState,
    sessions: SnmpSessions,
    state_dir: str | None = None,
) -> DevicePoller:
    collector = snmp_collector(device, sessions)
    budget = poll_budget(device.interval, device.timeout, device.retries)
    # a UPS network card keeps its outage ledger like any UPS (no file until it sees one)
    ups = UpsJudge(device.name, BatteryMonitor(device.name, state_dir=state_dir))
    return DevicePoller(state, collector, RouterJudge(device, ups), budget)


def _poller(
    device: SnmpDevice, state: DeviceState, pools: Pools, state_dir: str | None
) -> DevicePoller:
    return snmp_poller(device, state, pools.sessions, state_dir)


async def _check(device: SnmpDevice, pools: Pools, sample_seconds: float) -> DeviceVerdict:
    from ..commission.snmp import check_snmp  # commissioning code stays out of the daemon

    return await check_snmp(device, pools.sessions, sample_seconds)


def _metrics(out: Families, name: str, status: RouterStatus) -> None:
    router_families(out, name, status)
    if status.ups is not None:  # a UPS network card
        ups_families(out, name, status.ups)


def _router(status: RouterStatus | None) -> RouterStatus | None:
    return status


def _power(status: RouterStatus | None) -> UpsStatus | None:
    return status.ups if status is not None else None


def _card(device: DeviceState) -> dict[str, Any] | None:
    ups = _power(device.status)  # an snmp device's status is a RouterStatus
    return ups_card(device, ups) if ups is not None else None


KIND = DeviceKind(
    name="snmp",
    config=SnmpDevice,
    poller=_poller,
    check=_check,
    metrics=_metrics,
    card=_card,
    power=_power,
    router=_router,
    # its UPS card's ledger has no file until it sees an outage: kept across a new state_dir
    restart_on_state_dir=False,
)
