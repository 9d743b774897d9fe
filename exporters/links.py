"""Families for WAN links: probe loss, latency and jitter per target, DNS and HTTP probes, and
multi-WAN state."""

from __future__ import annotations

from prometheus_client.core import HistogramMetricFamily

from agent.checks.link_quality import RTT_BUCKETS, DnsStatus, HttpStatus, LinkStatus
from agent.kinds import KINDS
from agent.state import AgentState

from .capacity import capacity_families
from .families import Families, Family

_TARGET = ["link", "target"]
_RESOLVER = ["link", "resolver", "type"]


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
    for d in link.dns:
        _dns(out, link.name, d)
    for h in link.http:
        _http(out, link.name, h)


def _dns(out: Families, link: str, status: DnsStatus) -> None:
    r = status.reading
    key = [link, r.resolver, r.qtype]
    out.info(
        "link_dns_resolver", "Address of a resolver a link's DNS probe asks.", ["link", "resolver"]
    ).add_metric([link, r.resolver], {"address": r.address})
    out.gauge(
        "link_dns_up", "1 if the resolver answered NOERROR in the latest run.", _RESOLVER
    ).add_metric(key, float(r.ok))
    out.counter("link_dns_queries", "DNS probe queries asked.", _RESOLVER).add_metric(
        key, status.queries_total
    )
    out.counter(
        "link_dns_failures",
        "DNS probe queries without an answer, or answered with an rcode other than NOERROR.",
        _RESOLVER,
    ).add_metric(key, status.failures_total)
    if r.seconds is not None and r.rcode is not None:
        out.gauge(
            "link_dns_duration_seconds",
            "Time to the resolver's answer in the latest run (a TCP retry included).",
            _RESOLVER,
        ).add_metric(key, r.seconds)
        out.gauge(
            "link_dns_rcode",
            "The rcode of the latest answer (0 NOERROR, 2 SERVFAIL, ...).",
            _RESOLVER,
        ).add_metric(key, r.rcode)
        out.gauge(
            "link_dns_answer_records",
            "Records of the asked type in the latest answer.",
            _RESOLVER,
        ).add_metric(key, len(r.addresses))


def _http(out: Families, link: str, status: HttpStatus) -> None:
    r = status.reading
    key = [link, r.target]
    out.info("link_http_target", "URL an HTTP probe of a link GETs.", _TARGET).add_metric(
        key, {"url": r.url}
    )
    out.gauge(
        "link_http_up",
        "1 if the URL answered with a status below 400 in the latest run.",
        _TARGET,
    ).add_metric(key, float(r.ok))
    out.counter("link_http_requests", "HTTP probe requests made.", _TARGET).add_metric(
        key, status.requests_total
    )
    out.counter(
        "link_http_failures",
        "HTTP probe requests without an answer, or answered with a status of 400 or more.",
        _TARGET,
    ).add_metric(key, status.failures_total)
    if r.status is None:
        return
    out.gauge(
        "link_http_status_code",
        "HTTP status of the latest answer (a redirect is not followed).",
        _TARGET,
    ).add_metric(key, r.status)
    phases = out.gauge(
        "link_http_duration_seconds",
        "Seconds of each phase of the latest request (resolve, connect, tls, processing, "
        "transfer); the first byte came after all but transfer.",
        [*_TARGET, "phase"],
    )
    for phase, seconds in r.phases:
        phases.add_metric([*key, phase], seconds)
    if r.tls_expiry is not None:
        out.gauge(
            "link_http_tls_expiry_timestamp_seconds",
            "Unix time the server's TLS certificate expires.",
            _TARGET,
        ).add_metric(key, r.tls_expiry)
