"""`erozgar-agent discover CIDR`: find the SNMP and Modbus TCP devices of a subnet and print a
config snippet for them.

Every address is tried at once up to a bound (`concurrency`), started no faster than `rate`
per second, so a scan never floods a small site's switch or a UPS card that takes one
connection at a time. SNMP: each community given, in order, through the daemon's own
collector (sysName, sysObjectID, the ports). Modbus TCP: a connect, then the common unit ids,
and for the first unit that answers every packaged profile's register blocks: the profile that
decodes the most values, all of them plausible, names the device. The snippet refers to
communities as ${SNMP_COMMUNITY} placeholders, never the literal.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from collectors.modbus.collector import ModbusCollector
from collectors.modbus.decode import DecodePlan
from collectors.modbus.profile import available_profiles, load_profile
from collectors.modbus.transport import Gateway, Link
from collectors.readings import PollError
from collectors.snmp.client import SnmpSessions, UsmAuth
from collectors.snmp.collector import SnmpCollector
from collectors.tcp import ConnectError, knock

from .modbus import COMMON_UNITS, plausible

MAX_HOSTS = 1024  # a /22; more needs --force
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass
class Found:
    kind: str  # snmp | modbus
    address: str
    port: int
    name: str = ""
    sys_object_id: str = ""
    sys_descr: str = ""
    ports: list[str] = field(default_factory=list)
    community_index: int = 0  # which --community answered (0 = the first)
    v3: V3User | None = None  # the v3 user that answered, instead of a community
    unit: int = 0
    profile: str = ""
    model: str = ""


@dataclass(frozen=True)
class V3User:
    """An SNMPv3 user to try; the passwords come from the environment, never the command line."""

    user: str
    auth_protocol: str | None = None
    auth_password: str | None = field(default=None, repr=False)
    priv_protocol: str | None = None
    priv_password: str | None = field(default=None, repr=False)

    def usm(self) -> UsmAuth:
        return UsmAuth(
            self.user, self.auth_protocol, self.auth_password, self.priv_protocol,
            self.priv_password,
        )  # fmt: skip


class ScanError(ValueError):
    """The scan cannot start (bad CIDR, too large); the message says what to do."""


def hosts(cidr: str, force: bool) -> list[str]:
    try:
        network = ipaddress.ip_network(cidr, strict=False)
    except ValueError as exc:
        raise ScanError(f"{cidr}: {exc}") from None
    if network.version != 4:
        raise ScanError(f"{cidr}: only IPv4 subnets can be scanned")
    if network.num_addresses > MAX_HOSTS and not force:
        raise ScanError(
            f"{cidr} has {network.num_addresses} addresses, more than a /22 ({MAX_HOSTS}): "
            "scan a smaller subnet, or pass --force"
        )
    if network.num_addresses <= 2:
        return [str(a) for a in network]
    return [str(a) for a in network.hosts()]


async def probe_snmp(
    address: str,
    port: int,
    communities: Sequence[str],
    v3_users: Sequence[V3User],
    sessions: SnmpSessions,
    timeout: float,
) -> Found | None:
    tries: list[tuple[int, str, V3User | None]] = [(i, c, None) for i, c in enumerate(communities)]
    tries += [(0, "", user) for user in v3_users]
    for index, community, v3 in tries:
        collector = SnmpCollector(
            address, port, community,
            version="3" if v3 else "2c", usm=v3.usm() if v3 else None,
            timeout=timeout, retries=0, sessions=sessions,
        )  # fmt: skip
        try:
            reading = await collector.poll()
        except PollError:
            continue
        return Found(
            "snmp",
            address,
            port,
            name=reading.sys_name,
            sys_object_id=reading.sys_object_id,
            sys_descr=reading.sys_descr,
            ports=[i.name for i in reading.interfaces],
            community_index=index,
            v3=v3,
        )
    return None


# Failures that say nobody answers for this unit id at all (not "wrong registers").
_UNIT_ABSENT = frozenset({"timeout", "exception_10", "exception_11", "refused", "unreachable"})


async def _identify(gateway: Gateway, unit: int) -> tuple[str, str, int] | None:
    """(profile, model, values decoded) of the best plausible profile for this unit; None
    when the unit does not answer; ("", "", 0) when it answers but no profile fits."""
    best: tuple[str, str, int] = ("", "", 0)
    for name in available_profiles():
        profile = load_profile(name)
        if profile.role != "ups":  # what it finds goes under modbus:, the UPS list
            continue
        try:
            image, _ = await ModbusCollector.on_gateway(gateway, unit, profile).read_image()
        except PollError as exc:
            if exc.reason in _UNIT_ABSENT:
                return None
            continue  # the unit is there; these registers are not
        if not plausible(profile, image):
            continue
        reading = DecodePlan(profile).decode(image)
        candidate = (name, reading.info.get("device.model", ""), len(reading.values))
        if candidate[2] > best[2]:
            best = candidate
    return best


async def probe_modbus(address: str, port: int, timeout: float) -> Found | None:
    try:
        await knock(address, port, timeout)
    except ConnectError:
        return None
    gateway = Gateway(
        Link("tcp", address, port), timeout=timeout, retries=0, backoff_min=0.0, backoff_max=0.0
    )
    try:
        for unit in COMMON_UNITS:
            identified = await _identify(gateway, unit)
            if identified is not None:
                # An empty profile: it speaks Modbus, but no packaged profile reads it.
                profile, model, _ = identified
                return Found("modbus", address, port, unit=unit, profile=profile, model=model)
    finally:
        await gateway.close()
    return None


class ProgressBar:
    """A bar redrawn on a terminal; elsewhere a line at each quarter, for logs."""

    def __init__(self, stream: TextIO, total: int) -> None:
        self.stream, self.total = stream, total
        self.tty = stream.isatty()
        self.done = self.found = 0
        self._quarter = 0

    def step(self, found: int) -> None:
        self.done += 1
        self.found += found
        if self.tty:
            bar = "#" * (30 * self.done // self.total)
            self.stream.write(
                f"\r[{bar:<30}] {self.done}/{self.total} addresses, {self.found} found"
            )
            self.stream.flush()
        elif 4 * self.done // self.total > self._quarter:
            self._quarter = 4 * self.done // self.total
            print(
                f"scanned {self.done}/{self.total} addresses, {self.found} found",
                file=self.stream,
                flush=True,
            )

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


async def discover(
    addresses: Sequence[str],
    communities: Sequence[str],
    *,
    v3_users: Sequence[V3User] = (),
    snmp_port: int = 161,
    modbus_port: int = 502,
    timeout: float = 1.0,
    concurrency: int = 64,
    rate: float = 200.0,
    on_address: Callable[[int], None] | None = None,
) -> list[Found]:
    """Every device found, in address order: SNMP first, then Modbus, per address."""
    sessions = SnmpSessions()
    limit = asyncio.Semaphore(concurrency)
    results: dict[int, list[Found]] = {}
    start = time.monotonic()

    async def scan(position: int, address: str) -> None:
        # Paced starts: address n waits until n / rate seconds into the scan.
        await asyncio.sleep(max(0.0, start + position / rate - time.monotonic()))
        async with limit:
            found = await asyncio.gather(
                probe_snmp(address, snmp_port, communities, v3_users, sessions, timeout)
                if communities or v3_users
                else _nothing(),
                probe_modbus(address, modbus_port, timeout),
            )
        results[position] = [f for f in found if f is not None]
        if on_address is not None:
            on_address(len(results[position]))

    try:
        await asyncio.gather(*(scan(i, a) for i, a in enumerate(addresses)))
    finally:
        await sessions.close()
    return [f for i in sorted(results) for f in results[i]]


async def _nothing() -> None:
    return None


def _device_name(found: Found, taken: set[str]) -> str:
    fallback = f"{'ups' if found.kind == 'modbus' else 'snmp'}-{found.address.replace('.', '-')}"
    base = _NAME_CHARS.sub("-", found.name).strip("-._")[:56] or fallback
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON's escaping is valid YAML)."""
    return json.dumps(text)


