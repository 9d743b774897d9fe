"""ISP link quality: probe runs in, loss, latency, jitter and an up/down verdict per WAN link out.

Each probe run (collectors/probe.py) sends a few packets to every target of a link at once.
This check keeps what must outlive a run: cumulative packets sent and lost and the RTT
histogram per target, and the latest run's loss ratio, min/avg/max RTT and jitter. A link is
up when any of its targets answered in the latest run: one public resolver dropping ping does
not make the ISP "down", the gateway and every resolver going silent does.

Alongside, the same run asks each configured resolver for the link's DNS name (collectors/dns.py)
and GETs each configured URL (collectors/http_probe.py); this check counts queries, requests
and failures. They do not make the link up or down: a resolver or a web server failing is
not the line failing, and the outage ledger must not blame the ISP for it.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import Literal

from collectors.dns import DnsReading, QType, Resolver, query
from collectors.http_probe import HttpReading, HttpTarget, fetch_url
from collectors.probe import ProbeReading, ProbeTarget, probe
from collectors.readings import PollError

from ..config import DnsProbeSettings, HttpProbeSettings, LinkSettings

log = logging.getLogger(__name__)

# Upper bounds in seconds: a LAN gateway answers in ~1 ms, fibre to a national resolver in
# 5-30 ms, a loaded DSL or 4G link in 50-300 ms, a saturated one in seconds.
RTT_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075,
    0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0,
)  # fmt: skip


def jitter(rtts: list[float]) -> float | None:
    """Mean absolute difference of consecutive RTTs (RFC 3550's D), over the replies received."""
    if len(rtts) < 2:
        return None
    return sum(abs(b - a) for a, b in itertools.pairwise(rtts)) / (len(rtts) - 1)


@dataclass(frozen=True, slots=True)
class TargetStatus:
    """One target of a link: the latest run and the running totals, ready to export."""

    name: str
    address: str
    method: str  # icmp | tcp
    sent: int  # latest run
    received: int
    rtt_min: float | None
    rtt_avg: float | None
    rtt_max: float | None
    jitter: float | None
    sent_total: int
    lost_total: int
    buckets: tuple[int, ...]  # cumulative count per RTT_BUCKETS bound, then +Inf
    rtt_sum: float
    error_reason: str  # "" when the latest run ran, else why it could not (denied, config, ...)
    message: str  # the error, or a note such as "network is unreachable"
    errors: tuple[tuple[str, int], ...]  # (reason, runs that could not run), sorted

    @property
    def loss_ratio(self) -> float | None:
        return None if not self.sent else 1 - self.received / self.sent


@dataclass(frozen=True, slots=True)
class DnsStatus:
    """One resolver and query type: the latest answer and the running totals."""

    reading: DnsReading
    queries_total: int
    failures_total: int  # no answer, or an rcode other than NOERROR


@dataclass(frozen=True, slots=True)
class HttpStatus:
    reading: HttpReading
    requests_total: int
    failures_total: int  # no answer, or a status of 400 or more


@dataclass(frozen=True, slots=True)
class LinkStatus:
    name: str
    isp: str | None
    device: str | None
    interface: str | None
    up: bool
    targets: tuple[TargetStatus, ...]
    last_run: float  # unix time the latest run finished
    duration: float  # seconds the latest run took
    dns: tuple[DnsStatus, ...] = ()
    http: tuple[HttpStatus, ...] = ()


@dataclass(frozen=True, slots=True)
class LinkRun:
    """Everything one run of a link's probes saw."""

    probes: dict[str, ProbeReading | PollError]
    dns: tuple[DnsReading, ...] = ()
    http: tuple[HttpReading, ...] = ()


@dataclass
class _Totals:
    sent: int = 0
    lost: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(RTT_BUCKETS) + 1))
    rtt_sum: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)


