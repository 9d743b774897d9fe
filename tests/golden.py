"""Golden files: the exposition the agent makes of a recorded device, against a reviewed file.

A test polls a recording (SNMP, Modbus register image, NUT dump) through the real collector,
judge and exporter, and compares the device's sample lines with `expected.prom` beside the
recording. After a deliberate change, EROZGAR_UPDATE_GOLDEN=1 rewrites the files: review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

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


def assert_golden(expected: Path, got: str) -> None:
    if UPDATE:
        expected.write_text(got)
    assert expected.exists(), f"no {expected}: run with EROZGAR_UPDATE_GOLDEN=1 and review it"
    assert got == expected.read_text()
