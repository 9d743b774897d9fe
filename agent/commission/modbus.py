"""`check` for a Modbus device: serial port or TCP connect, the unit's answer (or which units
do answer), plausible values (or the word order or profile that reads them), the battery."""

from __future__ import annotations

import asyncio
import errno
import os
import stat

from collectors.modbus.collector import ModbusCollector
from collectors.modbus.decode import DecodePlan
from collectors.modbus.transport import GatewayPool
from collectors.readings import PollError

from ..config import ModbusDevice
from ..diagnose import answering_units, implausible, other_orders, other_profiles, tcp_connect_step
from ..poller import DevicePoller, device_profile, modbus_poller
from ..state import DeviceState
from ..verdict import DeviceVerdict, Step
from .steps import HINTS, battery_step, failure


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
            return Step("serial port", "FAIL", f"{path}: permission denied", HINTS["permission"])
        return Step("serial port", "FAIL", f"{path}: {exc.strerror}", HINTS["busy"])
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
        return failure("modbus answer", exc)
    units = await answering_units(device.link, device_profile(device), device.unit)
    if not units:
        return failure("unit id", exc)
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
    verdict.checks.append(battery_step(device.name, reading))
