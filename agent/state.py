"""The latest judged state of every device: written by the pollers, read by the exporters.

Pollers replace whole immutable snapshots; the HTTP thread only reads them, so a scrape never
waits on a device and never sees half a poll.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from collectors.readings import HealthSample, HostReading

from .checks.access import AccessSummary
from .checks.bandwidth import InterfaceStatus
from .checks.battery import BatteryReport
from .checks.genset import GensetStatus
from .checks.inverter import InverterStatus
from .checks.link_quality import LinkStatus
from .checks.power import UpsStatus
from .checks.wan import WanStatus

if TYPE_CHECKING:
    from .checks.availability import AvailabilityTotals  # it imports checks/service.py
    from .checks.capacity import CapacityStatus  # it reads AgentState
    from .checks.centre_power import CentrePowerStatus  # it reads this module's classes
    from .checks.service import ServiceStatus  # agent/checks/service.py reads this module's classes


@dataclass(frozen=True, slots=True)
class RouterStatus:
    """Judged state of one router or switch."""

    sys_name: str
    sys_descr: str
    sys_object_id: str
    uptime_seconds: float
    interfaces: tuple[InterfaceStatus, ...]
    requests: int
    varbinds: int
    wan: WanStatus | None = None  # which wan port carries the traffic (None: no wan port)
    retries: int = 0  # SNMP request PDUs sent again (latest poll)
    health: tuple[HealthSample, ...] = ()  # CPU, memory, temperature, PSU, fan (the profile's)
    profile: str = ""  # SNMP device profile used
    counter_rejections: tuple[tuple[str, int], ...] = ()  # (reason, deltas refused so far)
    ups: UpsStatus | None = None  # a UPS network card's power status (collectors/snmp/ups.py)
    access: AccessSummary | None = None  # its physical access ports summed (checks/access.py)


@dataclass
class DeviceState:
    """Health of one device plus its latest judged status."""

    name: str
    kind: str  # its kind's name (agent/kinds/): snmp, modbus, nut, genset
    up: bool | None = None  # None until the first poll finished
    reason: str = "pending"  # "ok" while up
    message: str = ""  # one-line explanation of the last failure, no secrets
    last_success: float | None = None  # unix time
    poll_duration: float | None = None
    errors: Counter[str] = field(default_factory=Counter)  # reason -> polls failed
    invalid_samples: Counter[str] = field(default_factory=Counter)  # field -> samples dropped
    counter_rejections: Counter[str] = field(default_factory=Counter)  # why a delta was refused
    restarts: int = 0  # device restarts seen (sysUpTime went back)
    status: RouterStatus | UpsStatus | GensetStatus | InverterStatus | None = None
    battery: BatteryReport | None = None  # UPS only: outage ledger and battery health


@dataclass
class AgentState:
    site_id: str
    site_name: str
    version: str
    devices: dict[str, DeviceState] = field(default_factory=dict)
    host: HostReading | None = None
    links: dict[str, LinkStatus] = field(default_factory=dict)  # WAN link quality, by link
    service: ServiceStatus | None = (
        None  # losses of service and their causes (agent/checks/service.py)
    )
    power: CentrePowerStatus | None = None  # the centre's power source (checks/centre_power.py)
    capacity: dict[str, CapacityStatus] = field(default_factory=dict)  # capacity tests, by link
    # seconds lost per cause, kept across restarts (checks/availability.py)
    availability: AvailabilityTotals | None = None