def _comment(text: str) -> str:
    return " ".join(text.split())[:100]


def community_variable(index: int) -> str:
    return "SNMP_COMMUNITY" if index == 0 else f"SNMP_COMMUNITY_{index + 1}"


V3_AUTH_VARIABLE, V3_PRIV_VARIABLE = "SNMP_V3_AUTH_PASSWORD", "SNMP_V3_PRIV_PASSWORD"


def _credential_lines(found: Found) -> list[str]:
    v3 = found.v3
    if v3 is None:
        return [f"    community: {_q('${' + community_variable(found.community_index) + '}')}"]
    lines = ['    version: "3"', f"    user: {_q(v3.user)}"]
    if v3.auth_protocol:
        lines += [
            f"    auth_protocol: {_q(v3.auth_protocol)}",
            f"    auth_password: {_q('${' + V3_AUTH_VARIABLE + '}')}",
        ]
    if v3.priv_protocol:
        lines += [
            f"    priv_protocol: {_q(v3.priv_protocol)}",
            f"    priv_password: {_q('${' + V3_PRIV_VARIABLE + '}')}",
        ]
    return lines


def render_snippet(found: Sequence[Found], cidr: str) -> str:
    """A config that `validate` accepts once the ${SNMP_COMMUNITY...} variables are set."""
    taken: set[str] = set()
    lines = [
        f"# erozgar-agent discover {cidr}: {len(found)} devices. Set site: and the interfaces",
        "# of each router (role: wan for the ISP port, with the contract in Mb/s).",
        "site:",
        '  id: "SITE-ID"',
    ]
    snmp = [f for f in found if f.kind == "snmp"]
    modbus = [f for f in found if f.kind == "modbus"]
    if snmp:
        lines.append("snmp:")
    for f in snmp:
        address = f.address if f.port == 161 else f"{f.address}:{f.port}"
        lines += [
            f"  - name: {_q(_device_name(f, taken))}",
            f"    # sysObjectID {f.sys_object_id or '(none)'}: {_comment(f.sys_descr)}",
            f"    address: {_q(address)}",
            *_credential_lines(f),
        ]
        if f.ports:
            lines.append(f"    # ports: {_comment(', '.join(f.ports))}")
    if modbus:
        lines.append("modbus:")
    for f in modbus:
        address = f.address if f.port == 502 else f"{f.address}:{f.port}"
        lines += [f"  - name: {_q(_device_name(f, taken))}", f"    address: {_q(address)}"]
        if f.profile:
            lines += [
                f"    # {_comment(f.model) or 'model not reported'}",
                f"    unit: {f.unit}",
                f"    profile: {_q(f.profile)}",
            ]
        else:
            lines.append("    # answers Modbus TCP, but no packaged profile reads it plausibly")
    return "\n".join(lines) + "\n"


def as_json(found: Sequence[Found]) -> list[dict[str, Any]]:
    return [
        {
            "kind": f.kind,
            "address": f.address,
            "port": f.port,
            **(
                {
                    "sys_name": f.name,
                    "sys_object_id": f.sys_object_id,
                    "sys_descr": f.sys_descr,
                    "ports": f.ports,
                    **(
                        {"community": community_variable(f.community_index)}
                        if f.v3 is None
                        else {"v3_user": f.v3.user}
                    ),
                }
                if f.kind == "snmp"
                else {"unit": f.unit, "profile": f.profile or None, "model": f.model}
            ),
        }
        for f in found
    ]
