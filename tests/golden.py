"""Golden files: the exposition the agent makes of a recorded device, against a reviewed file.

A test polls a recording (SNMP, Modbus register image, NUT dump) through the real collector,
judge and exporter, and compares the device's sample lines with `expected.prom` beside the
recording. After a deliberate change, EROZGAR_UPDATE_GOLDEN=1 rewrites the files: review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from agent.poller import DevicePoller, UpsJudge
from agent.state import AgentState
from exporters.prometheus import AgentCollector

UPDATE = os.environ.get("EROZGAR_UPDATE_GOLDEN") == "1"
# Lines that depend on timing or on the responder, not on the device.
VOLATILE = (
    "erozgar_device_poll_duration_seconds",
    "erozgar_device_last_success_timestamp_seconds",
    "erozgar_device_uptime_seconds",
    "erozgar_snmp_poll_",
)
# The wall clock a UPS's battery reads for its calendar maths (design life used since
# battery.date), so a golden file does not age: 2026-01-01T00:00:00Z.
GOLDEN_WALL = 1767225600.0


def device_exposition(state: AgentState, device: str) -> str:
    """The device's sample lines on /metrics, sorted, without the VOLATILE ones."""
    registry = CollectorRegistry()
    registry.register(AgentCollector(state))
    lines = [
        line
        for line in generate_latest(registry).decode().splitlines()
        if f'device="{device}"' in line and not line.startswith(VOLATILE)
    ]
    return "\n".join(sorted(lines)) + "\n"


async def poll_once(poller: DevicePoller, state: AgentState, device: str) -> str:
    """One poll by a daemon-built poller (a UPS's battery at GOLDEN_WALL); the exposition."""
    if isinstance(poller.judge, UpsJudge):
        poller.judge.battery.wall = lambda: GOLDEN_WALL
    try:
        await poller.poll()
    finally:
        await poller.close()
    assert state.devices[device].up, state.devices[device].message
    return device_exposition(state, device)


def assert_golden(expected: Path, got: str) -> None:
    if UPDATE:
        expected.write_text(got)
    assert expected.exists(), f"no {expected}: run with EROZGAR_UPDATE_GOLDEN=1 and review it"
    assert got == expected.read_text()
