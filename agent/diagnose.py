"""The installer's diagnosis behind `erozgar-agent check`: each step says what was seen and,
when something is wrong, what to change.

SNMP: is the host there at all (ICMP, else a TCP connect), did the agent answer, were the
credentials accepted (v3 failures are named by the collector), did the device reboot lately,
and what does a 5-second traffic sample through the daemon's own BandwidthCheck show against
the contract. Modbus: does the port accept a connection, which unit id answers, and when values
come out implausible, which word order or packaged profile decodes the same registers
plausibly. Host: clock synchronised, disk for the state directory, listen port, remote write.
No step prints a secret: messages come from the collectors, which leave them out.
"""

from __future__ import annotations

import asyncio
import errno
import math
import shutil
import socket
import subprocess
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from collectors.host import clock_synchronized
from collectors.modbus.collector import ModbusCollector
from collectors.modbus.decode import DecodePlan, RegisterImage, compile_field
from collectors.modbus.profile import ByteOrder, ModbusProfile, available_profiles, load_profile
from collectors.modbus.transport import Gateway, Link
from collectors.probe import ProbeTarget, probe
from collectors.readings import PollError, SnmpReading, UpsReading
from collectors.snmp.profile import select_profile
from collectors.tcp import ConnectError, knock

from .bandwidth import InterfaceStatus
from .config import Config, SnmpDevice
from .verdict import Step

# Ports where a router or switch usually has something (or sends a reset): either proves the
# host is up when ICMP is filtered or not permitted.
_TCP_ALIVE_PORTS = (22, 23, 80, 443, 8291)
REBOOTED_RECENTLY_S = 600.0
SATURATED = 0.9
MAINS_VOLTS = (180.0, 260.0)  # Pakistan 230 V: outside this on mains, the decoding is wrong
COMMON_UNITS = (1, 0, 255, 2)
BYTE_ORDERS: tuple[ByteOrder, ...] = ("ABCD", "CDAB", "BADC", "DCBA")
_MIN_PLAUSIBLE_VALUES = 3  # a candidate profile must decode at least this many numbers
MIN_FREE_BYTES, LOW_FREE_BYTES = 50e6, 500e6


# --- reachability ---------------------------------------------------------------------------


async def _tcp_answers(address: str, port: int, timeout: float) -> bool:
    """True when the host accepts or refuses a TCP connection: either way it is there."""
    try:
        await knock(address, port, timeout)
    except ConnectError as exc:
        return exc.reason == "refused"
    return True


