"""Families for UPS units, in base units, from the NUT vocabulary the collectors speak."""

from __future__ import annotations

from agent.power import UpsStatus

from .families import Families

# NUT variable -> (metric name without prefix, help, factor to base units).
UPS_VALUES: dict[str, tuple[str, str, float]] = {
    "battery.charge": ("ups_battery_charge_ratio", "Battery charge, 0 to 1.", 0.01),
    "battery.runtime": (
        "ups_battery_runtime_seconds",
        "Runtime the UPS predicts on battery at the present load.",
        1.0,
    ),
    "battery.voltage": ("ups_battery_voltage_volts", "Battery voltage (DC).", 1.0),
    "battery.temperature": ("ups_battery_temperature_celsius", "Battery temperature.", 1.0),
    "ups.load": ("ups_load_ratio", "Output load as a share of the UPS's rated power.", 0.01),
    "input.voltage": ("ups_input_voltage_volts", "Mains input voltage; 0 during a cut.", 1.0),
    "output.voltage": ("ups_output_voltage_volts", "Output voltage.", 1.0),
    "output.frequency": ("ups_output_frequency_hertz", "Output frequency.", 1.0),
    "output.current": ("ups_output_current_amperes", "Output current.", 1.0),
    "ups.realpower.nominal": ("ups_power_nominal_watts", "Rated real power of the UPS.", 1.0),
    "ups.power.nominal": (
        "ups_apparent_power_nominal_volt_amperes",
        "Rated apparent power of the UPS.",
        1.0,
    ),
}
_UPS_INFO = {
    "device.mfr": "manufacturer",
    "device.model": "model",
    "device.serial": "serial",
    "ups.firmware": "firmware",
    "battery.date": "battery_date",
}


def ups_families(out: Families, device: str, status: UpsStatus) -> None:
    out.gauge(
        "ups_on_battery", "1 while the UPS runs on battery (mains lost).", ["device"]
    ).add_metric([device], float(status.on_battery))
    out.gauge("ups_low_battery", "1 when the UPS signals low battery.", ["device"]).add_metric(
        [device], float(status.low_battery)
    )
    out.gauge(
        "ups_battery_replace_needed", "1 when the UPS asks for a battery replacement.", ["device"]
    ).add_metric([device], float(status.replace_battery))
    flags = out.gauge(
        "ups_status",
        "NUT status flags (OL, OB, LB, RB, CHRG, ...), 1 when set.",
        ["device", "flag"],
    )
    for flag, value in status.flags.items():
        flags.add_metric([device, flag], value)
    for variable, value in status.values.items():
        known = UPS_VALUES.get(variable)
        if known is not None:
            name, doc, factor = known
            out.gauge(name, doc, ["device"]).add_metric([device], value * factor)
    info = {label: status.info[key] for key, label in _UPS_INFO.items() if key in status.info}
    if info:
        out.info("ups", "Identity of a UPS.", ["device"]).add_metric(
            [device], {label: info.get(label, "") for label in _UPS_INFO.values()}
        )
