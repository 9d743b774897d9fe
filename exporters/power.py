"""Families for UPS units, in base units, from the NUT vocabulary the collectors speak."""

from __future__ import annotations

from agent.battery import SELFTEST_RESULTS, BatteryReport
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


def battery_families(out: Families, device: str, report: BatteryReport) -> None:
    """Outage ledger and battery health (agent/battery.py); kept while the UPS is unreachable."""
    labels = ["device"]
    out.counter(
        "ups_outages_total", "Times the UPS went on battery (self-tests excluded).", labels
    ).add_metric([device], report.outages)
    out.histogram(
        "ups_outage_duration_seconds", "Duration of finished outages (on-battery spells).", labels
    ).add_metric(
        [device],
        [(_le(bound), float(count)) for bound, count in report.histogram],
        report.duration_sum,
    )
    out.counter(
        "ups_on_battery_seconds_total", "Seconds the UPS has run on battery.", labels
    ).add_metric([device], report.on_battery_seconds)
    out.counter(
        "ups_outage_before_recharged_total",
        "Outages that began before the battery had recharged from the previous one.",
        labels,
    ).add_metric([device], report.outages_before_recharged)
    optional: tuple[tuple[str, str, float | None], ...] = (
        (
            "ups_last_outage_duration_seconds",
            "Duration of the latest finished outage.",
            report.last_outage_seconds,
        ),
        (
            "ups_last_outage_depth_of_discharge_ratio",
            "Charge used in the latest finished outage, 0 to 1.",
            report.last_depth_of_discharge,
        ),
        (
            "ups_outage_duration_p90_seconds",
            "90th percentile of the latest 200 outage durations: the site's typical long cut.",
            report.typical_outage_seconds,
        ),
        (
            "ups_battery_predicted_runtime_seconds",
            "Runtime left at the present load and charge, allowing for battery health.",
            report.predicted_runtime_seconds,
        ),
        (
            "ups_runtime_margin_seconds",
            "Predicted runtime minus the typical (p90) cut; negative: it would not last one.",
            report.runtime_margin_seconds,
        ),
        (
            "ups_battery_health_ratio",
            "Estimated battery state of health, 0 to 1 of rated capacity.",
            report.health,
        ),
        (
            "ups_battery_capacity_ratio",
            "Runtime measured in discharges against the nameplate runtime at that load.",
            report.capacity_ratio,
        ),
        (
            "ups_battery_life_used_ratio",
            "Design life used by age at the temperatures seen, plus cycles (1 = used up).",
            report.life_used_ratio,
        ),
        (
            "ups_battery_resistance_ohms",
            "Battery string resistance from the voltage step when mains is lost.",
            report.resistance_ohms,
        ),
        (
            "ups_battery_resistance_rise_ratio",
            "Recent battery resistance over its first measurements; 1.2 means replace soon.",
            report.resistance_rise_ratio,
        ),
        (
            "ups_last_recharge_duration_seconds",
            "Time from the end of the latest outage to 99 % charge.",
            report.last_recharge_seconds,
        ),
        (
            "ups_selftest_age_seconds",
            "Seconds since the agent first saw the UPS's latest self-test result.",
            report.selftest_age_seconds,
        ),
    )
    for name, doc, value in optional:
        if value is not None:
            out.gauge(name, doc, labels).add_metric([device], value)
    out.gauge(
        "ups_battery_health_discharges",
        "Discharges the battery health estimate rests on (0: age and heat only).",
        labels,
    ).add_metric([device], report.health_discharges)
    if report.selftest_result is not None:
        results = out.gauge(
            "ups_selftest_result",
            "Latest battery self-test result, 1 for the current one.",
            ["device", "result"],
        )
        for result in SELFTEST_RESULTS:
            results.add_metric([device, result], float(result == report.selftest_result))
    if report.state_errors:
        errors = out.counter(
            "agent_state_errors_total",
            "State file problems: corrupt (set aside), read, write.",
            ["device", "error"],
        )
        for error, count in sorted(report.state_errors.items()):
            errors.add_metric([device, error], count)


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else f"{bound:g}"