async def host_reachable(host: str) -> tuple[Step, bool]:
    """Step "host reachable" and whether it is: ICMP echo, else a TCP connect to common ports."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, None, family=socket.AF_INET)
    except socket.gaierror as exc:
        step = Step(
            "host reachable", "FAIL", f"cannot resolve {host}: {exc.strerror}",
            "use the device's IP address, or fix DNS on this box",
        )  # fmt: skip
        return step, False
    address = str(infos[0][4][0])
    try:
        reading = await probe(ProbeTarget("check", address), count=2, spacing=0.2, timeout=1.0)
    except PollError:  # ICMP not permitted for this user: TCP says as much
        reading = None
    if reading is not None and reading.received:
        rtt = min(r for r in reading.rtts if r is not None)
        return Step(
            "host reachable", "PASS", f"{address} answers ping in {rtt * 1000:.1f} ms"
        ), True
    answers = await asyncio.gather(*(_tcp_answers(address, p, 1.0) for p in _TCP_ALIVE_PORTS))
    if any(answers):
        return Step("host reachable", "PASS", f"{address} answers TCP (ping filtered)"), True
    note = f" ({reading.note})" if reading is not None and reading.note else ""
    step = Step(
        "host reachable", "WARN", f"{address}: no answer to ping or TCP{note}",
        "the device may just filter ping; if the next step fails too, check the IP address, "
        "the cable and the VLAN between this box and the device",
    )  # fmt: skip
    return step, False


# --- SNMP -----------------------------------------------------------------------------------

# Keywords of the collector's v3 messages (collectors/snmp/client.py) -> what the installer does.
_V3_HINTS = (
    ("unknown user", "create this SNMPv3 user on the device, or fix the user name in the config "
     "(names are case-sensitive)"),
    ("wrong auth key", "the auth password or auth protocol (SHA, SHA-256, ...) differs from the "
     "device's: enter the same on both sides"),
    ("wrong priv key", "the privacy password or protocol (AES, AES-256, DES) differs from the "
     "device's: enter the same on both sides"),
    ("time window", "the device's SNMP engine time is out of step: check its clock and NTP, or "
     "restart its SNMP service"),
    ("security level", "the device's user needs a different security level: give (or drop) "
     "the auth and priv settings to match it"),
    ("engine id", "the agent did not reveal its SNMPv3 engine ID: check that v3 is enabled"),
)  # fmt: skip


def snmp_failure(device: SnmpDevice, exc: PollError, reachable: bool) -> list[Step]:
    """Steps for a poll that failed: no answer at all, or an answer that refused the credentials."""
    detail = f"{exc.reason}: {exc}"
    if exc.reason == "auth":
        message = str(exc).lower()
        hint = next(
            (hint for key, hint in _V3_HINTS if key in message),
            "the device rejected the credentials: check the user and keys in the config",
        )
        return [
            Step("snmp answer", "PASS", "the SNMP agent answered"),
            Step("credentials", "FAIL", detail, hint),
        ]
    if exc.reason == "timeout":
        if device.version in ("1", "2c") and reachable:
            hint = (
                "the host is there but SNMP stays silent, and a v1/v2c agent never answers a "
                "wrong community: check community:, that SNMP is enabled on the device, and that "
                "its SNMP ACL (allowed hosts) lists this box's address"
            )
        elif reachable:
            hint = "the host is there but SNMP stays silent: check the port, that SNMP is enabled "
            hint += "on the device, and its ACL"
        else:
            hint = "check the address and port, that SNMP is enabled, and any firewall on the way"
        return [Step("snmp answer", "FAIL", detail, hint)]
    if exc.reason == "refused":
        hint = (
            f"the host says nothing listens on UDP port {device.host_port[1]}: check the port "
            "in the config (SNMP is 161) and that the SNMP service is enabled on the device"
        )
        return [Step("snmp answer", "FAIL", detail, hint)]
    return [Step("snmp answer", "FAIL", detail, "see the detail")]


def credentials_step(device: SnmpDevice) -> Step:
    if device.version != "3":
        return Step("credentials", "PASS", f"SNMP v{device.version} community accepted")
    level = (
        "authPriv" if device.priv_protocol else "authNoPriv" if device.auth_protocol else "noAuth"
    )
    return Step("credentials", "PASS", f"SNMPv3 user {device.user!r} accepted ({level})")


def profile_step(sys_object_id: str) -> Step:
    """Which device profile (health values: CPU, temperature, ...) the sysObjectID selects."""
    profile = select_profile(sys_object_id)
    seen = f"sysObjectID {sys_object_id or '(none)'}"
    if profile.name == "generic":
        return Step("profile", "PASS", f"{seen}: no model profile, interfaces only (generic)")
    return Step("profile", "PASS", f"{seen}: {profile.name} ({profile.description})")


def uptime_step(reading: SnmpReading) -> Step:
    seconds = reading.sys_uptime_ticks / 100
    if reading.sys_uptime_ticks <= 0:
        return Step(
            "uptime", "WARN", "sysUpTime is 0 or missing",
            "the device's SNMP agent does not report uptime: reboots will not be seen",
        )  # fmt: skip
    if seconds < REBOOTED_RECENTLY_S:
        return Step(
            "uptime", "WARN", f"up only {seconds / 60:.1f} min: the device restarted recently",
            "was it a power cut or a crash? Check the device's power (UPS) and its log",
        )  # fmt: skip
    return Step("uptime", "PASS", f"up {_human(seconds)}")


def _human(seconds: float) -> str:
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


def _mbps(bps: float) -> str:
    return f"{bps / 1e6:.1f} Mb/s"


def traffic_step(port: InterfaceStatus, seconds: float) -> Step:
    """One port's traffic over the sample, against its contract (or port speed)."""
    name = f"traffic {port.name}"
    if port.receive_bps is None or port.transmit_bps is None:
        return Step(
            name, "WARN", f"no rate after a {seconds:.0f} s sample (counters missing or reset)",
            "run check again; if it persists, the device does not count octets on this port",
        )  # fmt: skip
    parts, worst = [], 0.0
    for arrow, rate, capacity, direction in (
        ("down", port.receive_bps, port.receive_capacity_bps, "receive"),
        ("up", port.transmit_bps, port.transmit_capacity_bps, "transmit"),
    ):
        share = port.utilization(direction)
        if share is None or capacity is None:
            parts.append(f"{arrow} {_mbps(rate)}")
        else:
            parts.append(f"{arrow} {_mbps(rate)} of {_mbps(capacity)} ({share:.0%})")
            worst = max(worst, share)
    detail = f"{', '.join(parts)} over {seconds:.0f} s"
    if worst >= SATURATED:
        return Step(
            name, "WARN", detail,
            "the link is nearly full: users will feel it; find the heavy user, or check the "
            "contract figures (capacity_down_mbps / capacity_up_mbps) in the config",
        )  # fmt: skip
    return Step(name, "PASS", detail)


