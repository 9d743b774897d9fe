"""Agent-side SNMP poll planning: the name cache, pinned ports and the port filters."""

from __future__ import annotations

import asyncio
from collections.abc import Collection

from agent.config import SnmpDevice, parse_config
from agent.snmp_plan import PlannedSnmpCollector, pinned_indexes, select_ports
from collectors.readings import InterfaceNames, InterfaceSample, SnmpReading
from collectors.snmp.collector import IF_DESCR, IF_NAME


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
    assert pinned_indexes(NAMES, {"ether1", "sfp1", "missing"}) == [7, 9]


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
