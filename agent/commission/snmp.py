"""`check` for an SNMP device: is the host there, did the agent answer, were the credentials
accepted (v3 failures are named by the collector), which profile fits, did the device reboot
lately, its ports and counters, what a traffic sample through the daemon's own BandwidthCheck
shows against the contract, and the battery of a UPS network card."""

from __future__ import annotations

import asyncio
import difflib
import time

from collectors.readings import PollError, SnmpReading
from collectors.snmp.client import SnmpSessions
from collectors.snmp.profile import select_profile

from ..checks.bandwidth import BandwidthCheck, InterfaceStatus
from ..config import SnmpDevice
from ..kinds.snmp import KIND, snmp_poller
from ..poller import DevicePoller
from ..state import DeviceState
from ..verdict import DeviceVerdict, Step
from .steps import TRAFFIC_SAMPLE_SECONDS, battery_step, failure, host_reachable, poll_once

REBOOTED_RECENTLY_S = 600.0
SATURATED = 0.9


async def check_snmp(
    device: SnmpDevice, sessions: SnmpSessions, sample_seconds: float = TRAFFIC_SAMPLE_SECONDS
) -> DeviceVerdict:
    verdict = DeviceVerdict(device.name, KIND.name)
    reach, reachable = await host_reachable(device.host_port[0])
    verdict.checks.append(reach)
    poller = snmp_poller(device, DeviceState(device.name, KIND.name), sessions)
    try:
        reading = await poll_once(poller)
        first_at = time.monotonic()
    except PollError as exc:
        await poller.close()
        verdict.checks += snmp_failure(device, exc, reachable)
        return verdict
    try:
        await _judge_snmp(device, poller, reading, first_at, sample_seconds, verdict)
    finally:
        await poller.close()
    return verdict


async def _judge_snmp(
    device: SnmpDevice,
    poller: DevicePoller,
    reading: SnmpReading,
    first_at: float,
    sample_seconds: float,
    verdict: DeviceVerdict,
) -> None:
    verdict.checks.append(
        Step(
            "snmp answer",
            "PASS",
            f"sysName {reading.sys_name or '(empty)'}, sysObjectID "
            f"{reading.sys_object_id or '(none)'}: {reading.sys_descr[:60] or '(no sysDescr)'}",
        )
    )
    verdict.checks.append(credentials_step(device))
    verdict.checks.append(profile_step(reading.sys_object_id))
    verdict.checks.append(uptime_step(reading))
    if reading.ups is not None:  # a UPS network card (collectors/snmp/ups.py)
        model = reading.ups.info.get("device.model") or "model not reported"
        verdict.checks.append(Step("ups", "PASS", f"UPS over SNMP: {model}"))
        verdict.checks.append(battery_step(device.name, reading.ups))
    names = [i.name for i in reading.interfaces]
    if not names and reading.ups is not None:
        return  # a UPS card without IF-MIB ports is not a broken router
    if not names:
        verdict.checks.append(
            Step(
                "interfaces",
                "FAIL",
                "the device lists no interfaces",
                "check the SNMP view "
                "on the device includes IF-MIB (1.3.6.1.2.1.2 and 1.3.6.1.2.1.31)",
            )
        )
        return
    verdict.checks.append(Step("interfaces", "PASS", f"{len(names)} interfaces"))
    found_ports = []
    for wanted in device.interfaces:
        found = next((i for i in reading.interfaces if i.name == wanted.name), None)
        if found is None:
            close = difflib.get_close_matches(wanted.name, names, n=3, cutoff=0.4)
            suggestion = (
                f"closest names: {', '.join(close)}" if close else f"names: {', '.join(names[:8])}"
            )
            verdict.checks.append(
                Step(
                    f"port {wanted.name}",
                    "FAIL",
                    "no interface of that name",
                    f"fix interfaces[].name in the config; {suggestion}",
                )
            )
            continue
        found_ports.append(wanted.name)
        if found.oper_up is False:
            verdict.checks.append(
                Step(
                    f"port {wanted.name}",
                    "WARN" if wanted.role == "lan" else "FAIL",
                    f"{wanted.role} port is down",
                    "check the cable and the far end",
                )
            )
        else:
            speed = f", {found.speed_bps / 1e6:g} Mb/s" if found.speed_bps else ""
            verdict.checks.append(
                Step(f"port {wanted.name}", "PASS", f"{wanted.role} port up{speed}")
            )
    if all(i.counter_bits == 32 for i in reading.interfaces):
        verdict.checks.append(
            Step(
                "counters",
                "WARN",
                "only 32-bit octet counters (no ifHCInOctets)",
                "a 32-bit counter wraps in 34 s at 1 Gb/s: keep the interval short, or "
                "enable SNMP v2c with 64-bit counters on the device",
            )
        )
    else:
        verdict.checks.append(Step("counters", "PASS", "64-bit octet counters"))
    if not found_ports:
        return
    # A traffic sample: a second poll a few seconds on, judged by the daemon's own check.
    bandwidth = BandwidthCheck(device.name, {i.name: i for i in device.interfaces})
    bandwidth.update(reading, first_at)
    await asyncio.sleep(max(0.0, sample_seconds - (time.monotonic() - first_at)))
    try:
        second = await poll_once(poller)
    except PollError as exc:
        verdict.checks.append(failure("traffic sample", exc))
        return
    assert isinstance(second, SnmpReading)
    now = time.monotonic()
    statuses = {s.name: s for s in bandwidth.update(second, now)}
    for name in found_ports:
        if name in statuses:
            verdict.checks.append(traffic_step(statuses[name], now - first_at))


# Keywords of the collector's v3 messages (collectors/snmp/client.py) -> what the installer does.
_V3_HINTS = (
    ("unknown user", "create this SNMPv3 user on the device, or fix the user name in the config "
     "(names are case-sensitive)"),
    ("wrong auth key", "the auth password or auth protocol (SHA, SHA-256, ...) differs from the "
     "device's: enter the same on both sides"),
    ("wrong priv key", "the privacy password or protocol (AES, AES-256, AES-256C, DES) differs "
     "from the device's: enter the same on both sides"),
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
