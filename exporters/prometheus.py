"""Prometheus exposition of the agent's latest state, built fresh on every scrape.

Nothing here talks to a device: a scrape reads the snapshots the pollers left, so it is fast and
never fails because one device is down (that device's `erozgar_device_up` is 0 instead).
Rates are exported in bytes per second, Prometheus's base unit (promtool rejects "bits");
dashboards multiply by 8. Values are polled on a timer, so no sample carries a timestamp;
staleness shows in `erozgar_device_last_success_timestamp_seconds`.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from agent.bandwidth import InterfaceStatus
from agent.power import UpsStatus
from agent.state import AgentState, DeviceState, RouterStatus

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
_POLLED = " (latest poll)"


def build_registry(state: AgentState) -> CollectorRegistry:
    """A dedicated registry: our collector plus the agent process's own metrics."""
    registry = CollectorRegistry()
    registry.register(AgentCollector(state))
    ProcessCollector(namespace="erozgar", registry=registry)
    return registry


class _Families:
    """Creates each family once per scrape, on first use, and yields them in order."""

    def __init__(self) -> None:
        self._by_name: dict[str, GaugeMetricFamily | CounterMetricFamily | InfoMetricFamily] = {}

    def gauge(self, name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
        family = self._by_name.get(name)
        if family is None:
            family = self._by_name[name] = GaugeMetricFamily(f"erozgar_{name}", doc, labels=labels)
        assert isinstance(family, GaugeMetricFamily)
        return family

    def counter(self, name: str, doc: str, labels: list[str]) -> CounterMetricFamily:
        family = self._by_name.get(name)
        if family is None:
            family = self._by_name[name] = CounterMetricFamily(
                f"erozgar_{name}", doc, labels=labels
            )
        assert isinstance(family, CounterMetricFamily)
        return family

    def info(self, name: str, doc: str, labels: list[str]) -> InfoMetricFamily:
        family = self._by_name.get(name)
        if family is None:
            family = self._by_name[name] = InfoMetricFamily(f"erozgar_{name}", doc, labels=labels)
        assert isinstance(family, InfoMetricFamily)
        return family

    def __iter__(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily | InfoMetricFamily]:
        return iter(self._by_name.values())


class AgentCollector(Collector):
    """Presents AgentState. Example output:

    erozgar_device_up{device="core-router",kind="snmp"} 1.0
    erozgar_interface_receive_bytes_per_second{device="core-router",interface="ether1"} 7.7e6
    erozgar_ups_on_battery{device="ups-rack"} 0.0
    """

    def __init__(self, state: AgentState) -> None:
        self.state = state

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily | InfoMetricFamily]:
        out = _Families()
        state = self.state
        out.info("agent", "The agent's version and site.", []).add_metric(
            [], {"version": state.version, "site": state.site_id, "site_name": state.site_name}
        )
        for device in list(state.devices.values()):
            _device_health(out, device)
            if isinstance(device.status, RouterStatus):
                _router(out, device.name, device.status)
            elif isinstance(device.status, UpsStatus) and device.up:
                _ups(out, device.name, device.status)
        if state.host is not None:
            _host(out, state)
        return iter(out)


def _device_health(out: _Families, device: DeviceState) -> None:
    name = device.name
    out.gauge(
        "device_up", "1 if the latest poll of the device succeeded, else 0.", ["device", "kind"]
    ).add_metric([name, device.kind], 1.0 if device.up else 0.0)
    if device.up is False:
        out.gauge(
            "device_down_reason",
            "1 for the reason the latest poll failed (timeout, refused, auth, exception_N, ...).",
            ["device", "reason"],
        ).add_metric([name, device.reason], 1.0)
    if device.poll_duration is not None:
        out.gauge(
            "device_poll_duration_seconds", "How long the latest poll took.", ["device"]
        ).add_metric([name], device.poll_duration)
    if device.last_success is not None:
        out.gauge(
            "device_last_success_timestamp_seconds",
            "Unix time of the latest successful poll.",
            ["device"],
        ).add_metric([name], device.last_success)
    errors = out.counter(
        "device_poll_errors_total", "Failed polls, by reason.", ["device", "reason"]
    )
    for reason, count in sorted(device.errors.items()):
        errors.add_metric([name, reason], count)
    invalid = out.counter(
        "device_invalid_samples_total",
        "Values dropped as 'not available' or implausible, by field.",
        ["device", "field"],
    )
    for field, count in sorted(device.invalid_samples.items()):
        invalid.add_metric([name, field], count)


