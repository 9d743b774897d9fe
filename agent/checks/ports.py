"""The role of each port of a router or switch: wan, uplink or lan (an access port).

A port listed under the device's `interfaces:` has the role given there
(wan, uplink, lan; default lan). Any other port is an uplink by default when it is a LAG
(ifType 161), or a physical port (a LAG aside) at the device's fastest speed while at most
AUTO_UPLINK_MAX_PORTS of its physical ports run at that speed and some run slower: the 10G or
SFP ports of a gigabit access switch, the gigabit ports of a 100M one. Ports that report a speed
when down (most switches report their maximum) count too, so a 48-port gigabit switch with a few
PCs at 100 Mb/s does not turn its gigabit PCs into uplinks. `ports: {auto_uplinks: false}`
turns the rule off for a device; a port listed under `interfaces:` is never changed by it.
The rest are access ports (`role="lan"`); only the physical ones are summed (a VLAN or tunnel
interface carries traffic its member ports already count).

Per-port detail of access ports stays on the site; agent/checks/access.py sums them per device.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from collectors.readings import InterfaceSample

from ..config import InterfaceSettings

# IANAifType values whose ifSpeed is a line rate: ethernetCsmacd, iso88023Csmacd, fastEther,
# fastEtherFX, gigabitEthernet, and ieee8023adLag (161: the sum of its members' line rates,
# which it can carry). PPP (23), tunnels (131), VLANs (135, 136), bridges (209) and
# propVirtual (53) report 0 or a configured figure: no line rate.
PHYSICAL_TYPES = frozenset({6, 7, 62, 69, 117, 161})
LAG_TYPE = 161  # IANAifType ieee8023adLag
AUTO_UPLINK_MAX_PORTS = 4


def is_physical(sample: InterfaceSample) -> bool:
    """True when the port's ifSpeed is a line rate: an Ethernet ifType, or none was read."""
    return sample.if_type is None or sample.if_type in PHYSICAL_TYPES


def port_roles(
    samples: Iterable[InterfaceSample],
    settings: Mapping[str, InterfaceSettings],
    auto_uplinks: bool = True,
) -> dict[str, str]:
    """Role of every port (see the module docstring): wan, uplink or lan (access)."""
    samples = list(samples)
    # a LAG's speed is its members' sum: it is an uplink anyway, and is not the fastest port
    speeds = [
        s.speed_bps for s in samples if s.speed_bps and is_physical(s) and s.if_type != LAG_TYPE
    ]
    fastest = max(speeds, default=None)
    fast_ports = speeds.count(fastest)
    uplink_speed = (
        fastest if auto_uplinks and fast_ports <= AUTO_UPLINK_MAX_PORTS < len(speeds) else None
    )
    roles = {}
    for sample in samples:
        setting = settings.get(sample.name)
        if setting is not None:
            roles[sample.name] = setting.role
        elif auto_uplinks and (
            sample.if_type == LAG_TYPE
            or (uplink_speed and is_physical(sample) and sample.speed_bps == uplink_speed)
        ):
            roles[sample.name] = "uplink"
        else:
            roles[sample.name] = "lan"
    return roles
