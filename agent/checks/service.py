"""Service check: each loss of service at the centre, and its cause: power, ISP or LAN.

A loss of service is a WAN path down (its probes get no answer, or the router's wan port is
down while enabled) or a polled device that does not answer. The cause decides who acts: an
ISP outage must be reported to the ISP whatever else is going on, a power cut explains every
router and switch that goes dark with it (one alert for the cut is enough), and a device that
has power but does not answer is a cable, a switch or the device itself.

What the agent sees, and what it concludes:

- The router answers SNMP: it has power and the LAN between agent and router works, so its
  wan port down or its probes failing is the ISP's line, modem or network. This holds during a
  power cut too: a router on a UPS with charge left loses the internet to the ISP (whose
  cabinet in the street often has no battery), not to the cut, and the admin must still call.
- A device (or the router of a path) does not answer: power when the cut explains it, else
  LAN. The cut explains it when the UPS that feeds it has run out (it reports low battery or
  no charge left, or went silent while on battery: it shut down), or when it runs on mains
  alone (`powered_by: mains`) and mains is lost at the site (a UPS is on battery). A UPS that
  goes silent explains itself the same way: silent while on battery is its battery run out.
- Without `powered_by`, every UPS of the site may be the one that feeds the device: the cut
  explains its silence only when all of them have run out. One with charge left may be its
  supply, and a silenced LAN fault costs more than one alert too many during a deep cut.
- A probed link that names no router: the agent cannot tell the router from the line, so it is
  the ISP's unless every UPS of the site has run out.

The site-wide view, `ServiceStatus.active`, says per cause whether any loss of that cause is
going on; `counts` says how often each went from none to some for at least SETTLE_SECONDS (one
power cut that darkens three switches is one power loss; two ISPs failing together are one ISP
loss). ServiceCheck also keeps a device the cut darkened "power" while it boots.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Literal

from ..config import Config
from ..kinds import KINDS
from ..state import AgentState, RouterStatus

log = logging.getLogger(__name__)

Cause = Literal["power", "isp", "lan"]
CAUSES: tuple[Cause, ...] = ("power", "isp", "lan")
MAINS = "mains"  # powered_by: no UPS between the device and the grid
# Below this charge a UPS on battery has nothing left, whether or not it raised LB.
EMPTY_CHARGE_PERCENT = 1.0
# A cause's episode is counted once it has lasted this long (ServiceCheck): longer than a UPS
# poll (5 s, SNMP 15 s) and its timeout, so a cause still settling is not a loss on record.
SETTLE_SECONDS = 20.0
# How long a device the cut darkened may stay silent after mains returns before its silence is
# the LAN's: routers and switches boot in one to five minutes.
BOOT_SECONDS = 600.0


@dataclass(frozen=True, slots=True)
class Supply:
    """One UPS as the agent last saw it."""

    name: str
    answering: bool
    on_battery: bool  # at the latest reading it gave
    low_battery: bool
    charge_percent: float | None

    @property
    def run_out(self) -> bool:
        """The cut has taken this UPS's output, or is about to."""
        if not self.on_battery:
            return False
        if not self.answering:
            return True  # silent while on battery: it shut down (or what reaches it died)
        if self.low_battery:
            return True
        return self.charge_percent is not None and self.charge_percent < EMPTY_CHARGE_PERCENT


@dataclass(frozen=True, slots=True)
class Equipment:
    """A polled device: does it answer, and what feeds it."""

    name: str
    answering: bool | None  # None: not polled yet
    powered_by: str | None = None  # a UPS device, MAINS, or None: unknown (every UPS)
    ups: bool = False  # the device is a UPS (or its network card)


@dataclass(frozen=True, slots=True)
class WanPath:
    """One way to the internet: a probed link, a router's wan port, or both."""

    link: str  # "" for a wan port no probed link names
    device: str  # the router, "" when the link names none
    interface: str
    probes_up: bool | None  # None: not probed (yet)
    port_down: bool  # the wan port was down while enabled, at the router's latest answer


@dataclass(frozen=True, slots=True)
class SiteView:
    supplies: tuple[Supply, ...]
    equipment: tuple[Equipment, ...]
    paths: tuple[WanPath, ...]


@dataclass(frozen=True, slots=True)
class Loss:
    kind: Literal["wan", "device"]
    link: str
    device: str
    interface: str
    cause: Cause
    why: str  # one line for the log

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.kind, self.link, self.device, self.interface)

    def __str__(self) -> str:
        if self.kind == "device":
            return self.device
        port = f"{self.device} {self.interface}".strip()
        return f"{self.link} ({port})" if self.link and port else self.link or port


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    losses: tuple[Loss, ...]  # going on now
    active: MappingProxyType[str, bool]  # cause -> any loss of that cause now
    counts: MappingProxyType[str, int]  # cause -> times it went from no loss to some


