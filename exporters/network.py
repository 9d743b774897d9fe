"""Families for routers and switches: identity, SNMP wire cost, and one set per port."""

from __future__ import annotations

from agent.bandwidth import InterfaceStatus
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
            "sys_descr": status.sys_descr[:200],
            "sys_object_id": status.sys_object_id,
        },
    )
    out.gauge(
        "device_uptime_seconds", "Time since the device's SNMP agent started" + POLLED, ["device"]
    ).add_metric([device], status.uptime_seconds)
    out.gauge(
        "snmp_poll_requests", "SNMP request PDUs sent in the latest poll.", ["device"]
    ).add_metric([device], status.requests)
    out.gauge(
        "snmp_poll_varbinds", "Variable bindings received in the latest poll.", ["device"]
    ).add_metric([device], status.varbinds)
    for interface in status.interfaces:
        interface_families(out, device, interface)


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
