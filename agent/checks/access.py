"""Port roles and the per-switch summary of access ports.

A centre's switches have 24-48 access ports each (one workstation each) and two to four
uplinks. Centrally, PSEB and the site admin need the WAN ports and uplinks port by port (a
saturated uplink, a dead WAN line) but of the access ports only how many workstations are
connected, how much they move, whether they see errors, and which ports are busiest: per port
that is 20 series for each of some 300 ports per centre. So every port gets a role, and the
access ports of each device are also summed up here; the per-port series of access ports stay
on the site (/metrics, status page) and the shipped vmagent config drops them
(deploy/vmagent/scrape.yml).

Roles come from agent/checks/ports.py; access ports (`role="lan"`) are summed here, only the
physical ones (a VLAN or tunnel interface carries traffic its member ports already count).

The summary's counters are sums of each port's accepted deltas, so they only grow whatever a
port does: byte totals come from the bandwidth check (already wrap- and restart-corrected);
error and discard counters are the device's raw Counter32s, where a value below the previous
one is a cleared counter (a reboot, `clear counters`) and counts as what it counted since (at
the error rates of an access port they never wrap). A port's first reading only sets its
baseline. The busiest ports (receive plus transmit rate) are sticky: a port keeps its place
until another is more than STICKY_FACTOR times as busy, so the small labelled family does not
make a new series at every poll.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from collectors.readings import InterfaceSample

from .bandwidth import InterfaceStatus
from .ports import is_physical

BUSIEST = 3
STICKY_FACTOR = 2.0
COUNTERS = (
    "receive_bytes", "transmit_bytes", "receive_errors", "transmit_errors",
    "receive_discards", "transmit_discards",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class BusyPort:
    name: str
    bytes_per_second: float  # receive plus transmit, latest two polls


@dataclass(frozen=True, slots=True)
class AccessSummary:
    """The physical access ports of one device, summed up."""

    ports: int  # present in the latest poll
    ports_up: int  # operationally up: a workstation (or something) is connected
    totals: Mapping[str, int]  # COUNTERS -> sum of accepted deltas since the agent started
    busiest: tuple[BusyPort, ...]  # at most BUSIEST, busiest first


def _values(port: InterfaceStatus) -> tuple[int | None, ...]:
    """The port's COUNTERS, in that order."""
    return (port.receive_bytes_total, port.transmit_bytes_total, port.in_errors,
            port.out_errors, port.in_discards, port.out_discards)  # fmt: skip


def _moved(before: int, now: int) -> int:
    """What a counter added between two readings; below the previous value it was cleared."""
    return now - before if now >= before else now


def sticky_busiest(
    rates: Mapping[str, float], previous: Iterable[str], n: int = BUSIEST
) -> list[str]:
    """The n busiest ports, keeping previous members until an outsider is STICKY_FACTOR times
    busier than the slowest of them."""
    members = [name for name in previous if name in rates][:n]
    outsiders = sorted((p for p in rates if p not in members), key=lambda p: -rates[p])
    for outsider in outsiders:
        if len(members) < n:
            members.append(outsider)
            continue
        slowest = min(members, key=lambda p: rates[p])
        if rates[outsider] <= STICKY_FACTOR * rates[slowest]:
            break
        members[members.index(slowest)] = outsider
    return sorted(members, key=lambda p: -rates[p])


@dataclass
class AccessCheck:
    """Per-device state: the baselines of each access port and the running sums."""

    device: str
    # port -> its COUNTERS as last seen (None: never read): a list, not a dict per port, as a
    # hub holds 60,000 of them
    _baselines: dict[str, list[int | None]] = field(default_factory=dict)
    _totals: Counter[str] = field(default_factory=Counter)
    _busiest: list[str] = field(default_factory=list)

    def update(
        self, samples: Iterable[InterfaceSample], statuses: Iterable[InterfaceStatus]
    ) -> AccessSummary | None:
        """The summary after one poll; None when the device has no physical access port."""
        physical = {s.name for s in samples if is_physical(s)}
        access = [p for p in statuses if p.role == "lan" and p.name in physical]
        if not access:
            return None
        rates: dict[str, float] = {}
        for port in access:
            baseline = self._baselines.setdefault(port.name, [None] * len(COUNTERS))
            for i, value in enumerate(_values(port)):
                if value is None:
                    continue
                before = baseline[i]
                if before is not None:
                    self._totals[COUNTERS[i]] += _moved(before, value)
                baseline[i] = value
            if port.receive_bps is not None or port.transmit_bps is not None:
                rates[port.name] = ((port.receive_bps or 0.0) + (port.transmit_bps or 0.0)) / 8
        self._busiest = sticky_busiest(rates, self._busiest)
        return AccessSummary(
            ports=len(access),
            ports_up=sum(1 for p in access if p.oper_up),
            totals={key: self._totals[key] for key in COUNTERS},
            busiest=tuple(BusyPort(name, rates[name]) for name in self._busiest),
        )
