"""`erozgar-agent check`: the installer's verdict on commissioning day.

Polls every device once, concurrently, through the same collectors and checks as the daemon,
and judges each step PASS / WARN / FAIL with what was seen and, for anything not PASS, a hint
that says what to do. Secrets are never printed: messages come from collectors that leave
them out.
"""

from __future__ import annotations

import asyncio
import difflib
import errno
import json
import os
import stat
import time
from collections.abc import Callable, Coroutine
from dataclasses import asdict
from typing import Any, TextIO

from collectors.modbus.collector import ModbusCollector
from collectors.modbus.decode import DecodePlan
from collectors.modbus.transport import GatewayPool
from collectors.readings import PollError, SnmpReading, UpsReading
from collectors.snmp.client import SnmpSessions

from .bandwidth import BandwidthCheck
from .config import Config, LinkSettings, ModbusDevice, NutDevice, SnmpDevice
from .daemon import device_profile, modbus_poller, nut_poller, snmp_poller
from .diagnose import (
    answering_units,
    credentials_step,
    host_reachable,
    host_steps,
    implausible,
    other_orders,
    other_profiles,
    profile_step,
    snmp_failure,
    tcp_connect_step,
    traffic_step,
    uptime_step,
)
from .link_quality import LinkQualityCheck, assess, run_probes
from .poller import DevicePoller
from .power import PowerCheck
from .state import DeviceState
from .verdict import DeviceVerdict, Step

# Seconds between the two polls whose counters give each port's traffic rate.
TRAFFIC_SAMPLE_SECONDS = 5.0


_HINTS = {
    "timeout": "no answer in time: check the address and port, that the service is enabled on "
    "the device, the credentials, and any ACL or firewall between this box and the device",
    "refused": "nothing listens on that port: check the address and port, and that the "
    "protocol is enabled on the device (for Modbus TCP, on its network card)",
    "unreachable": "the address cannot be reached: check the IP address, cabling and VLAN",
    "auth": "the device rejected the credentials: check the user and keys in the config",
    "decode": "the answer could not be decoded: check the profile and word order",
    "exception_2": "the device refused those register addresses: check the profile matches "
    "this UPS model",
    "exception_11": "the gateway got no answer from that unit: check the unit id and the "
    "serial wiring behind the gateway",
    "permission": "the agent may not open the serial port: add the agent user to group dialout "
    "(usermod -aG dialout USER) and restart the agent",
    "busy": "another program holds the serial port: stop it (ModemManager, a terminal, "
    "a second agent)",
    "stale": "upsd runs but its driver has no data: check the UPS's USB cable and the NUT "
    "driver (upsdrvctl start)",
    "config": "the config does not match the device: see the detail",
}


def _failure(step: str, exc: PollError) -> Step:
    hint = _HINTS.get(exc.reason) or (
        "the device answered with a Modbus exception: see the detail"
        if exc.reason.startswith("exception_")
        else "see the detail; run with the daemon's log for more"
    )
    return Step(step, "FAIL", f"{exc.reason}: {exc}", hint)


async def _poll_once(poller: DevicePoller) -> SnmpReading | UpsReading:
    """One poll through the daemon's own collector, cut off at the daemon's budget."""
    try:
        return await asyncio.wait_for(poller.collector.poll(), poller.budget_seconds)
    except TimeoutError:
        raise PollError(
            "timeout", f"no complete answer within {poller.budget_seconds:g} s"
        ) from None


async def _poll(poller: DevicePoller) -> SnmpReading | UpsReading:
    try:
        return await _poll_once(poller)
    finally:
        await poller.close()


