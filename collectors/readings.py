"""What collectors return: plain, immutable snapshots of one poll of one device.

Collectors fill these in and raise `PollError` when the device could not be read; the checks in
`agent/` turn them into judgements (rates, on-battery, ...) and keep state between polls.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal


class PollError(Exception):
    """A device could not be read. `reason` is a short label for metrics, `str()` a one-line hint.

    Reasons: timeout, refused, unreachable, auth, exception_<N> (Modbus exception code), decode,
    protocol, config, error. The message never contains a secret (community, key, password).
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class InterfaceSample:
    """One IF-MIB row. Counters are raw device values (they wrap); None where there are none."""

    index: int
    name: str  # ifName, else ifDescr, else "if<index>"
    descr: str
    alias: str
    oper_up: bool | None
    admin_up: bool | None
    speed_bps: float | None  # ifHighSpeed * 1e6, else ifSpeed
    in_octets: int | None
    out_octets: int | None
    counter_bits: int  # 64 for ifHC*Octets, 32 for ifIn/OutOctets
    in_errors: int | None = None
    out_errors: int | None = None
    in_discards: int | None = None
    out_discards: int | None = None
    in_packets: int | None = None  # unicast packets (ifHCInUcastPkts, else ifInUcastPkts)
    out_packets: int | None = None
    discontinuity_ticks: int | None = None  # ifCounterDiscontinuityTime (sysUpTime ticks)
    read_at: float | None = None  # time.monotonic() when this row's octets were answered
    if_type: int | None = None  # ifType (IANAifType: 6 ethernetCsmacd, 23 ppp, 131 tunnel...)


@dataclass(frozen=True, slots=True)
class InterfaceNames:
    """The slow-changing IF-MIB columns (names, speeds) as read, so the agent can cache them.

    columns: {column OID: {index: raw value}} for ifName, ifDescr, ifAlias, ifSpeed,
    ifHighSpeed. `if_number` (ifNumber) and `uptime_ticks` (sysUpTime when read) tell whether
    the table may have changed since.
    """

    columns: Mapping[str, Mapping[str, int | str | bytes]]
    if_number: int | None
    uptime_ticks: int


@dataclass(frozen=True, slots=True)
class HealthSample:
    """One device health value from the device profile: cpu_ratio, temperature_celsius, ..."""

    metric: str  # cpu_ratio, memory_used_bytes, memory_total_bytes, memory_used_ratio,
    # temperature_celsius, psu_ok, fan_ok
    label: str  # sensor / psu / fan name; "" for device-wide values
    value: float


@dataclass(frozen=True, slots=True)
class SnmpReading:
    """System group and interface table of one router or switch."""

    sys_name: str
    sys_descr: str
    sys_object_id: str
    sys_uptime_ticks: int  # hundredths of a second since the SNMP agent (re)started
    interfaces: tuple[InterfaceSample, ...]
    requests: int = 0  # SNMP request PDUs sent for this poll
    varbinds: int = 0  # varbinds received for this poll
    retries: int = 0  # request PDUs sent again after a timeout
    health: tuple[HealthSample, ...] = ()
    profile: str = ""  # the device profile used (collectors/profiles/snmp/<profile>.yaml)
    names: InterfaceNames | None = None  # the name columns this poll used
    names_refreshed: bool = True  # False when `names` came from the agent's cache
    read_at: float | None = None  # time.monotonic() when the counters were answered
    ups: UpsReading | None = None  # a UPS network card (collectors/snmp/ups.py), else None
    # the speed of the device's fastest physical port, over every row of the name table (also
    # the ports `ports:` leaves out): the ceiling of a port without a speed of its own
    fastest_port_bps: float | None = None