class LinkQualityCheck:
    """Per link: folds each run's readings into totals and judges the link up or down."""

    def __init__(self, link: LinkSettings) -> None:
        self.link = link
        self._totals = {t.name: _Totals() for t in link.targets}
        self._up: bool | None = None
        self._dns_up: bool | None = None
        self._counts: dict[tuple[str, ...], tuple[int, int]] = {}  # (runs, failures) per key

    def update(self, run: LinkRun, finished: float, duration: float) -> LinkStatus:
        results = run.probes
        targets = tuple(
            self._target(t.name, t.address, t.tcp_port, results.get(t.name))
            for t in self.link.targets
        )
        up = any(t.received for t in targets)
        if self._up is not None and up != self._up:
            if up:
                log.info("link %s: answering again", self.link.name)
            else:
                silent = ", ".join(f"{t.name} {t.address}" for t in targets)
                log.warning("link %s: down: no answer from %s", self.link.name, silent)
        self._up = up
        dns = tuple(DnsStatus(r, *self._count(("dns", r.resolver, r.qtype), r.ok)) for r in run.dns)
        http = tuple(HttpStatus(r, *self._count(("http", r.target), r.ok)) for r in run.http)
        self._judge_dns(dns)
        link = self.link
        return LinkStatus(
            link.name,
            link.isp,
            link.device,
            link.interface,
            up,
            targets,
            finished,
            duration,
            dns,
            http,
        )

    def _count(self, key: tuple[str, ...], ok: bool) -> tuple[int, int]:
        runs, failures = self._counts.get(key, (0, 0))
        self._counts[key] = runs + 1, failures + (not ok)
        return self._counts[key]

    def _judge_dns(self, dns: tuple[DnsStatus, ...]) -> None:
        """Log when no resolver of the link answers any more, and when one does again."""
        if not dns:
            return
        up = any(s.reading.ok for s in dns)
        if self._dns_up is not None and up != self._dns_up:
            if up:
                log.info("link %s: DNS resolves again", self.link.name)
            else:
                failing = ", ".join(
                    f"{s.reading.resolver} {s.reading.address} {s.reading.qtype} "
                    f"({s.reading.rcode_name or s.reading.note})"
                    for s in dns
                )
                log.warning("link %s: DNS fails at every resolver: %s", self.link.name, failing)
        self._dns_up = up

    def _target(
        self,
        name: str,
        address: str,
        tcp_port: int | None,
        result: ProbeReading | PollError | None,
    ) -> TargetStatus:
        totals = self._totals[name]
        method = "icmp" if tcp_port is None else "tcp"
        rtts: list[float] = []
        sent, reason, message = 0, "", ""
        if isinstance(result, ProbeReading):
            sent, message = result.sent, result.note
            rtts = [rtt for rtt in result.rtts if rtt is not None]
            totals.sent += sent
            totals.lost += sent - len(rtts)
            for rtt in rtts:
                totals.buckets[bisect.bisect_left(RTT_BUCKETS, rtt)] += 1
                totals.rtt_sum += rtt
        else:
            error = result or PollError("timeout", "the probe run did not finish in time")
            reason, message = error.reason, str(error)
            totals.errors[reason] = totals.errors.get(reason, 0) + 1
        cumulative, running = [], 0
        for count in totals.buckets:
            running += count
            cumulative.append(running)
        return TargetStatus(
            name=name,
            address=address,
            method=method,
            sent=sent,
            received=len(rtts),
            rtt_min=min(rtts) if rtts else None,
            rtt_avg=sum(rtts) / len(rtts) if rtts else None,
            rtt_max=max(rtts) if rtts else None,
            jitter=jitter(rtts),
            sent_total=totals.sent,
            lost_total=totals.lost,
            buckets=tuple(cumulative),
            rtt_sum=totals.rtt_sum,
            error_reason=reason,
            message=message,
            errors=tuple(sorted(totals.errors.items())),
        )


async def run_probes(link: LinkSettings) -> dict[str, ProbeReading | PollError]:
    """One run: every target of the link at once, each cut off after its longest run plus a
    little slack, and always within the link's interval (config keeps run_seconds below it)."""
    budget = min(link.run_seconds + 1.0, link.interval)

    async def one(target: ProbeTarget) -> ProbeReading | PollError:
        try:
            return await asyncio.wait_for(
                probe(
                    target,
                    count=link.count,
                    spacing=link.spacing,
                    timeout=link.timeout,
                    binding=link.binding,
                ),
                budget,
            )
        except PollError as exc:
            return exc
        except TimeoutError:
            return PollError("timeout", f"the probe run took longer than {budget:g} s")
        except OSError as exc:  # e.g. no free socket: report it, keep the daemon running
            return PollError("error", f"{type(exc).__name__}: {exc.strerror or exc}")

    targets = [ProbeTarget(t.name, t.address, t.tcp_port) for t in link.targets]
    results = await asyncio.gather(*(one(t) for t in targets))
    return {t.name: r for t, r in zip(targets, results, strict=True)}


