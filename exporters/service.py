"""Losses of service at the centre and their cause (agent/checks/service.py), for alert routing.

erozgar_service_loss{cause="isp"} 1.0
erozgar_service_losses_total{cause="isp"} 3.0
erozgar_wan_down_cause{cause="isp",device="core-router",interface="ether1",link="ptcl"} 1.0
erozgar_device_down_cause{cause="power",device="sw-floor1"} 1.0
erozgar_service_loss_seconds_total{cause="agent"} 3600.0
erozgar_link_unavailable_seconds_total{cause="isp",link="ptcl"} 5400.0

The per-loss series exist only while the loss lasts, like erozgar_device_down_reason; the
site-wide gauge and the counter always carry all three causes, so rate() sees the first loss.
The seconds lost (agent/checks/availability.py) carry a fourth cause, agent: the time the agent
itself was not running, added at its restart. They are saved on the site and survive restarts,
so a day's or a month's figure is the difference of two samples however many were lost between.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from agent.checks.service import CAUSES
from agent.state import AgentState

from .families import Families


class ServiceCollector(Collector):
    def __init__(self, state: AgentState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        out = Families()
        status = self.state.service
        if status is None:  # not judged yet: say nothing rather than "no loss"
            return iter(out)
        loss = out.gauge(
            "service_loss",
            "1 while any loss of service of that cause (power, isp, lan) goes on at the site.",
            ["cause"],
        )
        count = out.counter(
            "service_losses",
            "Times a loss of service of that cause began at the site (none going on before).",
            ["cause"],
        )
        for cause in CAUSES:
            loss.add_metric([cause], float(status.active[cause]))
            count.add_metric([cause], status.counts[cause])
        self._seconds(out)
        for item in status.losses:
            if item.kind == "wan":
                out.gauge(
                    "wan_down_cause",
                    "1 while a WAN link or wan port is down, labelled with why: power, isp, lan.",
                    ["link", "device", "interface", "cause"],
                ).add_metric([item.link, item.device, item.interface, item.cause], 1.0)
            else:
                out.gauge(
                    "device_down_cause",
                    "1 while a device does not answer, labelled with why: power or lan.",
                    ["device", "cause"],
                ).add_metric([item.device, item.cause], 1.0)
        return iter(out)

    def _seconds(self, out: Families) -> None:
        totals = self.state.availability
        if totals is None:
            return
        site = out.counter(
            "service_loss_seconds",
            "Seconds during which a loss of service of that cause went on at the site (agent: "
            "the agent was not running); kept across restarts.",
            ["cause"],
        )
        for cause, seconds in totals.site.items():
            site.add_metric([cause], seconds)
        for link, causes in totals.links.items():
            for cause, seconds in causes.items():
                out.counter(
                    "link_unavailable_seconds",
                    "Seconds the WAN link was down, by cause (agent: the agent was not running); "
                    "kept across restarts.",
                    ["link", "cause"],
                ).add_metric([link, cause], seconds)
