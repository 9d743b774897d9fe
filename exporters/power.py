"""Families for UPS units, in base units, from the NUT vocabulary the collectors speak."""

from __future__ import annotations

from agent.checks.battery import SELFTEST_RESULTS, BatteryReport
from agent.checks.power import POWER_STATES, UpsStatus

from .families import Families

# NUT variable -> (metric name without prefix, help, factor to base units). A value a profile
# decodes is either here or in that profile's `not_exported` list with the reason
# (tests/unit/test_ups_profile_exports.py holds every packaged profile to that).
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
    "input.frequency": ("ups_input_frequency_hertz", "Mains input frequency.", 1.0),
    "battery.current": (
        "ups_battery_current_amperes",
        "Battery current as the device reports it (UPS-MIB: negative while charging).",
        1.0,
    ),
    "battery.power": (
        "ups_battery_power_watts",
        "Battery DC power as the battery reports it (SunSpec 802).",
        1.0,
    ),
    "battery.voltage.nominal": (
        "ups_battery_voltage_nominal_volts",
        "Nominal battery string voltage.",
        1.0,
    ),
    "battery.health": (
        "ups_battery_reported_health_ratio",
        "State of health the battery's own management system reports, 0 to 1.",
        0.01,
    ),
    "battery.cycles": (
        "ups_battery_reported_cycles",
        "Charge cycles the battery's own management system has counted.",
        1.0,
    ),
    "ups.realpower": ("ups_output_power_watts", "Real power the load draws.", 1.0),
    "ups.efficiency": (
        "ups_efficiency_ratio",
        "Output power over input power, 0 to 1 (absent on battery).",
        0.01,
    ),
    "ups.temperature": ("ups_temperature_celsius", "UPS (inverter) internal temperature.", 1.0),
    "ambient.temperature": (
        "ups_ambient_temperature_celsius",
        "Temperature of the room, from the UPS's sensor.",
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
# Text a profile may decode that is exported: identity labels, and the self-test result
# (erozgar_ups_selftest_result, from agent/checks/battery.py).
EXPORTED_INFO = frozenset({*_UPS_INFO, "ups.test.result"})


def ups_families(out: Families, device: str, status: UpsStatus) -> None:
    out.gauge(
        "ups_on_battery",
        "1 while mains is lost and the UPS runs on battery; a self-test or calibration is not.",
        ["device"],
    ).add_metric([device], float(status.on_battery))
    states = out.gauge(
        "ups_power_state",
        "What the UPS is doing, 1 for the current state: online, on_battery (mains lost), "
        "self_test, calibration, bypass, off, unknown.",
        ["device", "state"],
    )
    for state in POWER_STATES:
        states.add_metric([device, state], float(state == status.state))
    out.gauge("ups_low_battery", "1 when the UPS signals low battery.", ["device"]).add_metric(
        [device], float(status.low_battery)
    )
    out.gauge(
        "ups_battery_replace_needed", "1 when the UPS asks for a battery replacement.", ["device"]
    ).add_metric([device], float(status.replace_battery))
    flags = out.gauge(
        "ups_status",
        "NUT status flags (OL, OB, LB, RB, CHRG, TEST, CAL, ...), 1 when set.",
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
    """Outage ledger and battery health (agent/checks/battery.py); kept while the UPS is
    unreachable."""
    labels = ["device"]
    out.counter(
        "ups_outages_total",
        "Mains cuts: times the UPS went on battery because mains was lost (self-tests and "
        "calibrations are not).",
        labels,
    ).add_metric([device], report.outages)
    out.histogram(
        "ups_outage_duration_seconds", "Duration of finished outages (on-battery spells).", labels
    ).add_metric(
        [device],
        [(_le(bound), float(count)) for bound, count in report.histogram],
        report.duration_sum,
    )
    out.counter(
        "ups_on_battery_seconds_total",
        "Seconds the UPS has run on battery in mains cuts (monotonic clock).",
        labels,
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
            "ups_outage_expected_remaining_seconds",
            "Cut still expected: the p90 cut minus the time this cut has lasted, at least 0.",
            report.expected_cut_left_seconds,
        ),
        (
            "ups_runtime_margin_seconds",
            "Predicted runtime minus the cut still expected minus the configured shutdown "
            "margin; negative: the battery would not last the rest of a typical cut and a "
            "clean shutdown.",
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