async def run_link(link: LinkSettings) -> LinkRun:
    """One run of everything a link is probed by, all at once: echoes or connects, a DNS
    query per resolver and type, a GET per URL. Each ends within its own timeout."""

    async def ask(settings: DnsProbeSettings, resolver: Resolver, qtype: QType) -> DnsReading:
        try:
            return await query(
                resolver, settings.query, qtype, timeout=settings.timeout, binding=link.binding
            )
        except PollError as exc:  # the link's source address or interface cannot be bound
            return DnsReading(
                resolver.name, resolver.address, qtype, None, None, (), "udp", str(exc)
            )

    async def get(settings: HttpProbeSettings) -> HttpReading:
        target = HttpTarget(settings.name, settings.url, settings.max_bytes, settings.ca_file)
        try:
            return await fetch_url(target, timeout=settings.timeout, binding=link.binding)
        except PollError as exc:
            return HttpReading(target.name, target.url, "", None, (), 0, None, note=str(exc))

    questions = []
    if link.dns is not None:
        resolvers = [Resolver(r.name, *r.host_port) for r in link.dns.resolvers]
        questions = [ask(link.dns, r, qtype) for r in resolvers for qtype in link.dns.types]
    probes, dns, http = await asyncio.gather(
        run_probes(link),
        asyncio.gather(*questions),
        asyncio.gather(*(get(h) for h in link.http)),
    )
    return LinkRun(probes, tuple(dns), tuple(http))


class LinkProber:
    """The daemon's job for one link: a probe run, judged, stored in `links[name]`."""

    def __init__(self, link: LinkSettings, links: dict[str, LinkStatus]) -> None:
        self.link = link
        self.check = LinkQualityCheck(link)
        self._links = links

    async def run(self) -> None:
        started = time.monotonic()
        results = await run_link(self.link)
        self._links[self.link.name] = self.check.update(
            results, time.time(), time.monotonic() - started
        )


# Zabbix's ICMP template defaults ({$ICMP_LOSS_WARN} 20 %, {$ICMP_RESPONSE_TIME_WARN} 0.15 s).
WARN_LOSS_RATIO = 0.2
WARN_RTT_SECONDS = 0.15


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"


def assess(
    target: TargetStatus, tcp_port: int | None
) -> tuple[Literal["PASS", "WARN", "FAIL"], str, str]:
    """(PASS|WARN|FAIL, what was seen, hint) for one target after one probe run."""
    where = f"{target.address}:{tcp_port}" if tcp_port else target.address
    if target.error_reason:
        hints = {
            "denied": "allow ICMP without root: add the agent's group to "
            "net.ipv4.ping_group_range (e.g. a file in /etc/sysctl.d/ with "
            "net.ipv4.ping_group_range = 0 2147483647), or give it CAP_NET_RAW, "
            "or give this target a tcp_port",
            "config": "check source_address (an address of this box) and bind_interface "
            "(an interface of this box) of the link",
        }
        hint = hints.get(target.error_reason, "see the detail")
        return "FAIL", f"{target.error_reason}: {target.message}", hint
    note = f" ({target.message})" if target.message else ""
    if not target.received:
        if target.method == "icmp":
            hint = (
                f"no answer from {target.name} {where}: check the WAN cable/ONT and the ISP; "
                "if it blocks ping, add tcp_port"
            )
        else:
            hint = (
                f"no TCP answer (connect or refusal) from {target.name} {where}: check the WAN "
                "cable/ONT and the ISP; the port may be filtered, try another tcp_port"
            )
        if target.message:
            hint += "; check source_address, bind_interface and the route for this link"
        return "FAIL", f"no answer to {target.sent} {target.method} probes{note}", hint
    detail = (
        f"{target.received}/{target.sent} answered ({target.method}), rtt min/avg/max "
        f"{_ms(target.rtt_min)}/{_ms(target.rtt_avg)}/{_ms(target.rtt_max)} ms, "
        f"jitter {_ms(target.jitter)} ms{note}"
    )
    loss = target.loss_ratio or 0.0
    if loss >= WARN_LOSS_RATIO or (target.rtt_avg or 0.0) >= WARN_RTT_SECONDS:
        return (
            "WARN",
            detail,
            "the link loses packets or is slow: compare with the port's utilisation "
            "(saturation), and report it to the ISP if it persists",
        )
    return "PASS", detail, ""


