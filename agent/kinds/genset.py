"""Generator controllers read over Modbus with a `role: genset` profile (DSE GenComm, ...).

The same collector and decoder as a Modbus UPS (collectors/modbus/); the profile's role makes
the decoder fill a GensetReading, which agent/checks/genset.py judges. Its start after a mains
loss is watched site-wide (agent/checks/centre_power.py), from the generator feed below.
"""

from __future__ import annotations

from collectors.modbus.collector import ModbusCollector
from collectors.readings import GensetReading, PollError
from exporters.genset import genset_card, genset_families

from ..checks.genset import GensetCheck, GensetStatus
from ..config import GensetDevice
from ..poller import DevicePoller, poll_budget
from ..state import DeviceState
from ..verdict import DeviceVerdict, Step
from .base import DeviceKind, Feed, Pools
from .modbus import device_profile


class GensetJudge:
    """Turns genset readings into its judged status."""

    def __init__(self, device: GensetDevice) -> None:
        self.device = device
        self.check = GensetCheck(device.name)

    def apply(self, reading: object, now: float, state: DeviceState) -> None:
        if not isinstance(reading, GensetReading):  # a UPS profile under genset:
            raise PollError("config", f"profile {self.device.profile} is not a genset's")
        state.invalid_samples.update(reading.invalid)
        state.status = self.check.update(reading)

    def flush(self) -> None:
        """Nothing kept on disk."""


def _poller(
    device: GensetDevice, state: DeviceState, pools: Pools, state_dir: str | None
) -> DevicePoller:
    gateway = pools.gateways.gateway(
        device.link, timeout=device.timeout, retries=device.retries, pause=device.pause
    )
    collector = ModbusCollector.on_gateway(gateway, device.unit, device_profile(device))
    budget = poll_budget(device.interval, device.timeout, device.retries)
    return DevicePoller(state, collector, GensetJudge(device), budget)


async def _check(device: GensetDevice, pools: Pools, sample_seconds: float) -> DeviceVerdict:
    """Reachable, answering, and ready to start on a mains loss (in auto, no shutdown alarm)."""
    # commissioning code stays out of the daemon (as the other kinds)
    from ..commission.modbus import reach_step
    from ..commission.steps import failure, poll

    verdict = DeviceVerdict(device.name, KIND.name)
    verdict.checks.append(await reach_step(device))
    if verdict.status == "FAIL":
        return verdict
    poller = _poller(device, DeviceState(device.name, KIND.name), pools, None)
    try:
        reading = await poll(poller)
    except PollError as exc:
        verdict.checks.append(failure("modbus answer", exc))
        return verdict
    if not isinstance(reading, GensetReading):
        verdict.checks.append(
            Step("modbus answer", "FAIL", f"profile {device.profile} is not a genset profile",
                 "set profile: to a genset profile such as dse-gencomm")
        )  # fmt: skip
        return verdict
    status = GensetCheck(device.name).update(reading)
    state = reading.info.get("engine.state", "unknown")
    verdict.checks.append(
        Step("modbus answer", "PASS",
             f"unit {device.unit} answered: engine {state}, profile {device.profile}")
    )  # fmt: skip
    verdict.checks.append(_ready_step(status))
    return verdict


def _ready_step(status: GensetStatus) -> Step:
    mode = status.info.get("generator.mode")
    alarms = [alarm for alarm, on in status.alarms.items() if on]
    if status.alarms.get("shutdown"):
        hint = "clear the alarm on the controller: it will not start on a mains loss"
        return Step("ready to start", "FAIL", "a shutdown alarm is active", hint)
    if mode is not None and mode != "auto":
        hint = "set it to auto, or it will not start on a mains loss"
        return Step("ready to start", "WARN", f"controller in {mode} mode", hint)
    detail = f"mode {mode or 'not reported'}" + (f", alarms: {', '.join(alarms)}" if alarms else "")
    return Step("ready to start", "WARN" if alarms else "PASS", detail)


def _feeds(status: GensetStatus) -> tuple[Feed, ...]:
    grid = () if status.mains_available is None else (("grid", status.mains_available),)
    return (("generator", status.on_load), *grid)


KIND = DeviceKind(
    name="genset",
    config=GensetDevice,
    poller=_poller,
    check=_check,
    metrics=genset_families,
    card=genset_card,
    power=lambda status: None,
    feeds=_feeds,
)
