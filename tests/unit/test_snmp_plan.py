"""Agent-side SNMP poll planning: the name cache, pinned ports and the port filters."""

from __future__ import annotations

import asyncio
from collections.abc import Collection

from agent.config import SnmpDevice, parse_config
from agent.snmp_plan import PlannedSnmpCollector, pinned_indexes, select_ports
from collectors.readings import InterfaceNames, InterfaceSample, SnmpReading
from collectors.snmp.collector import IF_DESCR, IF_NAME, IF_SPEED, IF_TYPE


def sample(index: int, name: str, admin_up: bool = True) -> InterfaceSample:
    return InterfaceSample(index, name, name, "", True, admin_up, 1e9, 0, 0, 64)


PORTS = (sample(1, "ether1"), sample(2, "ether2", admin_up=False), sample(3, "sfp1"),
         sample(4, "bridge"))  # fmt: skip
NAMES = InterfaceNames({IF_NAME: {"7": "ether1", "9": "sfp1"}, IF_DESCR: {"7": "e1", "9": "s1"}},
                       2, 100)  # fmt: skip


def device(**snmp: object) -> SnmpDevice:
    config = {"name": "r", "address": "127.0.0.1", "community": "c", **snmp}
    return parse_config({"site": {"id": "t"}, "snmp": [config]}).snmp[0]


def names(ports: tuple[InterfaceSample, ...]) -> list[str]:
    return [p.name for p in ports]


def test_filters_by_glob_role_and_admin_state() -> None:
    assert names(select_ports(PORTS, device())) == ["ether1", "ether2", "sfp1", "bridge"]
    globs = device(ports={"include": ["ether*", "sfp*"], "exclude": ["ether2"]})
    assert names(select_ports(PORTS, globs)) == ["ether1", "sfp1"]
    assert names(select_ports(PORTS, device(ports={"admin_up_only": True}))) == [
        "ether1", "sfp1", "bridge"]  # fmt: skip
    listed = device(interfaces=[{"name": "sfp1", "role": "wan"}], ports={"roles_only": True})
    assert names(select_ports(PORTS, listed)) == ["sfp1"]


def test_pinned_ports_follow_the_name_to_its_current_index() -> None:
    assert pinned_indexes(NAMES, {"sfp1"}) == [9]
    assert pinned_indexes(NAMES, {"ether1", "sfp1"}) == [7, 9]
    # a listed port not in the cached names (a PPPoE session that was down): walk, do not GET
    assert pinned_indexes(NAMES, {"ether1", "sfp1", "missing"}) is None


class FakeCollector:
    """Records what the planner asks; refreshes names when given none."""

    def __init__(self) -> None:
        self.calls: list[tuple[InterfaceNames | None, list[int] | None]] = []

    async def poll(
        self, known: InterfaceNames | None = None, pinned: Collection[int] | None = None
    ) -> SnmpReading:
        self.calls.append((known, sorted(pinned) if pinned is not None else None))
        return SnmpReading("r", "", "", 100, PORTS, names=known or NAMES,
                           names_refreshed=known is None)  # fmt: skip

    async def close(self) -> None:
        pass


def test_name_cache_is_reused_until_it_is_older_than_name_cache_minutes() -> None:
    now = [0.0]
    fake = FakeCollector()
    planned = PlannedSnmpCollector(fake, device(name_cache_minutes=1), clock=lambda: now[0])  # type: ignore[arg-type]

    async def polls() -> None:
        for at in (0, 30, 59, 60, 61):
            now[0] = at
            await planned.poll()

    asyncio.run(polls())
    assert [known is not None for known, _ in fake.calls] == [False, True, True, False, True]


def test_pinned_mode_gets_only_listed_ports_once_names_are_known() -> None:
    fake = FakeCollector()
    pinned = device(interfaces=[{"name": "sfp1", "role": "wan"}], ports={"pinned": True})
    planned = PlannedSnmpCollector(fake, pinned)  # type: ignore[arg-type]

    async def polls() -> list[SnmpReading]:
        return [await planned.poll(), await planned.poll()]

    first, second = asyncio.run(polls())
    assert [call[1] for call in fake.calls] == [None, [9]]
    assert names(second.interfaces) == ["sfp1"]
    assert names(first.interfaces) == ["sfp1"]


def test_pinned_port_missing_from_the_cached_names_walks_until_it_is_back() -> None:
    """pppoe-out1 was down when names were walked: GET-ing only sfp1 would lose it for the
    15 minutes of the cache, so the planner walks (pinned None) while it is missing."""
    fake = FakeCollector()
    listed = [{"name": "sfp1", "role": "wan"}, {"name": "pppoe-out1", "role": "wan"}]
    planned = PlannedSnmpCollector(fake, device(interfaces=listed, ports={"pinned": True}))  # type: ignore[arg-type]

    async def polls() -> None:
        await planned.poll()
        await planned.poll()

    asyncio.run(polls())
    assert [call[1] for call in fake.calls] == [None, None]


def test_readings_carry_the_fastest_physical_port_of_the_whole_name_table() -> None:
    """`ports:` keeps only pppoe-out1 (no speed): the reading still says the device has a
    1 Gb/s Ethernet port, the bound of the PPPoE traffic (agent/checks/bandwidth.py)."""
    table = {IF_NAME: {"1": "ether1", "2": "bridge", "20": "pppoe-out1"},
             IF_DESCR: {"1": "e1", "2": "b", "20": "p"},
             IF_SPEED: {"1": 1_000_000_000, "2": 4_294_967_295, "20": 0},
             IF_TYPE: {"1": 6, "2": 209, "20": 23}}  # fmt: skip
    fake = FakeCollector()
    fake_names = InterfaceNames(table, 3, 100)
    ppp = InterfaceSample(20, "pppoe-out1", "p", "", True, True, 0.0, 0, 0, 64, if_type=23)

    async def poll(
        known: InterfaceNames | None = None, pinned: Collection[int] | None = None
    ) -> SnmpReading:
        return SnmpReading("r", "", "", 100, (*PORTS, ppp), names=fake_names)

    fake.poll = poll  # type: ignore[method-assign]
    only = device(interfaces=[{"name": "pppoe-out1", "role": "wan"}], ports={"roles_only": True})
    reading = asyncio.run(PlannedSnmpCollector(fake, only).poll())  # type: ignore[arg-type]
    assert names(reading.interfaces) == ["pppoe-out1"]
    assert reading.fastest_port_bps == 1e9  # not the bridge's made-up 4.3 Gb/s