@dataclass(frozen=True, slots=True)
class UpsReading:
    """One UPS, in NUT's vocabulary (RFC 9271 names and units: percent, seconds, volts, ...).

    values: {"battery.charge": 87.0, "battery.runtime": 2400.0, "input.voltage": 229.5, ...}
    info:   {"device.model": "Smart-UPS 1500", "device.serial": "...", "ups.firmware": "..."}
    flags:  NUT status tokens that are set now ({"OL"}, {"OB", "LB"}, ...)
    known_flags: tokens this device can report at all, so an unset flag exports 0, not nothing.
    invalid: field names dropped this poll ("not available" sentinel or implausible value).
    """

    values: Mapping[str, float]
    info: Mapping[str, str]
    flags: frozenset[str]
    known_flags: frozenset[str]
    invalid: tuple[str, ...] = ()
    requests: int = 0


@dataclass(frozen=True, slots=True)
class GensetReading:
    """One generator controller, in the genset profile vocabulary (collectors/profiles/modbus).

    values: {"fuel.level": 62.0, "engine.runtime": 3.6e6, "generator.power": 4200.0, ...}
            (percent, seconds, volts, hertz, watts)
    info:   {"device.mfr": "Deep Sea Electronics", "engine.state": "running", ...}
    flags:  genset status tokens set now ({"RUNNING"}, {"RUNNING", "ON_LOAD"}, {"SHUTDOWN"})
    known_flags: tokens this controller can report at all; `agent/checks/genset.py` derives
    what a map cannot say (on load from the output power when there is no breaker bit).
    invalid: field names dropped this poll ("not available" sentinel or implausible value).
    """

    values: Mapping[str, float]
    info: Mapping[str, str]
    flags: frozenset[str]
    known_flags: frozenset[str]
    invalid: tuple[str, ...] = ()
    requests: int = 0


@dataclass(frozen=True, slots=True)
class HostReading:
    """The agent's own box (psutil)."""

    cpu_seconds: Mapping[str, float]  # by mode: user, system, idle, iowait, ...
    cpu_count: int
    load1: float
    memory_total_bytes: float
    memory_available_bytes: float
    boot_time_seconds: float
    filesystems: Mapping[str, tuple[float, float]]  # mountpoint -> (size, available) bytes
    network: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # nic -> (rx, tx)
    clock_synchronized: bool | None = None  # kernel NTP state (adjtimex); None: cannot tell


@dataclass(frozen=True, slots=True)
class InverterReading:
    """One solar hybrid inverter, in watts, volts, amperes, percent and kWh as each name says;
    None (or empty) where its map has no such register.

    Signs: battery_watts > 0 while the battery discharges (< 0 charging), grid_watts > 0 while
    the site imports from the grid (< 0 exporting), as the profile's scale makes them.
    """

    pv_watts: float | None = None  # all PV strings together (their sum if the map has no total)
    pv_string_watts: Mapping[str, float] = field(default_factory=dict)  # "1" -> PV1 watts
    pv_string_kwh: Mapping[str, float] = field(default_factory=dict)  # lifetime energy, by string
    battery_charge: float | None = None  # percent
    battery_volts: float | None = None
    battery_amperes: float | None = None  # same sign as battery_watts
    battery_celsius: float | None = None
    battery_watts: float | None = None
    grid_watts: float | None = None
    grid_volts: float | None = None
    grid_present: bool | None = None  # the map's own grid-connected register
    load_watts: float | None = None
    load_source: str | None = None  # grid | battery | solar, from the map's mode register
    info: Mapping[str, str] = field(default_factory=dict)
    invalid: tuple[str, ...] = ()
    requests: int = 0


# What a device does at the centre, as its profile declares it. Each role has its own reading
# type; roles not listed in READINGS have none yet, so no profile can declare them.
Role = Literal["ups", "genset", "inverter", "ats", "router", "switch"]
READINGS: dict[str, type] = {
    "ups": UpsReading,
    "genset": GensetReading,
    "inverter": InverterReading,
    "router": SnmpReading,
    "switch": SnmpReading,
}


def role_read_as(role: str, *readings: type) -> str:
    """`role`, if a profile family that decodes into one of `readings` can serve it; else
    ValueError."""
    if READINGS.get(role) not in readings:
        served = ", ".join(r for r, t in READINGS.items() if t in readings)
        raise ValueError(f"{role} is not read by this kind of profile yet (it reads: {served})")
    return role
