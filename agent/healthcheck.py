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
import socket
from dataclasses import asdict, dataclass, field
from typing import Literal

from pysnmp.hlapi.v3arch.asyncio import SnmpEngine

from collectors.readings import PollError, SnmpReading, UpsReading

from .config import Config, ModbusDevice, SnmpDevice
from .daemon import modbus_poller, snmp_poller
from .poller import DevicePoller
from .power import PowerCheck
from .state import DeviceState

Status = Literal["PASS", "WARN", "FAIL"]
_RANK = {"PASS": 0, "WARN": 1, "FAIL": 2}

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
}


@dataclass
class Step:
    name: str
    status: Status
    detail: str
    hint: str = ""


@dataclass
class DeviceVerdict:
    name: str
    kind: str
    checks: list[Step] = field(default_factory=list)

    @property
    def status(self) -> Status:
        worst = max((_RANK[s.status] for s in self.checks), default=0)
        return next(k for k, v in _RANK.items() if v == worst)  # type: ignore[return-value]


def _failure(step: str, exc: PollError) -> Step:
    hint = _HINTS.get(exc.reason) or (
        "the device answered with a Modbus exception: see the detail"
        if exc.reason.startswith("exception_")
        else "see the detail; run with the daemon's log for more"
    )
    return Step(step, "FAIL", f"{exc.reason}: {exc}", hint)


async def _poll(poller: DevicePoller) -> SnmpReading | UpsReading:
    """One poll through the daemon's own collector, cut off at the daemon's budget."""
    try:
        return await asyncio.wait_for(poller.collector.poll(), poller.budget_seconds)
    except TimeoutError:
        raise PollError(
            "timeout", f"no complete answer within {poller.budget_seconds:g} s"
        ) from None
    finally:
        await poller.close()


async def check_snmp(device: SnmpDevice, engine: SnmpEngine) -> DeviceVerdict:
    verdict = DeviceVerdict(device.name, "snmp")
    poller = snmp_poller(device, DeviceState(device.name, "snmp"), engine)
    try:
        reading = await _poll(poller)
    except PollError as exc:
        verdict.checks.append(_failure("snmp answer", exc))
        return verdict
    assert isinstance(reading, SnmpReading)
    uptime_h = reading.sys_uptime_ticks / 360000
    verdict.checks.append(
        Step(
            "snmp answer",
            "PASS",
            f"sysName {reading.sys_name or '(empty)'}, sysObjectID {reading.sys_object_id}, "
            f"up {uptime_h:.1f} h",
        )
    )
    names = [i.name for i in reading.interfaces]
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
        return verdict
    verdict.checks.append(Step("interfaces", "PASS", f"{len(names)} interfaces"))
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
        elif found.oper_up is False:
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
    return verdict


async def check_modbus(device: ModbusDevice) -> DeviceVerdict:
    verdict = DeviceVerdict(device.name, "modbus")
    poller = modbus_poller(device, DeviceState(device.name, "modbus"))
    try:
        reading = await _poll(poller)
    except PollError as exc:
        verdict.checks.append(_failure("modbus answer", exc))
        return verdict
    assert isinstance(reading, UpsReading)
    model = reading.info.get("device.model", "unknown model")
    verdict.checks.append(
        Step(
            "modbus answer",
            "PASS",
            f"unit {device.unit} answered: {model}, profile {device.profile}",
        )
    )
    if reading.invalid:
        verdict.checks.append(
            Step(
                "values",
                "WARN",
                f"implausible or not available: {', '.join(reading.invalid)}",
                f"if these should have values, check that profile {device.profile} matches "
                "this UPS (model, firmware, word order)",
            )
        )
    else:
        verdict.checks.append(Step("values", "PASS", f"{len(reading.values)} values plausible"))
    status = PowerCheck(device.name).update(reading)
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
        verdict.checks.append(
            Step(
                "battery",
                "FAIL",
                f"UPS asks for a new battery; {seen}",
                "replace the battery before the next load-shedding",
            )
        )
    elif status.on_battery:
        verdict.checks.append(
            Step(
                "battery",
                "WARN",
                f"on battery now; {seen}",
                "mains is off or the input is out of range: check the UPS input",
            )
        )
    else:
        verdict.checks.append(Step("battery", "PASS", f"on mains; {seen}"))
    return verdict


def check_listen(config: Config) -> DeviceVerdict:
    verdict = DeviceVerdict("agent", "host")
    host, port = config.listen_host_port
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            verdict.checks.append(
                Step(
                    "listen port",
                    "WARN",
                    f"{host}:{port} is in use",
                    "fine if the agent is already running; else free the port "
                    "or change listen: in the config",
                )
            )
        else:
            verdict.checks.append(
                Step(
                    "listen port",
                    "FAIL",
                    f"cannot bind {host}:{port}: {exc.strerror}",
                    "change listen: in the config",
                )
            )
    else:
        verdict.checks.append(Step("listen port", "PASS", f"{host}:{port} is free"))
    return verdict


async def run_checks(config: Config) -> list[DeviceVerdict]:
    engine = SnmpEngine()
    jobs = [check_snmp(d, engine) for d in config.snmp] + [check_modbus(d) for d in config.modbus]
    try:
        verdicts = list(await asyncio.gather(*jobs))
    finally:
        engine.close_dispatcher()
    verdicts.append(check_listen(config))
    return verdicts


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
