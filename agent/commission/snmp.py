"""`check` for an SNMP device: answer, credentials, profile, ports, counters, a traffic sample,
and the battery of a UPS network card."""

from __future__ import annotations

import asyncio
import difflib
import time

from collectors.readings import PollError, SnmpReading
from collectors.snmp.client import SnmpSessions

from ..bandwidth import BandwidthCheck
from ..config import SnmpDevice
from ..diagnose import (
    credentials_step,
    host_reachable,
    profile_step,
    snmp_failure,
    traffic_step,
    uptime_step,
)
from ..poller import DevicePoller, snmp_poller
from ..state import DeviceState
from ..verdict import DeviceVerdict, Step
from .steps import TRAFFIC_SAMPLE_SECONDS, battery_step, failure, poll_once


async def check_snmp(
    device: SnmpDevice, sessions: SnmpSessions, sample_seconds: float = TRAFFIC_SAMPLE_SECONDS
) -> DeviceVerdict:
    verdict = DeviceVerdict(device.name, "snmp")
    reach, reachable = await host_reachable(device.host_port[0])
    verdict.checks.append(reach)
    poller = snmp_poller(device, DeviceState(device.name, "snmp"), sessions)
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
