"""Losses of service at the centre and their cause (agent/checks/service.py), for alert routing.

erozgar_service_loss{cause="isp"} 1.0
erozgar_service_losses_total{cause="isp"} 3.0
erozgar_wan_down_cause{cause="isp",device="core-router",interface="ether1",link="ptcl"} 1.0
erozgar_device_down_cause{cause="power",device="sw-floor1"} 1.0

The per-loss series exist only while the loss lasts, like erozgar_device_down_reason; the
site-wide gauge and the counter always carry all three causes, so rate() sees the first loss.
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