def _router(out: _Families, device: str, status: RouterStatus) -> None:
    out.info(
        "device",
        "Identity of an SNMP device.",
        ["device"],
    ).add_metric(
        [device],
        {
            "sys_name": status.sys_name,
            "sys_descr": status.sys_descr[:200],
            "sys_object_id": status.sys_object_id,
        },
    )
    out.gauge(
        "device_uptime_seconds", "Time since the device's SNMP agent started" + _POLLED, ["device"]
    ).add_metric([device], status.uptime_seconds)
    out.gauge(
        "snmp_poll_requests", "SNMP request PDUs sent in the latest poll.", ["device"]
    ).add_metric([device], status.requests)
    out.gauge(
        "snmp_poll_varbinds", "Variable bindings received in the latest poll.", ["device"]
    ).add_metric([device], status.varbinds)
    for interface in status.interfaces:
        _interface(out, device, interface)


def _interface(out: _Families, device: str, i: InterfaceStatus) -> None:
    labels = ["device", "interface", "role"]
    key = [device, i.name, i.role]
    if i.oper_up is not None:
        out.gauge("interface_oper_up", "1 if the port is operationally up.", labels).add_metric(
            key, float(i.oper_up)
        )
    if i.admin_up is not None:
        out.gauge("interface_admin_up", "1 if the port is enabled.", labels).add_metric(
            key, float(i.admin_up)
        )
    if i.speed_bps:
        out.gauge(
            "interface_speed_bytes_per_second", "Port speed the device reports.", labels
        ).add_metric(key, i.speed_bps / 8)
    for direction, total, rate, capacity in (
        ("receive", i.receive_bytes_total, i.receive_bps, i.receive_capacity_bps),
        ("transmit", i.transmit_bytes_total, i.transmit_bps, i.transmit_capacity_bps),
    ):
        if total is not None:
            out.counter(
                f"interface_{direction}_bytes_total",
                f"Bytes {direction}d, corrected for counter wraps and device restarts.",
                labels,
            ).add_metric(key, total)
        if rate is not None:
            out.gauge(
                f"interface_{direction}_bytes_per_second",
                f"Mean {direction} rate between the latest two polls.",
                labels,
            ).add_metric(key, rate / 8)
        if capacity:
            out.gauge(
                "interface_capacity_bytes_per_second",
                "Contracted rate from the config, else the port speed.",
                [*labels, "direction"],
            ).add_metric([*key, direction], capacity / 8)
        utilization = i.utilization(direction)
        if utilization is not None:
            out.gauge(
                "interface_utilization_ratio",
                "Rate as a share of the contracted rate (or port speed).",
                [*labels, "direction"],
            ).add_metric([*key, direction], utilization)
    for metric, values in (
        ("interface_errors_total", (i.in_errors, i.out_errors)),
        ("interface_discards_total", (i.in_discards, i.out_discards)),
    ):
        what = metric.split("_")[1]
        family = out.counter(
            metric, f"Packets {what} as the device counts them.", [*labels, "direction"]
        )
        for direction, value in zip(("receive", "transmit"), values, strict=True):
            if value is not None:
                family.add_metric([*key, direction], value)


def _ups(out: _Families, device: str, status: UpsStatus) -> None:
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


def _host(out: _Families, state: AgentState) -> None:
    host = state.host
    assert host is not None
    cpu = out.counter("host_cpu_seconds_total", "CPU time of the agent's box, by mode.", ["mode"])
    for mode, seconds in sorted(host.cpu_seconds.items()):
        cpu.add_metric([mode], seconds)
    out.gauge("host_cpus", "Logical CPUs of the agent's box.", []).add_metric([], host.cpu_count)
    out.gauge("host_load1", "One-minute load average of the agent's box.", []).add_metric(
        [], host.load1
    )
    out.gauge("host_memory_total_bytes", "Memory of the agent's box.", []).add_metric(
        [], host.memory_total_bytes
    )
    out.gauge(
        "host_memory_available_bytes", "Memory available for new work on the agent's box.", []
    ).add_metric([], host.memory_available_bytes)
    out.gauge("host_boot_time_seconds", "Unix time the agent's box booted.", []).add_metric(
        [], host.boot_time_seconds
    )
    size = out.gauge("host_filesystem_size_bytes", "Filesystem size.", ["mountpoint"])
    free = out.gauge("host_filesystem_available_bytes", "Filesystem space free.", ["mountpoint"])
    for path, (total, available) in sorted(host.filesystems.items()):
        size.add_metric([path], total)
        free.add_metric([path], available)
    rx = out.counter("host_network_receive_bytes_total", "Bytes received by a NIC.", ["interface"])
    tx = out.counter("host_network_transmit_bytes_total", "Bytes sent by a NIC.", ["interface"])
    for nic, (received, sent) in sorted(host.network.items()):
        rx.add_metric([nic], received)
        tx.add_metric([nic], sent)