def _power_explains(equipment: Equipment, supplies: Mapping[str, Supply]) -> tuple[bool, str]:
    """Whether the power cut explains that `equipment` does not answer, and why (or why not)."""
    if equipment.ups:
        own = supplies.get(equipment.name)
        if own is not None and own.on_battery:
            return True, "the UPS went silent on battery: its battery ran out"
        return False, "the UPS was not on battery when it went silent"
    if equipment.powered_by == MAINS:
        lost = sorted(s.name for s in supplies.values() if s.on_battery)
        if lost:
            return True, f"it runs on mains, which is lost ({', '.join(lost)} on battery)"
        return False, "it runs on mains and mains is present"
    if equipment.powered_by is not None:
        feed = supplies.get(equipment.powered_by)
        if feed is None:
            return False, f"its UPS {equipment.powered_by} has not been read yet"
        if feed.run_out:
            return True, f"its UPS {feed.name} has run out"
        state = "on battery with charge left" if feed.on_battery else "on mains"
        return False, f"its UPS {feed.name} is {state}"
    if supplies and all(s.run_out for s in supplies.values()):
        return True, "every UPS of the site has run out"
    if not supplies:
        return False, "the site has no UPS to tell a power cut by"
    return False, "a UPS of the site still has charge (set powered_by to say which feeds it)"


def device_cause(equipment: Equipment, supplies: Mapping[str, Supply]) -> tuple[Cause, str]:
    """The cause of a device not answering: power if the cut explains it, else LAN."""
    explained, why = _power_explains(equipment, supplies)
    return ("power" if explained else "lan"), why


def path_cause(
    path: WanPath, equipment: Mapping[str, Equipment], supplies: Mapping[str, Supply]
) -> tuple[Cause, str] | None:
    """The cause of a WAN path being down, or None when it is up."""
    if path.probes_up is not False and not path.port_down:
        return None
    what = "its probes get no answer" if path.probes_up is False else "its wan port is down"
    router = equipment.get(path.device) if path.device else None
    if router is None or router.answering is None:
        if supplies and all(s.run_out for s in supplies.values()):
            return "power", f"{what} and every UPS of the site has run out"
        return "isp", f"{what} (no router named for the link)"
    if router.answering:
        return "isp", f"{what} while {router.name} answers (it has power and the LAN works)"
    cause, why = device_cause(router, supplies)
    return cause, f"{what} and {router.name} does not answer: {why}"


def classify(view: SiteView) -> tuple[Loss, ...]:
    """Every loss of service going on in `view`, with its cause."""
    supplies = {s.name: s for s in view.supplies}
    equipment = {e.name: e for e in view.equipment}
    losses: list[Loss] = []
    for path in view.paths:
        judged = path_cause(path, equipment, supplies)
        if judged is not None:
            losses.append(Loss("wan", path.link, path.device, path.interface, *judged))
    for item in view.equipment:
        if item.answering is False:
            losses.append(Loss("device", "", item.name, "", *device_cause(item, supplies)))
    return tuple(losses)


