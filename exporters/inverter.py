"""Families for solar hybrid inverters, in base units, from their judged status
(agent/checks/inverter.py)."""

from __future__ import annotations

from agent.checks.inverter import BATTERY_STATES, LOAD_SOURCES, InverterStatus

from .families import Families

_JOULES_PER_KWH = 3.6e6

# InverterReading attribute -> (metric name without prefix, help, factor to base units)
_VALUES: dict[str, tuple[str, str, float]] = {
    "pv_watts": ("inverter_pv_power_watts", "Power all PV strings deliver.", 1.0),
    "battery_charge": ("inverter_battery_charge_ratio", "Battery charge, 0 to 1.", 0.01),
    "battery_volts": ("inverter_battery_voltage_volts", "Battery voltage (DC).", 1.0),
    "battery_amperes": (
        "inverter_battery_current_amperes",
        "Battery current: positive while discharging, negative while charging.",
        1.0,
    ),
    "battery_watts": (
        "inverter_battery_power_watts",
        "Battery power: positive while discharging, negative while charging.",
        1.0,
    ),
    "battery_celsius": ("inverter_battery_temperature_celsius", "Battery temperature.", 1.0),
    "grid_watts": (
        "inverter_grid_power_watts",
        "Grid power: positive while importing, negative while exporting.",
        1.0,
    ),
    "grid_volts": ("inverter_grid_voltage_volts", "Grid voltage at the inverter; 0 in a cut.", 1.0),
    "load_watts": ("inverter_load_power_watts", "Power the load draws from the inverter.", 1.0),
}


def inverter_families(out: Families, device: str, status: InverterStatus) -> None:
    reading = status.reading
    sources = out.gauge(
        "inverter_load_source",
        "Which source feeds the load, 1 for the current one: grid, battery, solar, unknown.",
        ["device", "source"],
    )
    for source in LOAD_SOURCES:
        sources.add_metric([device, source], float(source == status.load_source))
    if status.grid_present is not None:
        out.gauge(
            "inverter_grid_present", "1 while the inverter sees the grid, else 0.", ["device"]
        ).add_metric([device], float(status.grid_present))
    if status.battery_state is not None:
        states = out.gauge(
            "inverter_battery_state",
            "What the battery does, 1 for the current state: charging, discharging, idle.",
            ["device", "state"],
        )
        for state in BATTERY_STATES:
            states.add_metric([device, state], float(state == status.battery_state))
    for attribute, (name, doc, factor) in _VALUES.items():
        value = getattr(reading, attribute)
        if value is not None:
            out.gauge(name, doc, ["device"]).add_metric([device], value * factor)
    if reading.pv_string_watts:
        strings = out.gauge(
            "inverter_pv_string_power_watts", "Power one PV string delivers.", ["device", "string"]
        )
        for string, watts in sorted(reading.pv_string_watts.items()):
            strings.add_metric([device, string], watts)
    if reading.pv_string_kwh:
        energy = out.counter(
            "inverter_pv_energy_joules",
            "Energy one PV string has delivered, as the inverter counts it.",
            ["device", "string"],
        )
        for string, kwh in sorted(reading.pv_string_kwh.items()):
            energy.add_metric([device, string], kwh * _JOULES_PER_KWH)
    if "device.mfr" in reading.info:
        out.info("inverter", "Identity of an inverter.", ["device"]).add_metric(
            [device], {"manufacturer": reading.info["device.mfr"]}
        )
