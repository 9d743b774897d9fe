"""What a device kind declares, once: the settings it is configured with, how its poller is
made, its commissioning steps, its metric families and its status-page card.

The registry (agent/kinds/__init__.py) lists the kinds; the daemon, the fleet, `check`, the
exporters and the service check ask it instead of testing types. A new kind is one module here,
its line in the registry and its list in agent.config.Config (tests/unit/test_kinds.py holds
the two to each other). The module builds the kind's poller itself; the rest lives in its
layer: settings model (agent/config.py), collector (collectors/), check steps
(agent/commission/, imported when `check` runs, so the daemon never loads them), families
(exporters/).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from collectors.modbus.transport import GatewayPool
from collectors.snmp.client import SnmpSessions
from exporters.families import Families

from ..checks.power import UpsStatus
from ..config import DeviceSettings
from ..poller import DevicePoller
from ..state import DeviceState, RouterStatus
from ..verdict import DeviceVerdict


@dataclass(frozen=True)
class Pools:
    """Connections devices share: one SNMP engine, one connection per Modbus gateway."""

    sessions: SnmpSessions
    gateways: GatewayPool


# (source, powering): what a device says about one power source of the centre
# (agent/checks/centre_power.py ranks the sources).
Feed = tuple[str, bool]


def _no_router(status: Any) -> RouterStatus | None:
    return None


def _no_feeds(status: Any) -> tuple[Feed, ...]:
    return ()


@dataclass(frozen=True)
class DeviceKind:
    # The `kind` label, and the key of the config list its devices are under (agent.config).
    name: str
    config: type[DeviceSettings]  # its settings model
    # (settings, state, pools, state_dir or None for in-memory ledgers) -> its poller
    poller: Callable[[Any, DeviceState, Pools, str | None], DevicePoller]
    # (settings, pools, traffic sample seconds) -> the `check` verdict
    check: Callable[[Any, Pools, float], Coroutine[Any, Any, DeviceVerdict]]
    # (out, device name, status) -> its families while it answers (exporters/)
    metrics: Callable[[Families, str, Any], None]
    card: Callable[[DeviceState], dict[str, Any] | None]  # its card on the status page
    power: Callable[[Any], UpsStatus | None]  # the power status within its status, if any
    router: Callable[[Any], RouterStatus | None] = _no_router  # the router status, if any
    # power sources it reports beyond a UPS's grid/battery (`power`): a genset's generator
    feeds: Callable[[Any], tuple[Feed, ...]] = _no_feeds
    always_supply: bool = False  # a power supply for powered_by even before it answers
    # Its poller keeps files under state_dir from the start: a new state_dir replaces it.
    restart_on_state_dir: bool = True