# --- Modbus ---------------------------------------------------------------------------------


async def tcp_connect_step(host: str, port: int, timeout: float) -> Step:
    where = f"{host}:{port}"
    try:
        await knock(host, port, timeout)
    except ConnectError as exc:
        if exc.reason == "refused":
            return Step(
                "tcp connect", "FAIL", f"{where} refused the connection",
                "nothing listens there: check the address and port, and that Modbus TCP is "
                "enabled on the UPS's network card or gateway",
            )  # fmt: skip
        firewall = ", and any firewall on the way" if exc.reason == "timeout" else ""
        return Step(
            "tcp connect", "FAIL", f"{where}: {exc}",
            f"check the IP address, cabling and VLAN{firewall}",
        )  # fmt: skip
    return Step("tcp connect", "PASS", f"{where} accepts connections")


async def answering_units(link: Link, profile: ModbusProfile, skip: int) -> list[int]:
    """Common unit ids that answer the profile's first block on this link (a private gateway,
    so a probe's failures never delay the device's own polls)."""
    gateway = Gateway(link, timeout=1.0, retries=0, backoff_min=0.0, backoff_max=0.0)
    block = profile.blocks[0]
    found = []
    try:
        for unit in COMMON_UNITS:
            if unit == skip:
                continue
            try:
                await gateway.read(
                    block.table, block.address, block.count, unit=unit, where="probe"
                )
            except PollError:
                continue
            found.append(unit)
    finally:
        await gateway.close()
    return found


def implausible(profile: ModbusProfile, image: RegisterImage, reading: UpsReading) -> list[str]:
    """What is wrong with a decoded image: values outside their ranges, and values that
    contradict each other. Fields the device marks "not available" are not counted."""
    problems = []
    for spec in profile.fields:
        if spec.name not in reading.invalid or spec.valid is None:
            continue
        unbounded = spec.model_copy(update={"valid": None})
        decoder = compile_field(unbounded, profile.byte_order)
        value = decoder.convert([image[key] for key in decoder.keys])
        if isinstance(value, float) and not math.isnan(value):
            low, high = spec.valid
            problems.append(f"{spec.name} {value:g} outside {low:g}..{high:g}")
    values, flags = reading.values, reading.flags
    if "OL" in flags and "OB" in flags:
        problems.append("status says on mains and on battery at once")
    volts = values.get("input.voltage")
    low, high = MAINS_VOLTS
    if "OL" in flags and volts is not None and not low <= volts <= high:
        problems.append(f"input.voltage {volts:g} V on mains (expected {low:g}-{high:g} V)")
    charge, runtime = values.get("battery.charge"), values.get("battery.runtime")
    if charge is not None and charge > 5 and runtime is not None and runtime <= 0:
        problems.append(f"battery.runtime {runtime:g} s at charge {charge:g}%")
    return problems


def plausible(profile: ModbusProfile, image: RegisterImage) -> bool:
    reading = DecodePlan(profile).decode(image)
    return len(reading.values) >= _MIN_PLAUSIBLE_VALUES and not implausible(profile, image, reading)


def other_orders(profile: ModbusProfile, image: RegisterImage) -> list[ByteOrder]:
    """Byte orders, other than the profile's, under which the same registers are plausible."""
    return [
        order
        for order in BYTE_ORDERS
        if order != profile.byte_order
        and plausible(profile.model_copy(update={"byte_order": order}), image)
    ]


