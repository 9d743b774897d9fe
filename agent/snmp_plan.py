"""What to ask an SNMP device each poll: the cached name table, pinned ports, port filters.

    planned = PlannedSnmpCollector(SnmpCollector(...), device)
    reading = await planned.poll()   # names walked on the first poll, then every
                                     # name_cache_minutes or when ifNumber / sysUpTime say so

Collectors keep no state between polls, so the slow-changing IF-MIB columns (ifName, ifDescr,
ifAlias, ifSpeed, ifHighSpeed, ifType) are cached here and handed to the collector, which
re-walks them itself when ifNumber changed, the device restarted, or the rows it reads no longer
match the cached ones (a PPPoE session re-created under a new ifIndex). `ports:` in the config
then decides which ports reach the checks and the metrics; with `pinned: true` only the ports
listed under `interfaces:` are read, by GET, using the ifIndex the cached names give for each
ifName, so a port keeps its identity when the device renumbers ifIndex. While a listed port is
missing from the cached names (a PPPoE session down when they were walked), the table is walked
instead, so the port is found as soon as it is back.

The fastest physical port of the whole name table (ports left out by `ports:` included) goes
with every reading: it bounds the traffic of ports that report no speed (agent/checks/bandwidth.py).
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable
from dataclasses import replace

from pydantic import SecretStr

from collectors.readings import InterfaceNames, InterfaceSample, SnmpReading
from collectors.snmp.client import SnmpSessions, UsmAuth
from collectors.snmp.collector import SnmpCollector, build_interfaces

from .checks.bandwidth import fastest_physical_bps
from .config import SnmpDevice


def select_ports(
    interfaces: tuple[InterfaceSample, ...], device: SnmpDevice
) -> tuple[InterfaceSample, ...]:
    """The ports the config's `ports:` block keeps, in device order."""
    ports = device.ports
    listed = {i.name for i in device.interfaces}

    def keep(sample: InterfaceSample) -> bool:
        if (ports.roles_only or ports.pinned) and sample.name not in listed:
            return False
        if ports.include and not any(fnmatch.fnmatchcase(sample.name, g) for g in ports.include):
            return False
        if any(fnmatch.fnmatchcase(sample.name, g) for g in ports.exclude):
            return False
        return not (ports.admin_up_only and sample.admin_up is False)

    return tuple(sample for sample in interfaces if keep(sample))


def pinned_indexes(names: InterfaceNames, wanted: set[str]) -> list[int] | None:
    """ifIndex of each wanted port name, as the cached name table has it now; None when a
    wanted port is not in it (then the table is walked, so the port is found when it is back)."""
    rows = {row.name: row.index for row in build_interfaces(names.columns, {})}
    if not wanted <= rows.keys():
        return None
    return sorted(rows[name] for name in wanted)


class PlannedSnmpCollector:
    """Wraps an SnmpCollector with the agent-side name cache and the config's port choice."""

    def __init__(
        self,
        collector: SnmpCollector,
        device: SnmpDevice,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.collector = collector
        self.device = device
        self._clock = clock
        self._names: InterfaceNames | None = None
        self._names_at = 0.0
        self._fastest_bps: float | None = None

    def __repr__(self) -> str:
        return f"PlannedSnmpCollector({self.collector!r})"

    def _known(self) -> InterfaceNames | None:
        max_age = self.device.name_cache_minutes * 60
        if self._names is None or self._clock() - self._names_at >= max_age:
            return None
        return self._names

    async def poll(self) -> SnmpReading:
        known = self._known()
        pinned = None
        if known is not None and self.device.ports.pinned:
            pinned = pinned_indexes(known, {i.name for i in self.device.interfaces})
        reading = await self.collector.poll(known, pinned)
        if reading.names_refreshed and reading.names is not None:
            self._names, self._names_at = reading.names, self._clock()
            self._fastest_bps = fastest_physical_bps(build_interfaces(reading.names.columns, {}))
        return replace(
            reading,
            interfaces=select_ports(reading.interfaces, self.device),
            fastest_port_bps=self._fastest_bps,
        )

    async def close(self) -> None:
        await self.collector.close()


def snmp_collector(device: SnmpDevice, sessions: SnmpSessions) -> PlannedSnmpCollector:
    """The collector for one configured device: credentials from the config, names cached."""
    host, port = device.host_port
    usm = None
    if device.version == "3":
        assert device.user is not None  # the config requires it for version 3
        usm = UsmAuth(
            device.user,
            auth_protocol=device.auth_protocol,
            auth_password=_secret(device.auth_password),
            priv_protocol=device.priv_protocol,
            priv_password=_secret(device.priv_password),
            context_name=device.context,
        )
    collector = SnmpCollector(
        host,
        port,
        _secret(device.community) or "",
        version=device.version,
        usm=usm,
        timeout=device.timeout,
        retries=device.retries,
        sessions=sessions,
    )
    return PlannedSnmpCollector(collector, device)


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None
