"""`check` for a UPS served by NUT's upsd: its answer, numeric values, the battery."""

from __future__ import annotations

from collectors.readings import PollError, UpsReading

from ..config import NutDevice
from ..kinds.nut import KIND, nut_poller
from ..state import DeviceState
from ..verdict import DeviceVerdict, Step
from .steps import battery_step, failure, poll


async def check_nut(device: NutDevice) -> DeviceVerdict:
    verdict = DeviceVerdict(device.name, KIND.name)
    try:
        reading = await poll(nut_poller(device, DeviceState(device.name, KIND.name)))
    except PollError as exc:
        verdict.checks.append(failure("nut answer", exc))
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
    verdict.checks.append(battery_step(device.name, reading))
    return verdict