async def other_profiles(
    gateway: Gateway, unit: int, current: str, candidates: Iterable[str] | None = None
) -> list[str]:
    """Packaged profiles whose own blocks, read from this unit, decode plausibly."""
    found = []
    for name in candidates if candidates is not None else available_profiles():
        if name == current:
            continue
        profile = load_profile(name)
        try:
            image, _ = await ModbusCollector.on_gateway(gateway, unit, profile).read_image()
        except PollError:
            continue  # its registers do not exist on this device
        if plausible(profile, image):
            found.append(name)
    return found


# --- host -----------------------------------------------------------------------------------


def _timedatectl() -> bool | None:
    try:
        out = subprocess.run(
            ["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
            capture_output=True, text=True, timeout=3,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    value = out.stdout.strip()
    return {"yes": True, "no": False}.get(value) if out.returncode == 0 else None


def ntp_step() -> Step:
    name = "clock (NTP)"
    synced = _timedatectl()
    source = "timedatectl"
    if synced is None and Path("/run/systemd/timesync/synchronized").exists():
        synced, source = True, "systemd-timesyncd"
    if synced is None:
        synced, source = clock_synchronized(), "kernel (adjtimex)"
    if synced is None:
        return Step(
            name, "WARN", "cannot tell whether the clock is synchronised (no timedatectl, "
            "no adjtimex: a container?)", "make sure the host runs NTP (chrony or timesyncd)",
        )  # fmt: skip
    if not synced:
        return Step(
            name, "WARN", f"{source}: the clock is not synchronised",
            "enable NTP (timedatectl set-ntp true, or install chrony): graphs and outage times "
            "need the right time, and SNMPv3 needs a sane clock",
        )  # fmt: skip
    return Step(name, "PASS", f"{source}: synchronised")


def disk_step(state_dir: str) -> Step:
    name = "state directory disk"
    path = Path(state_dir)
    existing = next((p for p in (path, *path.parents) if p.exists()), Path("/"))
    free = shutil.disk_usage(existing).free
    seen = f"{free / 1e9:.1f} GB free on {existing}"
    if existing != path:
        seen += f" ({state_dir} does not exist yet)"
    if free < MIN_FREE_BYTES:
        return Step(name, "FAIL", seen, "free disk space: the battery history cannot be saved")
    if free < LOW_FREE_BYTES:
        return Step(name, "WARN", seen, "disk nearly full: free some space")
    return Step(name, "PASS", seen)


def listen_step(host: str, port: int) -> Step:
    name = "listen port"
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            return Step(
                name, "FAIL", f"cannot bind {host}:{port}: {exc.strerror}",
                "change listen: in the config",
            )  # fmt: skip
    else:
        return Step(name, "PASS", f"{host}:{port} is free")
    # In use: by a running agent (fine) or by something else (not fine).
    probe_host = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    url_host = f"[{probe_host}]" if ":" in probe_host else probe_host
    try:
        url = f"http://{url_host}:{port}/healthz"
        with urllib.request.urlopen(url, timeout=2) as response:
            running = response.status == 200 and response.read().startswith(b"ok")
    except OSError:
        running = False
    if running:
        return Step(name, "PASS", f"{host}:{port}: the agent is running and answers /healthz")
    return Step(
        name, "FAIL", f"{host}:{port} is taken by another program",
        "stop that program, or change listen: in the config",
    )  # fmt: skip


async def remote_write_step(url: str) -> Step:
    name = "remote write"
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        seconds = await knock(host, port, 5.0)
    except ConnectError as exc:
        return Step(
            name, "WARN", f"{host}:{port}: {exc}",
            "metrics stay on this box until the central server can be reached: check the "
            "internet link, DNS, and remote_write_url",
        )  # fmt: skip
    return Step(name, "PASS", f"{host}:{port} accepts connections ({seconds * 1000:.0f} ms)")


async def host_steps(config: Config) -> list[Step]:
    steps = [
        await asyncio.to_thread(ntp_step),
        disk_step(config.state_dir),
        await asyncio.to_thread(listen_step, *config.listen_host_port),
    ]
    if config.remote_write_url is not None:
        steps.append(await remote_write_step(config.remote_write_url))
    return steps
