"""Multi-WAN: which uplink of a router carries the traffic, and a failover count when it moves.

Fed the judged ports after every poll of a router. Among the `role: wan` ports, the active one
is the port carrying the most traffic (receive + transmit) above a small floor. Hysteresis
keeps noise from flapping it: another port takes over only when it carries clearly more
(`TAKEOVER_FACTOR` times the active port's traffic) or the active port is down or idle below
the floor. When no WAN port carries traffic (a quiet night), the last active port stays active:
idleness is not a failover.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from .bandwidth import InterfaceStatus

log = logging.getLogger(__name__)

FLOOR_BPS = 64_000.0  # below this a port is idle: routing chatter, keep-alives, the probes
TAKEOVER_FACTOR = 2.0


@dataclass(frozen=True, slots=True)
class WanStatus:
    ports: tuple[str, ...]  # the device's wan ports, in device order
    active: str | None  # None until one has carried traffic
    failovers: int


def _traffic(port: InterfaceStatus) -> float:
    if port.oper_up is False:
        return 0.0
    return (port.receive_bps or 0.0) + (port.transmit_bps or 0.0)


class WanCheck:
    """Per router: one instance, fed every poll."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.active: str | None = None
        self.failovers = 0

    def update(self, interfaces: Iterable[InterfaceStatus]) -> WanStatus | None:
        """The WAN verdict after this poll; None when the device has no wan port."""
        wan = [i for i in interfaces if i.role == "wan"]
        if not wan:
            return None
        traffic = {port.name: _traffic(port) for port in wan}
        busiest = max(traffic, key=lambda name: traffic[name])
        current = traffic.get(self.active, 0.0) if self.active else 0.0
        if traffic[busiest] >= FLOOR_BPS and busiest != self.active:
            takes_over = current < FLOOR_BPS or traffic[busiest] >= current * TAKEOVER_FACTOR
            if takes_over:
                if self.active is not None:
                    self.failovers += 1
                    log.warning(
                        "%s: WAN traffic moved from %s to %s", self.device, self.active, busiest
                    )
                self.active = busiest
        return WanStatus(tuple(traffic), self.active, self.failovers)