class ServiceCheck:
    """Per site: the losses going on, counts per cause, and one log line per change.

    Two things the latest view alone gets wrong, so this check remembers:

    - A device the cut darkened stays dark for minutes after mains returns (a router boots in
      one to five); judged afresh it would be "lan" as soon as its UPS is back on mains. Its
      loss stays "power" while it is still silent, for up to `boot_seconds` after the cut
      stopped explaining it. Once it answers, the loss ends (or, for a WAN path whose router
      answers but whose line is still dead, becomes the ISP's).
    - Evidence arrives poll by poll: a router that dies with its UPS may time out before the
      UPS's next reading shows the battery gone, so for a few seconds the loss looks like the
      LAN's. A cause's episode is counted once it has lasted `settle_seconds` (longer than a
      UPS poll and its timeout), so such a flicker, or an ISP blip, is not a loss on record.
    """

    def __init__(
        self, settle_seconds: float = SETTLE_SECONDS, boot_seconds: float = BOOT_SECONDS
    ) -> None:
        self.settle_seconds = settle_seconds
        self.boot_seconds = boot_seconds
        self._current: dict[tuple[str, str, str, str], Loss] = {}
        self._unexplained: dict[tuple[str, str, str, str], float] = {}  # key -> since (mono)
        self._lan_since: dict[tuple[str, str, str, str], float] = {}  # key -> since (mono)
        self._episode: dict[str, float] = {}  # cause -> monotonic start of its episode
        self._counted: set[str] = set()  # causes whose current episode is counted
        self._counts = dict.fromkeys(CAUSES, 0)

    def update(self, view: SiteView, now: float) -> ServiceStatus:
        """`now`: monotonic seconds."""
        judged = [self._still_dark(loss, now) for loss in classify(view)]
        for key in set(self._lan_since) - {loss.key for loss in judged}:
            del self._lan_since[key]
        concluded = (self._conclude(loss, now) for loss in judged)
        losses = tuple(loss for loss in concluded if loss is not None)
        active = {loss.cause for loss in losses}
        for cause in CAUSES:
            if cause not in active:
                self._episode.pop(cause, None)
                self._counted.discard(cause)
                continue
            # a LAN loss began when it was first seen, not when it was concluded
            began = (self._lan_since.get(loss.key, now) for loss in losses if loss.cause == cause)
            start = self._episode.setdefault(cause, min(began, default=now))
            if cause not in self._counted and now - start >= self.settle_seconds:
                self._counted.add(cause)
                self._counts[cause] += 1
        current = {loss.key: loss for loss in losses}
        for key, loss in current.items():
            old = self._current.get(key)
            if old is None:
                log.warning("service lost: %s, cause %s: %s", loss, loss.cause, loss.why)
            elif old.cause != loss.cause:
                log.warning("service lost: %s, cause now %s: %s", loss, loss.cause, loss.why)
        for key, loss in self._current.items():
            if key not in current:
                log.info("service back: %s (was %s)", loss, loss.cause)
                self._unexplained.pop(key, None)
        self._current = current
        return ServiceStatus(
            losses=losses,
            active=MappingProxyType({cause: cause in active for cause in CAUSES}),
            counts=MappingProxyType(dict(self._counts)),
        )

    def _conclude(self, loss: Loss, now: float) -> Loss | None:
        """LAN is concluded by elimination, so only once it has held `settle_seconds`: the UPS
        reading that would explain the silence has had time to arrive. Until then a loss keeps
        the cause it had, and a new one is not reported yet."""
        if loss.cause != "lan":
            self._lan_since.pop(loss.key, None)
            return loss
        # a device dark since a cut has waited out boot_seconds already (_still_dark)
        since = self._lan_since.setdefault(loss.key, self._unexplained.get(loss.key, now))
        if now - since >= self.settle_seconds:
            return loss
        old = self._current.get(loss.key)
        return None if old is None else replace(loss, cause=old.cause, why=old.why)

    def _still_dark(self, loss: Loss, now: float) -> Loss:
        """`loss`, or the power loss it was while its device has not answered since."""
        old = self._current.get(loss.key)
        if loss.cause != "lan" or old is None or old.cause != "power":
            self._unexplained.pop(loss.key, None)
            return loss
        since = self._unexplained.setdefault(loss.key, now)
        if now - since >= self.boot_seconds:
            return loss
        return replace(loss, cause="power", why=f"dark since the power cut ({loss.why})")


def site_view(state: AgentState, config: Config) -> SiteView:
    """What the pollers and probes last saw, in the check's terms."""
    powered_by = {d.name: d.powered_by for d in config.snmp}
    supplies: list[Supply] = []
    equipment: list[Equipment] = []
    routers: dict[str, RouterStatus] = {}
    for device in list(state.devices.values()):
        kind = KINDS[device.kind]
        ups = kind.power(device.status)
        if ups is not None:
            charge = ups.values.get("battery.charge")
            supplies.append(
                Supply(device.name, bool(device.up), ups.on_battery, ups.low_battery, charge)
            )
        router = kind.router(device.status)
        if router is not None:
            routers[device.name] = router
        # modbus and nut devices are UPSes even before their first answer
        is_ups = ups is not None or kind.always_supply
        equipment.append(Equipment(device.name, device.up, powered_by.get(device.name), is_ups))
    return SiteView(tuple(supplies), tuple(equipment), tuple(_paths(state, routers)))


def _paths(state: AgentState, routers: Mapping[str, RouterStatus]) -> Iterable[WanPath]:
    ports = {
        (device, port.name): port
        for device, status in routers.items()
        for port in status.interfaces
        if port.role == "wan"
    }
    named: set[tuple[str, str]] = set()
    for link in list(state.links.values()):
        key = (link.device or "", link.interface or "")
        named.add(key)
        port = ports.get(key)
        down = port is not None and port.oper_up is False and port.admin_up is not False
        yield WanPath(link.name, key[0], key[1], link.up, down)
    for (device, name), port in ports.items():
        if (device, name) not in named:
            down = port.oper_up is False and port.admin_up is not False
            yield WanPath("", device, name, None, down)
