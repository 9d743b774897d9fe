"""`check` for a Modbus device: serial port or TCP connect, the unit's answer (or which units
do answer), plausible values (or the word order or profile that reads them), the battery."""

from __future__ import annotations

import asyncio
import errno
import math
import os
import stat
from collections.abc import Iterable

from collectors.modbus.collector import ModbusCollector
from collectors.modbus.decode import DecodePlan, RegisterImage, compile_field
from collectors.modbus.profile import ByteOrder, ModbusProfile, available_profiles, load_profile
from collectors.modbus.transport import Gateway, GatewayPool, Link
from collectors.readings import PollError, UpsReading

from ..config import ModbusConnection, ModbusDevice
from ..kinds.modbus import KIND, device_profile, modbus_poller
from ..poller import DevicePoller
from ..state import DeviceState
from ..verdict import DeviceVerdict, Step
from .steps import HINTS, battery_step, failure, tcp_connect_step

MAINS_VOLTS = (180.0, 260.0)  # Pakistan 230 V: outside this on mains, the decoding is wrong
COMMON_UNITS = (1, 0, 255, 2)
BYTE_ORDERS: tuple[ByteOrder, ...] = ("ABCD", "CDAB", "BADC", "DCBA")
_MIN_PLAUSIBLE_VALUES = 3  # a candidate profile must decode at least this many numbers


async def reach_step(device: ModbusConnection) -> Step:
    """The first step for any Modbus device (UPS, genset, inverter): its serial port opens, or
    its gateway accepts a TCP connection."""
    if device.transport == "rtu":
        return check_serial_port(device.address)
    return await tcp_connect_step(*device.host_port, device.timeout)


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
    verdict = DeviceVerdict(device.name, KIND.name)
    verdict.checks.append(await reach_step(device))
    if verdict.status == "FAIL":
        return verdict
    poller = modbus_poller(device, DeviceState(device.name, KIND.name), gateways)
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
        profile = load_profile(name)
        if name == current or profile.role != "ups":  # a modbus: device takes UPS profiles
            continue
        try:
            image, _ = await ModbusCollector.on_gateway(gateway, unit, profile).read_image()
        except PollError:
            continue  # its registers do not exist on this device
        if plausible(profile, image):
            found.append(name)
    return found
