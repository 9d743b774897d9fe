"""Families for generator controllers (agent/checks/genset.py) and for the centre's power
source (agent/checks/centre_power.py), in base units.

erozgar_genset_on_load{device="genset"} 1.0
erozgar_genset_start_delay_seconds{device="genset"} 14.0
erozgar_centre_power_source{source="generator"} 1.0
erozgar_centre_power_source_seconds_total{source="battery"} 14.0

Time on a source per day is increase(erozgar_centre_power_source_seconds_total[1d]), centrally.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from agent.checks.genset import GensetStatus
from agent.state import AgentState, DeviceState

from .families import Families

# Profile value -> (metric name without prefix, help, factor to base units, counter). A value a
# genset profile decodes is either here or in its `not_exported` list with the reason
# (tests/unit/test_genset.py holds every packaged genset profile to that).
GENSET_VALUES: dict[str, tuple[str, str, float, bool]] = {
    "fuel.level": ("genset_fuel_ratio", "Fuel tank level, 0 to 1.", 0.01, False),
    "engine.battery.voltage": (
        "genset_battery_voltage_volts",
        "Starter battery voltage.",
        1.0,
        False,
    ),
    "engine.runtime": (
        "genset_engine_run_seconds",
        "Engine run time as the controller counts it.",
        1.0,
        True,
    ),
    "engine.starts": ("genset_engine_starts", "Engine starts the controller counts.", 1.0, True),
    "output.power": ("genset_output_power_watts", "Real power the generator delivers.", 1.0, False),
    "output.load": (
        "genset_load_ratio",
        "Generator output as a share of its rated power.",
        0.01,
        False,
    ),
    "output.l1.voltage": ("genset_output_voltage_volts", "Generator L1-N voltage.", 1.0, False),
    "output.frequency": ("genset_output_frequency_hertz", "Generator frequency.", 1.0, False),
}
EXPORTED_INFO = frozenset({"device.mfr", "device.model", "generator.mode", "engine.state"})


def genset_families(out: Families, device: str, status: GensetStatus) -> None:
    labels = ["device"]
    out.gauge("genset_running", "1 while the engine runs.", labels).add_metric(
        [device], float(status.running)
    )
    out.gauge(
        "genset_on_load",
        "1 while the generator carries the load (breaker closed, or running with output).",
        labels,
    ).add_metric([device], float(status.on_load))
    mode = status.info.get("generator.mode")
    if mode is not None:
        out.gauge(
            "genset_auto",
            "1 while the controller is in auto, the mode in which it starts on a mains loss.",
            labels,
        ).add_metric([device], float(mode == "auto"))
    alarms = out.gauge(
        "genset_alarm",
        "1 while an alarm of that class is active: shutdown, electrical_trip, warning.",
        ["device", "alarm"],
    )
    for alarm, value in status.alarms.items():
        alarms.add_metric([device, alarm], float(value))
    for variable, value in status.values.items():
        known = GENSET_VALUES.get(variable)
        if known is not None:
            name, doc, factor, counter = known
            family = out.counter if counter else out.gauge
            family(name, doc, labels).add_metric([device], value * factor)
    info = {
        label: status.info.get(key, "")
        for key, label in (("device.mfr", "manufacturer"), ("device.model", "model"))
    }
    out.info("genset", "Identity of a generator controller.", labels).add_metric([device], info)


def genset_card(device: DeviceState) -> dict[str, Any]:
    """The status page's card of a genset (what a silent one last said is not shown)."""
    status = device.status if device.up and isinstance(device.status, GensetStatus) else None
    values = status.values if status else {}
    return {
        "card": "genset",
        "name": device.name,
        "up": device.up,
        "running": status.running if status else None,
        "on_load": status.on_load if status else None,
        "mode": status.info.get("generator.mode") if status else None,
        "engine_state": status.info.get("engine.state") if status else None,
        "alarms": sorted(a for a, on in status.alarms.items() if on) if status else [],
        "fuel_percent": values.get("fuel.level"),
        "power_watts": values.get("output.power"),
        "battery_volts": values.get("engine.battery.voltage"),
    }


class CentrePowerCollector(Collector):
    """The centre's power source and each genset's start watch (agent/checks/centre_power)."""

    def __init__(self, state: AgentState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        out = Families()
        status = self.state.power
        if status is None:  # not judged yet
            return iter(out)
        source = out.gauge(
            "centre_power_source",
            "1 for the source that powers the centre now: generator, battery, solar, grid (all "
            "0: no answering UPS, genset or inverter says).",
            ["source"],
        )
        seconds = out.counter(
            "centre_power_source_seconds",
            "Seconds the centre ran on each source while the agent could tell (monotonic clock).",
            ["source"],
        )
        for name, spent in status.seconds.items():  # every source, ranked as in SOURCES
            source.add_metric([name], float(status.source == name))
            seconds.add_metric([name], spent)
        for device, record in status.starts.items():
            out.counter(
                "genset_start_failures",
                "Mains losses the generator did not take on load within its start timeout.",
                ["device"],
            ).add_metric([device], record.start_failures)
            if record.start_delay_seconds is not None:
                out.gauge(
                    "genset_start_delay_seconds",
                    "Seconds from the last mains loss to the generator on load, as the agent "
                    "measured them.",
                    ["device"],
                ).add_metric([device], record.start_delay_seconds)
        return iter(out)
