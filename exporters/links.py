"""Families for WAN links: probe loss, latency and jitter per target, multi-WAN state and
capacity tests (exporters/capacity.py)."""

from __future__ import annotations

from prometheus_client.core import HistogramMetricFamily

from agent.checks.link_quality import RTT_BUCKETS, LinkStatus
from agent.kinds import KINDS
from agent.state import AgentState

from .capacity import capacity_families
from .families import Families, Family

_TARGET = ["link", "target"]


def link_families(state: AgentState) -> list[Family | HistogramMetricFamily]:
    """Everything about WAN links, after the families AgentCollector builds itself."""
    out = Families()
    histogram = HistogramMetricFamily(
        "erozgar_link_probe_rtt_seconds",
        "Round-trip times of answered probe packets.",
        labels=_TARGET,
    )
    for link in list(state.links.values()):
        _link(out, histogram, link)
    for name, device in list(state.devices.items()):
        router = KINDS[device.kind].router(device.status)
        if router is not None and router.wan is not None:
            wan = router.wan
            active = out.gauge(
                "wan_active",
                "1 for the wan port carrying the device's internet traffic, else 0.",
                ["device", "interface"],
            )
            for port in wan.ports:
                active.add_metric([name, port], float(port == wan.active))
            out.counter(
                "wan_failovers",
                "Times the internet traffic moved from one wan port to another.",
                ["device"],
            ).add_metric([name], wan.failovers)
    families: list[Family | HistogramMetricFamily] = list(out)
    if histogram.samples:
        families.append(histogram)
    return [*families, *capacity_families(state)]


def _link(out: Families, histogram: HistogramMetricFamily, link: LinkStatus) -> None:
    out.gauge(
        "link_up", "1 if any probe target of the link answered in the latest run.", ["link"]
    ).add_metric([link.name], float(link.up))
    out.info(
        "link", "The ISP, router and port of a WAN link (from config; empty if not set).", ["link"]
    ).add_metric(
        [link.name],
        {"isp": link.isp or "", "device": link.device or "", "interface": link.interface or ""},
    )
    out.gauge(
        "link_probe_last_run_timestamp_seconds",
        "Unix time the latest probe run of the link finished.",
        ["link"],
    ).add_metric([link.name], link.last_run)
    out.gauge(
        "link_probe_duration_seconds", "How long the latest probe run took.", ["link"]
    ).add_metric([link.name], link.duration)
    for t in link.targets:
        key = [link.name, t.name]
        out.info(
            "link_probe_target", "Address and method (icmp, tcp) of a probe target.", _TARGET
        ).add_metric(key, {"address": t.address, "method": t.method})
        out.counter(
            "link_probe_packets_sent", "Probe packets sent (echoes or connects).", _TARGET
        ).add_metric(key, t.sent_total)
        out.counter(
            "link_probe_packets_lost",
            "Probe packets without a reply within the timeout.",
            _TARGET,
        ).add_metric(key, t.lost_total)
        errors = out.counter(
            "link_probe_errors",
            "Probe runs that could not run at all, by reason (denied, config, timeout, error).",
            [*_TARGET, "reason"],
        )
        for reason, count in t.errors:
            errors.add_metric([*key, reason], count)
        if t.loss_ratio is not None:
            out.gauge(
                "link_probe_loss_ratio", "Share of packets lost in the latest run, 0..1.", _TARGET
            ).add_metric(key, t.loss_ratio)
        for stat, value in (("min", t.rtt_min), ("avg", t.rtt_avg), ("max", t.rtt_max)):
            if value is not None:
                out.gauge(
                    f"link_probe_rtt_{stat}_seconds",
                    f"The {stat} round-trip time of the latest run.",
                    _TARGET,
                ).add_metric(key, value)
        if t.jitter is not None:
            out.gauge(
                "link_probe_jitter_seconds",
                "Mean absolute difference of consecutive RTTs in the latest run (RFC 3550).",
                _TARGET,
            ).add_metric(key, t.jitter)
        if t.sent_total:
            bounds = [*(f"{b:g}" for b in RTT_BUCKETS), "+Inf"]
            histogram.add_metric(key, list(zip(bounds, t.buckets, strict=True)), t.rtt_sum)
