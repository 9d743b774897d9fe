"""Families for routers and switches: identity, health, SNMP wire cost, and one set per port."""

from __future__ import annotations

from agent.checks.access import AccessSummary
from agent.checks.bandwidth import InterfaceStatus
from agent.state import RouterStatus

from .families import POLLED, Families


def router_families(out: Families, device: str, status: RouterStatus) -> None:
    out.info(
        "device",
        "Identity of an SNMP device.",
        ["device"],
    ).add_metric(
        [device],
        {
            "sys_name": status.sys_name,
            # one line: Cisco's sysDescr carries CR LF, which the text format does not escape
            "sys_descr": " ".join(status.sys_descr.split())[:200],
            "sys_object_id": status.sys_object_id,
            "profile": status.profile,
        },
    )
    health_families(out, device, status)
    out.gauge(
        "device_uptime_seconds", "Time since the device's SNMP agent started" + POLLED, ["device"]
    ).add_metric([device], status.uptime_seconds)
    out.gauge(
        "snmp_poll_requests", "SNMP request PDUs sent in the latest poll.", ["device"]
    ).add_metric([device], status.requests)
    out.gauge(
        "snmp_poll_varbinds", "Variable bindings received in the latest poll.", ["device"]
    ).add_metric([device], status.varbinds)
    out.gauge(
        "snmp_poll_retries",
        "SNMP datagrams sent again after a timeout (and SNMPv3 discovery resends), latest poll.",
        ["device"],
    ).add_metric([device], status.retries)
    rejections = out.counter(
        "interface_rejected_deltas_total",
        "Counter deltas not taken as read, by reason: refused instead of inventing traffic "
        "(above_ceiling, counter_reset, wrap_ambiguous, restart_implausible), or counted from "
        "a port's restart (port_discontinuity, port_reappeared).",
        ["device", "reason"],
    )
    for reason, count in status.counter_rejections:
        rejections.add_metric([device, reason], count)
    for interface in status.interfaces:
        interface_families(out, device, interface)
    if status.access is not None:
        access_families(out, device, status.access)


def access_families(out: Families, device: str, summary: AccessSummary) -> None:
    """The device's physical access ports summed up (agent/checks/access.py): what is shipped
    centrally instead of their per-port series."""
    out.gauge(
        "access_ports", "Physical access ports the device has" + POLLED, ["device"]
    ).add_metric([device], summary.ports)
    out.gauge(
        "access_ports_up",
        "Access ports operationally up: workstations (or other hosts) connected" + POLLED,
        ["device"],
    ).add_metric([device], summary.ports_up)
    for direction, done in (("receive", "received"), ("transmit", "transmitted")):
        out.counter(
            f"access_{direction}_bytes_total",
            f"Bytes {done} by all access ports: the sum of each port's accepted deltas.",
            ["device"],
        ).add_metric([device], summary.totals[f"{direction}_bytes"])
    for what, doc in (("errors", "with errors"), ("discards", "discarded")):
        family = out.counter(
            f"access_{what}_total",
            f"Packets {doc} on all access ports: the sum of each port's deltas.",
            ["device", "direction"],
        )
        for direction in ("receive", "transmit"):
            family.add_metric([device, direction], summary.totals[f"{direction}_{what}"])
    for port in summary.busiest:
        out.gauge(
            "access_busiest_port_bytes_per_second",
            "Receive plus transmit rate of the device's busiest access ports (at most 3).",
            ["device", "interface"],
        ).add_metric([device, port.name], port.bytes_per_second)


# metric -> (family name, help, label name for per-part rows)
_HEALTH = {
    "cpu_ratio": ("device_cpu_ratio", "Device CPU load, 0..1, as its profile reads it.", ""),
    "memory_used_bytes": ("device_memory_used_bytes", "Device memory in use.", ""),
    "memory_total_bytes": ("device_memory_total_bytes", "Device memory.", ""),
    "memory_used_ratio": ("device_memory_used_ratio", "Device memory in use, 0..1.", ""),
    "temperature_celsius": ("device_temperature_celsius", "Device sensor temperature.", "sensor"),
    "psu_ok": ("device_psu_ok", "1 if the power supply reports a normal state.", "psu"),
    "fan_ok": ("device_fan_ok", "1 if the fan reports a normal state.", "fan"),
}


def health_families(out: Families, device: str, status: RouterStatus) -> None:
    """Health values the device profile read (collectors/profiles/snmp/)."""
    seen: set[tuple[str, str]] = set()
    for sample in status.health:
        name, doc, label = _HEALTH[sample.metric]
        if (name, sample.label) in seen:  # two sensors of one name: the first one wins
            continue
        seen.add((name, sample.label))
        labels = ["device", label] if label else ["device"]
        values = [device, sample.label] if label else [device]
        out.gauge(name, doc + POLLED, labels).add_metric(values, sample.value)


def interface_families(out: Families, device: str, i: InterfaceStatus) -> None:
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
    for direction, total, rate, capacity, saturated in (
        ("receive", i.receive_bytes_total, i.receive_bps, i.receive_capacity_bps,
         i.receive_saturated_seconds),
        ("transmit", i.transmit_bytes_total, i.transmit_bps, i.transmit_capacity_bps,
         i.transmit_saturated_seconds),
    ):  # fmt: skip
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
                "Contracted rate from the config, else the speed of a physical port.",
                [*labels, "direction"],
            ).add_metric([*key, direction], capacity / 8)
        out.counter(
            "interface_saturated_seconds_total",
            "Seconds the port ran at or above its saturation_threshold of capacity.",
            [*labels, "direction"],
        ).add_metric([*key, direction], saturated)
        utilization = i.utilization(direction)
        if utilization is not None:
            out.gauge(
                "interface_utilization_ratio",
                "Rate as a share of the contracted rate (or physical port speed).",
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
    for metric, what, values in (
        ("interface_error_ratio", "with errors", (i.in_error_ratio, i.out_error_ratio)),
        ("interface_discard_ratio", "discarded", (i.in_discard_ratio, i.out_discard_ratio)),
    ):
        family = out.gauge(
            metric,
            f"Share of packets {what} between the latest two polls, 0..1.",
            [*labels, "direction"],
        )
        for direction, value in zip(("receive", "transmit"), values, strict=True):
            if value is not None:
                family.add_metric([*key, direction], value)
