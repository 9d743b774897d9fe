"""Port roles and the access-port summary: what is shipped centrally instead of per-port detail.
Pure logic, no device (agent/checks/ports.py, agent/checks/access.py)."""

from dataclasses import replace

from agent.checks.access import AccessCheck, sticky_busiest
from agent.checks.bandwidth import BandwidthCheck
from agent.checks.ports import port_roles
from agent.config import InterfaceSettings
from collectors.readings import InterfaceSample, SnmpReading

GBIT = 1e9


def port(
    name: str,
    speed: float = GBIT,
    if_type: int | None = 6,
    rx: int = 0,
    tx: int = 0,
    up: bool = True,
    errors: int = 0,
    index: int = 1,
) -> InterfaceSample:
    return InterfaceSample(
        index=index, name=name, descr=name, alias="", oper_up=up, admin_up=True,
        speed_bps=speed, in_octets=rx, out_octets=tx, counter_bits=64, in_errors=errors,
        out_errors=0, in_discards=0, out_discards=0, if_type=if_type,
    )  # fmt: skip


def switch(extra: list[InterfaceSample] | None = None) -> list[InterfaceSample]:
    """A 48-port gigabit access switch with two 10G uplinks."""
    ports = [port(f"ge-0/0/{n}", index=n) for n in range(1, 49)]
    return ports + [port(f"xe-0/1/{n}", 10 * GBIT, index=100 + n) for n in (1, 2)] + (extra or [])


def test_the_few_fastest_ports_and_lags_are_uplinks_the_rest_access():
    roles = port_roles([*switch(), port("ae0", 20 * GBIT, if_type=161), port("vlan10", 0, 136)], {})
    assert {name for name, role in roles.items() if role == "uplink"} == {
        "xe-0/1/1", "xe-0/1/2", "ae0",
    }  # fmt: skip
    assert roles["ge-0/0/7"] == roles["vlan10"] == "lan"


def test_a_switch_of_one_speed_has_no_automatic_uplink():
    """Every port gigabit, a few PCs at 100 Mb/s: the gigabit ports are many, so not uplinks."""
    ports = [port(f"p{n}", GBIT if n > 5 else 100e6) for n in range(24)]
    assert set(port_roles(ports, {}).values()) == {"lan"}


def test_config_names_roles_and_can_turn_the_rule_off():
    settings = {
        "ge-0/0/1": InterfaceSettings(name="ge-0/0/1", role="wan"),
        "xe-0/1/2": InterfaceSettings(name="xe-0/1/2"),  # listed without a role: lan
    }
    roles = port_roles(switch(), settings)
    assert (roles["ge-0/0/1"], roles["xe-0/1/1"], roles["xe-0/1/2"]) == ("wan", "uplink", "lan")
    assert set(port_roles(switch(), {}, auto_uplinks=False).values()) == {"lan"}


def poll(check: BandwidthCheck, access: AccessCheck, ports: list[InterfaceSample], now: float):
    reading = SnmpReading("sw", "", "1.3.6.1.4.1.9", int(now * 100) + 1000, tuple(ports))
    return access.update(ports, check.update(reading, now))


def test_summary_counts_ports_up_and_sums_accepted_deltas():
    check, access = BandwidthCheck("sw"), AccessCheck("sw")
    ports = switch()
    ports[0] = replace(ports[0], oper_up=False)
    first = poll(check, access, ports, 0.0)
    assert first is not None
    assert (first.ports, first.ports_up) == (48, 47)  # the uplinks are not access ports
    assert first.totals["receive_bytes"] == 0  # a first reading only sets the baseline
    moved = [
        replace(p, in_octets=1000 * i, out_octets=10, in_errors=3) for i, p in enumerate(ports)
    ]
    moved[-1] = replace(moved[-1], in_octets=10**9)  # an uplink's traffic is not access traffic
    second = poll(check, access, moved, 10.0)
    assert second.totals["receive_bytes"] == sum(1000 * i for i in range(48))
    assert second.totals["transmit_bytes"] == 480
    assert second.totals["receive_errors"] == 3 * 48


def test_summary_stays_monotonic_when_a_port_resets_or_goes():
    check, access = BandwidthCheck("sw"), AccessCheck("sw")
    ports = switch()
    poll(check, access, [replace(p, in_octets=5000, in_errors=100) for p in ports], 0.0)
    poll(check, access, [replace(p, in_octets=6000, in_errors=110) for p in ports], 10.0)
    # ge-0/0/1's counters are cleared; ge-0/0/2 is unplugged and gone from the table
    cleared = [replace(p, in_octets=7000, in_errors=120) for p in ports]
    cleared[0] = replace(cleared[0], in_octets=0, in_errors=4)
    after = poll(check, access, [p for p in cleared if p.name != "ge-0/0/2"], 20.0)
    assert after.ports == 47
    assert after.totals["receive_bytes"] == 48 * 1000 + 46 * 1000  # the reset port adds nothing
    assert after.totals["receive_errors"] == 48 * 10 + 46 * 10 + 4  # cleared: counts since


def test_busiest_ports_are_bounded_and_sticky():
    assert sticky_busiest({"a": 10, "b": 5, "c": 1, "d": 0}, []) == ["a", "b", "c"]
    # d overtakes c but not by twice: the set stays, so no new series
    assert sticky_busiest({"a": 10, "b": 5, "c": 1, "d": 1.5}, ["a", "b", "c"]) == ["a", "b", "c"]
    assert sticky_busiest({"a": 10, "b": 5, "c": 1, "d": 3}, ["a", "b", "c"]) == ["a", "b", "d"]
    check, access = BandwidthCheck("sw"), AccessCheck("sw")
    poll(check, access, switch(), 0.0)
    busy = [replace(p, in_octets=100 * i) for i, p in enumerate(switch())]
    summary = poll(check, access, busy, 10.0)
    assert [(b.name, b.bytes_per_second) for b in summary.busiest] == [
        ("ge-0/0/48", 4700 / 10), ("ge-0/0/47", 4600 / 10), ("ge-0/0/46", 4500 / 10),
    ]  # fmt: skip


def test_a_device_without_access_ports_has_no_summary():
    check, access = BandwidthCheck("r"), AccessCheck("r")
    wan = {"ether1": InterfaceSettings(name="ether1", role="wan")}
    check = BandwidthCheck("r", wan)
    assert poll(check, access, [port("ether1"), port("pppoe-out1", 0, 23)], 0.0) is None
