"""Pure SNMP value handling: decoding, IF-MIB row building, and when a column walk stops."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import pytest

from collectors.readings import PollError
from collectors.snmp.client import SnmpClient
from collectors.snmp.collector import (
    IF_DESCR,
    IF_HC_IN_OCTETS,
    IF_HC_OUT_OCTETS,
    IF_IN_ERRORS,
    IF_IN_OCTETS,
    IF_NAME,
    IF_OPER_STATUS,
    IF_OUT_OCTETS,
    build_interfaces,
    counter,
    interface_name,
    needs_fallback,
    speed_bps,
    status_up,
    text,
)
from collectors.snmp.values import END_OF_MIB_VIEW, Counter64, Oid, Oidt, Value, VarBind


def test_text_accepts_only_display_strings() -> None:
    assert text("Gi0/1\x00\x00") == "Gi0/1"
    assert text(b"\xff\xfe") is None
    assert text(Oid("1.3.6")) is None
    assert text(5) is None


@pytest.mark.parametrize(
    ("value", "bits", "expected"),
    [
        (Counter64(2**63), 64, 2**63),
        (5, 64, None),  # Counter32 where a Counter64 belongs
        (Counter64(5), 32, None),
        (2**32 - 1, 32, 2**32 - 1),
        (2**32, 32, None),
        (-1, 32, None),
        ("12", 32, None),
        (None, 32, None),
    ],
)
def test_counter_rejects_wrong_type_and_range(
    value: Value | None, bits: int, expected: int | None
) -> None:
    assert counter(value, bits) == expected


def test_status_up() -> None:
    assert [status_up(v) for v in (1, 2, 5, 0, 99, "1", None)] == [
        True, False, False, None, None, None, None,
    ]  # fmt: skip


def test_interface_name_fallback() -> None:
    assert interface_name(3, "Gi0/1", "GigabitEthernet0/1") == "Gi0/1"
    assert interface_name(3, "", "GigabitEthernet0/1") == "GigabitEthernet0/1"
    assert interface_name(3, None, None) == "if3"


def test_speed_prefers_high_speed_because_if_speed_saturates() -> None:
    assert speed_bps(10_000, 4_294_967_295) == 10e9
    assert speed_bps(0, 100_000_000) == 100e6
    assert speed_bps(None, 10_000_000) == 10e6
    assert speed_bps(None, None) is None


def test_odd_device_answers_are_skipped_not_fatal() -> None:
    table = {
        IF_DESCR: {"1": "ether1", "2": b"\xc0\xff", "3": "bridge"},
        IF_NAME: {"1": b"\xff", "3": "br0"},
        IF_OPER_STATUS: {"1": 1, "2": "up", "3": 2},
        IF_HC_IN_OCTETS: {"1": Counter64(100), "2": 50, "3": Counter64(300)},
        IF_HC_OUT_OCTETS: {"1": Counter64(200), "2": Counter64(60), "3": Counter64(400)},
        IF_IN_ERRORS: {"1": -4, "3": 2},
    }
    assert needs_fallback(table)
    fallback = {IF_IN_OCTETS: {"2": 55}, IF_OUT_OCTETS: {"2": 66}}
    one, two, three = build_interfaces(table, fallback)
    assert (one.name, one.in_octets, one.counter_bits, one.in_errors) == ("ether1", 100, 64, None)
    assert (two.name, two.descr, two.oper_up) == ("if2", "", None)
    assert (two.in_octets, two.out_octets, two.counter_bits) == (55, 66, 32)
    assert (three.name, three.oper_up, three.in_errors) == ("br0", False, 2)


def test_no_fallback_when_every_row_has_hc_counters() -> None:
    table = {
        IF_DESCR: {"1": "ether1"},
        IF_HC_IN_OCTETS: {"1": Counter64(1)},
        IF_HC_OUT_OCTETS: {"1": Counter64(2)},
    }
    assert not needs_fallback(table)


# --- walk_columns against fake transports --------------------------------------------------

A = (1, 3, 6, 1, 2, 1, 2, 2, 1, 2)
B = (1, 3, 6, 1, 2, 1, 2, 2, 1, 8)
AGENT = sorted(
    [((*A, i), f"port{i}") for i in range(1, 8)]
    + [((*B, i), 1) for i in range(1, 8)]
    + [((1, 3, 6, 1, 2, 1, 2, 2, 1, 9, 1), 0)]
)


class FakeAgent:
    """GETBULK over a sorted table, optionally cutting each answer to `limit` varbinds."""

    def __init__(self, table: list[VarBind], limit: int = 10_000) -> None:
        self.table = table
        self.limit = limit
        self.sent: list[list[Oidt]] = []

    def packets_sent(self) -> int:
        return len(self.sent)

    async def discover_engine_id(self) -> bytes:
        return b"fake-engine"

    async def get(self, oids: Sequence[Oidt]) -> list[VarBind]:
        values = dict(self.table)
        return [(oid, values.get(oid)) for oid in oids]

    async def bulk(self, oids: Sequence[Oidt], max_repetitions: int) -> list[VarBind]:
        self.sent.append(list(oids))
        answer: list[VarBind] = []
        cursors = list(oids)
        for _ in range(max_repetitions):
            row = [self._next(oid) for oid in cursors]
            answer += row
            cursors = [oid for oid, _ in row]
        return answer[: self.limit]

    def _next(self, oid: Oidt) -> VarBind:
        return next(((o, v) for o, v in self.table if o > oid), (oid, END_OF_MIB_VIEW))


class ScriptedAgent(FakeAgent):
    """Answers every GETBULK with `script(oids)`: for agents that misbehave."""

    def __init__(self, script: Callable[[Sequence[Oidt]], list[VarBind]]) -> None:
        super().__init__([])
        self.script = script

    async def bulk(self, oids: Sequence[Oidt], max_repetitions: int) -> list[VarBind]:
        self.sent.append(list(oids))
        return self.script(oids)


def walk(agent: FakeAgent, columns: list[Oidt], **options: int) -> dict[str, dict[str, object]]:
    client = SnmpClient(agent, max_requests=options.pop("max_requests", 200))
    return asyncio.run(client.walk_columns([".".join(map(str, c)) for c in columns], **options))


def test_walk_sends_all_columns_in_one_pdu_and_stops_at_subtree_end() -> None:
    agent = FakeAgent(AGENT)
    result = walk(agent, [A, B], max_repetitions=3)
    assert result[".".join(map(str, A))] == {str(i): f"port{i}" for i in range(1, 8)}
    assert result[".".join(map(str, B))] == {str(i): 1 for i in range(1, 8)}
    assert all(len(pdu) == 2 for pdu in agent.sent)
    assert len(agent.sent) == 3  # rows 1-3, 4-6, 7 and out of the subtree


def test_walk_continues_each_column_from_a_truncated_answer() -> None:
    agent = FakeAgent(AGENT, limit=5)  # cut mid-row: column A gets 3 rows, column B 2
    result = walk(agent, [A, B], max_repetitions=10)
    assert len(result[".".join(map(str, A))]) == 7
    assert len(result[".".join(map(str, B))]) == 7
    assert agent.sent[1] == [(*A, 3), (*B, 2)]


def test_walk_stops_at_end_of_mib_view() -> None:
    agent = FakeAgent(AGENT)
    last = (1, 3, 6, 1, 2, 1, 2, 2, 1, 9)
    assert walk(agent, [last], max_repetitions=5) == {".".join(map(str, last)): {"1": 0}}
    assert len(agent.sent) == 1


def test_walk_stops_on_non_increasing_oid() -> None:
    agent = ScriptedAgent(lambda oids: [((*A, 1), "loop")] * 4)
    assert walk(agent, [A]) == {".".join(map(str, A)): {"1": "loop"}}
    assert len(agent.sent) == 1


def test_walk_of_a_runaway_agent_is_capped() -> None:
    # always one step further inside the column: the walk would never end by itself
    agent = ScriptedAgent(lambda oids: [((*oids[0], 1), 0)])
    with pytest.raises(PollError) as caught:
        walk(agent, [A], max_requests=20)
    assert caught.value.reason == "protocol"
    assert len(agent.sent) == 20


def test_walk_stops_on_an_empty_answer() -> None:
    agent = ScriptedAgent(lambda oids: [])
    assert walk(agent, [A, B]) == {".".join(map(str, A)): {}, ".".join(map(str, B)): {}}
    assert len(agent.sent) == 1


def test_client_counts_requests_and_varbinds_and_drops_no_such() -> None:
    client = SnmpClient(FakeAgent(AGENT))
    result = asyncio.run(client.get(["1.3.6.1.2.1.2.2.1.2.1", "1.3.6.1.2.1.1.5.0"]))
    assert result == {"1.3.6.1.2.1.2.2.1.2.1": "port1"}
    assert (client.requests, client.varbinds) == (1, 2)


def test_rows_sharing_a_name_become_separate_ports() -> None:
    # Some devices name several rows alike (ifDescr "Ethernet"); each must be its own series.
    table = {IF_DESCR: {"1": "Ethernet", "2": "Ethernet", "3": "lo"}}
    names = [sample.name for sample in build_interfaces(table, {})]
    assert names == ["Ethernet#1", "Ethernet#2", "lo"]


def test_two_devices_name_tables_share_one_copy_of_each_index_and_name() -> None:
    """A hub keeps thousands of name tables between polls: the same row index or port name
    read from two switches is one string object, not two."""
    tables = []
    for _ in range(2):  # each answer decoded afresh, as from two datagrams
        table = [((*A, i), "".join(["Gi0/", str(i)])) for i in range(1, 4)]
        tables.append(walk(FakeAgent(table), [A])[".".join(map(str, A))])
    (first, second) = tables
    assert first == second == {str(i): f"Gi0/{i}" for i in range(1, 4)}
    for (key_a, name_a), (key_b, name_b) in zip(first.items(), second.items(), strict=True):
        assert key_a is key_b
        assert name_a is name_b