async def check_snmp(
    device: SnmpDevice, sessions: SnmpSessions, sample_seconds: float = TRAFFIC_SAMPLE_SECONDS
) -> DeviceVerdict:
    verdict = DeviceVerdict(device.name, "snmp")
    reach, reachable = await host_reachable(device.host_port[0])
    verdict.checks.append(reach)
    poller = snmp_poller(device, DeviceState(device.name, "snmp"), sessions)
    try:
        reading = await _poll_once(poller)
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
        verdict.checks.append(_battery_step(device.name, reading.ups))
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
        second = await _poll_once(poller)
    except PollError as exc:
        verdict.checks.append(_failure("traffic sample", exc))
        return
    assert isinstance(second, SnmpReading)
    now = time.monotonic()
    statuses = {s.name: s for s in bandwidth.update(second, now)}
    for name in found_ports:
        if name in statuses:
            verdict.checks.append(traffic_step(statuses[name], now - first_at))


def check_serial_port(path: str) -> Step:
    """Can the agent open the RS-485 adapter at all? Says why not before any Modbus traffic."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return Step(
            "serial port",
            "FAIL",
            f"{path} does not exist",
            "plug in the USB-RS485 adapter; prefer its stable name under /dev/serial/by-id/",
        )
    if not stat.S_ISCHR(mode):
        return Step("serial port", "FAIL", f"{path} is not a serial device", "check address:")
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM):
            return Step("serial port", "FAIL", f"{path}: permission denied", _HINTS["permission"])
        return Step("serial port", "FAIL", f"{path}: {exc.strerror}", _HINTS["busy"])
    os.close(fd)
    return Step("serial port", "PASS", f"{path} opens")


async def check_modbus(device: ModbusDevice, gateways: GatewayPool | None = None) -> DeviceVerdict:
    verdict = DeviceVerdict(device.name, "modbus")
    if device.transport == "rtu":
        verdict.checks.append(check_serial_port(device.address))
    else:
        verdict.checks.append(await tcp_connect_step(*device.host_port, device.timeout))
    if verdict.status == "FAIL":
        return verdict
    poller = modbus_poller(device, DeviceState(device.name, "modbus"), gateways)
    assert isinstance(poller.collector, ModbusCollector)
    try:
        try:
            image, requests = await asyncio.wait_for(
                poller.collector.read_image(), poller.budget_seconds
            )
        except TimeoutError:
            raise PollError(
                "timeout", f"no complete answer within {poller.budget_seconds:g} s"
            ) from None
    except PollError as exc:
        await poller.close()
        verdict.checks.append(await _unit_failure(device, exc))
        return verdict
    try:
        await _judge_values(device, poller, image, requests, verdict)
    finally:
        await poller.close()
    return verdict


async def _unit_failure(device: ModbusDevice, exc: PollError) -> Step:
    """No answer from the unit: name the common unit ids that do answer on this link."""
    if exc.reason not in ("timeout", "exception_10", "exception_11"):
        return _failure("modbus answer", exc)
    units = await answering_units(device.link, device_profile(device), device.unit)
    if not units:
        return _failure("unit id", exc)
    return Step(
        "unit id",
        "FAIL",
        f"unit {device.unit} does not answer ({exc.reason}: {exc}); "
        f"unit {', '.join(map(str, units))} does",
        f"set unit: {units[0]} for this device (the UPS's Modbus address, on its front panel "
        "or network card page)",
    )


async def _judge_values(
    device: ModbusDevice,
    poller: DevicePoller,
    image: dict[tuple[str, int], int],
    requests: int,
    verdict: DeviceVerdict,
) -> None:
    profile = device_profile(device)
    reading = DecodePlan(profile).decode(image, requests)
    model = reading.info.get("device.model", "unknown model")
    verdict.checks.append(
        Step(
            "modbus answer",
            "PASS",
            f"unit {device.unit} answered: {model}, profile {device.profile}",
        )
    )
    problems = implausible(profile, image, reading)
    if problems:
        orders = other_orders(profile, image)
        if orders:
            hint = (
                f"the same registers are plausible with word order {orders[0]}: set "
                f"byte_order: {orders[0]} for this device"
            )
        else:
            assert isinstance(poller.collector, ModbusCollector)
            profiles = await other_profiles(poller.collector.gateway, device.unit, device.profile)
            hint = (
                f"profile {profiles[0]} reads this UPS plausibly: set profile: {profiles[0]}"
                if profiles
                else f"check that profile {device.profile} matches this UPS (model, firmware)"
            )
        verdict.checks.append(Step("values", "FAIL", f"implausible: {'; '.join(problems)}", hint))
        return
    if reading.invalid:
        verdict.checks.append(
            Step(
                "values",
                "WARN",
                f"not available: {', '.join(reading.invalid)}",
                f"if these should have values, check that profile {device.profile} matches "
                "this UPS (model, firmware)",
            )
        )
    else:
        verdict.checks.append(Step("values", "PASS", f"{len(reading.values)} values plausible"))
    verdict.checks.append(_battery_step(device.name, reading))


async def check_nut(device: NutDevice) -> DeviceVerdict:
    verdict = DeviceVerdict(device.name, "nut")
    try:
        reading = await _poll(nut_poller(device, DeviceState(device.name, "nut")))
    except PollError as exc:
        verdict.checks.append(_failure("nut answer", exc))
        return verdict
    assert isinstance(reading, UpsReading)
    model = reading.info.get("device.model", "unknown model")
    verdict.checks.append(Step("nut answer", "PASS", f"upsd serves {device.ups}: {model}"))
    if reading.invalid:
        verdict.checks.append(
            Step(
                "values",
                "WARN",
                f"not numbers: {', '.join(reading.invalid)}",
                f"upsc {device.ups}@{device.address} shows what the NUT driver reports",
            )
        )
    verdict.checks.append(_battery_step(device.name, reading))
    return verdict


def _battery_step(name: str, reading: UpsReading) -> Step:
    status = PowerCheck(name).update(reading)
    charge = status.values.get("battery.charge")
    runtime = status.values.get("battery.runtime")
    seen = ", ".join(
        part
        for part in (
            f"charge {charge:.0f}%" if charge is not None else "",
            f"runtime {runtime / 60:.0f} min" if runtime is not None else "",
        )
        if part
    )
    if status.replace_battery:
        return Step(
            "battery",
            "FAIL",
            f"UPS asks for a new battery; {seen}",
            "replace the battery before the next load-shedding",
        )
    if status.on_battery:
        return Step(
            "battery",
            "WARN",
            f"on battery now; {seen}",
            "mains is off or the input is out of range: check the UPS input",
        )
    if status.state in _STATE_STEPS:
        result, what, hint = _STATE_STEPS[status.state]
        return Step("battery", result, f"{what}; {seen}", hint)
    return Step("battery", "PASS", f"on mains; {seen}")


# What the UPS is doing when it is neither on mains nor on battery for a cut (agent/power.py
# power_state): a self-test is no fault, but its figures are not the on-mains ones.
_STATE_STEPS = {
    "self_test": ("WARN", "battery self-test running", "run check again when the test is over"),
    "calibration": (
        "WARN",
        "runtime calibration running",
        "run check again when the calibration is over (it discharges the battery)",
    ),
    "bypass": (
        "WARN",
        "on bypass: the load runs on raw mains, unprotected",
        "take the UPS off bypass (front panel or its network card); if it went there by "
        "itself, it reports a fault or overload: see its log",
    ),
    "off": (
        "FAIL",
        "UPS output is off: the load has no power from it",
        "switch the UPS output on (front panel or its network card)",
    ),
}


async def check_link(link: LinkSettings) -> DeviceVerdict:
    """One probe run of a WAN link: a step per target with loss, RTT and jitter seen."""
    verdict = DeviceVerdict(link.name, "link")
    status = LinkQualityCheck(link).update(await run_probes(link), 0.0, 0.0)
    for target, settings in zip(status.targets, link.targets, strict=True):
        result, detail, hint = assess(target, settings.tcp_port)
        verdict.checks.append(Step(f"{target.name} {target.address}", result, detail, hint))
    return verdict


async def check_host(config: Config) -> DeviceVerdict:
    """This box: clock, disk for the state directory, listen port, remote write."""
    return DeviceVerdict("agent", "host", await host_steps(config))


Progress = Callable[[DeviceVerdict, int, int], None]  # (finished verdict, done, total)


async def run_checks(
    config: Config,
    progress: Progress | None = None,
    sample_seconds: float = TRAFFIC_SAMPLE_SECONDS,
) -> list[DeviceVerdict]:
    """Every device at once, so a site takes about as long as its slowest device."""
    sessions = SnmpSessions()
    gateways = GatewayPool()  # devices on one serial port or gateway share it, as in the daemon
    jobs: list[Coroutine[Any, Any, DeviceVerdict]] = [
        check_snmp(d, sessions, sample_seconds) for d in config.snmp
    ]
    jobs += [check_modbus(d, gateways) for d in config.modbus]
    jobs += [check_nut(d) for d in config.nut]
    jobs += [check_link(link) for link in config.links]
    jobs.append(check_host(config))
    done = 0

    async def tracked(job: Coroutine[Any, Any, DeviceVerdict]) -> DeviceVerdict:
        nonlocal done
        verdict = await job
        done += 1
        if progress is not None:
            progress(verdict, done, len(jobs))
        return verdict

    try:
        return list(await asyncio.gather(*(tracked(job) for job in jobs)))
    finally:
        await sessions.close()
        await gateways.close()


def render_json(verdicts: list[DeviceVerdict]) -> str:
    return json.dumps(
        {
            "ok": all(v.status != "FAIL" for v in verdicts),
            "devices": [
                {
                    "name": v.name,
                    "kind": v.kind,
                    "status": v.status,
                    "checks": [asdict(s) for s in v.checks],
                }
                for v in verdicts
            ],
        },
        indent=2,
    )


def render_table(verdicts: list[DeviceVerdict]) -> str:
    rows = [("DEVICE", "KIND", "STEP", "RESULT", "DETAIL")]
    for verdict in verdicts:
        for step in verdict.checks:
            rows.append((verdict.name, verdict.kind, step.name, step.status, step.detail))
            if step.hint:
                rows.append(("", "", "", "", f"hint: {step.hint}"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r[:4], widths, strict=True)) + "  " + r[4]
        for r in rows
    ]
    failed = [v.name for v in verdicts if v.status == "FAIL"]
    warned = [v.name for v in verdicts if v.status == "WARN"]
    if failed:
        lines.append(f"\nFAIL: {len(failed)} of {len(verdicts)} failed: {', '.join(failed)}")
    elif warned:
        lines.append(f"\nPASS with warnings: {', '.join(warned)}")
    else:
        lines.append(f"\nPASS: all {len(verdicts)} checked")
    return "\n".join(lines)


class CheckProgress:
    """Progress on stderr while devices are checked: one redrawn line on a terminal, else a
    line per device as it finishes (readable in a log or CI output)."""

    def __init__(self, stream: TextIO, config: Config) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        count = len(config.snmp) + len(config.modbus) + len(config.nut) + len(config.links)
        print(
            f"checking {count} devices and links of site {config.site.id} "
            f"(about {TRAFFIC_SAMPLE_SECONDS:g} s for the traffic sample) ...",
            file=stream,
            flush=True,
        )

    def finished(self, verdict: DeviceVerdict, done: int, total: int) -> None:
        if self.tty:
            bar = "#" * (20 * done // total)
            line = f"\r[{bar:<20}] {done}/{total} {verdict.name} {verdict.status}"
            self.stream.write(f"{line:<79}"[:79])
        else:
            self.stream.write(f"[{done}/{total}] {verdict.name}: {verdict.status}\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