# A resolver that takes half a second makes every page feel slow; a first byte after 2 s is
# a web page that seems hung. A certificate within 14 days of expiry needs renewing now.
WARN_DNS_SECONDS = 0.5
WARN_FIRST_BYTE_SECONDS = 2.0
WARN_CERT_DAYS = 14


def assess_dns(
    status: DnsStatus, others_answer: bool = False
) -> tuple[Literal["PASS", "WARN", "FAIL"], str, str]:
    """(PASS|WARN|FAIL, what was seen, hint) for one DNS question after one run.

    `others_answer`: another resolver of the link resolved the same question, so names still
    resolve through the link and this one failing is a WARN, not a FAIL."""
    r = status.reading
    via = " over TCP after a truncated answer" if r.transport == "tcp" else ""
    failed = "WARN" if others_answer else "FAIL"
    if r.rcode is None:
        hint = (
            f"resolver {r.resolver} {r.address} did not answer: check its address and that "
            "this link reaches it (source_address, bind_interface, route)"
        )
        if others_answer:
            hint += "; another resolver answers, so the ISP may block outside DNS"
        return failed, f"no {r.qtype} answer{via}: {r.note}", hint
    seconds = f"{(r.seconds or 0) * 1000:.1f} ms"
    if not r.ok:
        hint = (
            "the resolver refuses to recurse for this box: is it the ISP's resolver for this line?"
            if r.rcode_name == "REFUSED"
            else "the resolver failed the name: try another name under dns.query, and report "
            "it to the ISP if its resolver fails while the public one answers"
        )
        return failed, f"{r.qtype} answered {r.rcode_name} in {seconds}{via}", hint
    records = ", ".join(r.addresses) or f"no {r.qtype} record"
    detail = f"{r.qtype} {records} in {seconds}{via}"
    if (r.seconds or 0) >= WARN_DNS_SECONDS:
        return "WARN", detail, "the resolver is slow: every page waits for it; compare both"
    return "PASS", detail, ""


def assess_http(status: HttpStatus, now: float) -> tuple[Literal["PASS", "WARN", "FAIL"], str, str]:
    """(PASS|WARN|FAIL, what was seen, hint) for one GET after one run."""
    r = status.reading
    if r.status is None:
        return "FAIL", r.note, "check the URL, and that this link reaches it"
    phases = "/".join(f"{seconds * 1000:.0f}" for _, seconds in r.phases)
    names = "/".join(phase for phase, _ in r.phases)
    detail = (
        f"{r.status} from {r.address}, first byte {(r.first_byte or 0) * 1000:.0f} ms "
        f"({names} {phases} ms), {r.body_bytes} bytes"
    )
    if r.tls_expiry is not None:
        days = (r.tls_expiry - now) / 86400
        detail += f", certificate expires in {days:.0f} days"
    if not r.ok:
        return "FAIL", detail, "the server answered with an error: check the URL"
    if r.location:
        return (
            "WARN",
            f"{detail}, redirects to {r.location} (not followed)",
            ("configure the URL it redirects to, so the probe measures one server"),
        )
    if r.tls_expiry is not None and r.tls_expiry - now < WARN_CERT_DAYS * 86400:
        return "WARN", detail, "the server's certificate expires soon"
    if (r.first_byte or 0) >= WARN_FIRST_BYTE_SECONDS:
        return "WARN", detail, "slow first byte: compare with the DNS and connect phases"
    return "PASS", detail, ""
