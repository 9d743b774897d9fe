"""The .snmprec replay (tests/snmp_replay.py) answers like an agent, and encodes like snmpsim."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from pyasn1.codec.ber import encoder
from snmpsim.record.snmprec import SnmprecRecord

from collectors.readings import PollError
from collectors.snmp.client import CommunityAuth
from collectors.snmp.collector import SnmpCollector
from collectors.snmp.values import END_OF_MIB_VIEW, Counter64, Oid, parse_oid
from tests.snmp_replay import (
    RECORDINGS,
    ReplaySessions,
    ReplayTransport,
    Snmprec,
    load,
    recording_path,
)

SYS = "1.3.6.1.2.1.1"
NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END = b"\x80\x00", b"\x81\x00", b"\x82\x00"


def replay(*lines: str) -> Snmprec:
    return Snmprec("\n".join(lines).encode("iso-8859-1"))


def oid(text: str) -> tuple[int, ...]:
    return parse_oid(text)


def test_each_tag_reaches_the_collector_as_off_the_wire() -> None:
    recording = replay(
        "# a comment, and a blank line",
        "",
        f"{SYS}.1.1|2|-3",
        f"{SYS}.1.2|4|ether1",
        f"{SYS}.1.3|4|caf\xe9",  # ISO-8859-1 bytes that are not UTF-8: bytes
        f"{SYS}.1.4|4x|476930",
        f"{SYS}.1.5|4e|a\\nb",
        f"{SYS}.1.6|6|1.3.6.1.4.1.9.1.633",
        f"{SYS}.1.7|64|10.0.0.1",
        f"{SYS}.1.8|64x|0a000002",
        f"{SYS}.1.9|65|4294967295",
        f"{SYS}.1.10|66|1000",
        f"{SYS}.1.11|67|12345",
        f"{SYS}.1.12|70|18446744073709551615",
        f"{SYS}.1.13|5|",
        f"{SYS}.1.14|66:numeric|min=7,scale=95,function=cos,rate=0.001",
        f"{SYS}.1.15|4:writecache|value=Server 1 PS 1",
        f"{SYS}.1.16|67:numeric|rate=100",
    )
    values = dict(recording.walk(oid(f"{SYS}.1")))
    assert [values[oid(f"{SYS}.1.{n}")] for n in range(1, 17)] == [
        -3, "ether1", b"caf\xe9", "Gi0", "a\nb", "1.3.6.1.4.1.9.1.633", "10.0.0.1", "10.0.0.2",
        2**32 - 1, 1000, 12345, 2**64 - 1, None, 7, "Server 1 PS 1", 0,
    ]  # fmt: skip
    assert isinstance(values[oid(f"{SYS}.1.6")], Oid)
    assert isinstance(values[oid(f"{SYS}.1.12")], Counter64)
    assert not isinstance(values[oid(f"{SYS}.1.9")], Counter64)


def samples_of_each_tag() -> list[tuple[str, bytes]]:
    """The first 20 lines of each (non-variation) tag of every recording the tests use."""
    samples = []
    for relative in RECORDINGS:
        recording = load(recording_path(relative))
        by_tag = itertools.groupby(
            sorted(recording.oids, key=lambda o: recording.records[o][0]),
            key=lambda o: recording.records[o][0],
        )
        for tag, oids in by_tag:
            if ":" not in tag:
                for at in itertools.islice(oids, 20):
                    value = recording.records[at][1]
                    line = f"{'.'.join(map(str, at))}|{tag}|".encode() + value
                    samples.append((relative, line))
    return samples


def test_values_are_encoded_byte_for_byte_as_snmpsim_encodes_them() -> None:
    snmpsim = SnmprecRecord()
    for relative, line in samples_of_each_tag():
        at, expected = snmpsim.evaluate(line)
        ours = Snmprec(line).value(tuple(at))
        assert ours == encoder.encode(expected), f"{relative}: {line!r}"


def test_get_answers_recorded_values_and_the_two_exceptions() -> None:
    recording = replay(f"{SYS}.5.0|4|core", "1.3.6.1.2.1.2.2.1.2.1|4|ether1")
    assert recording.get([oid(f"{SYS}.5.0"), oid(f"{SYS}.6.0"), oid("1.3.6.1.2.1.2.2.1.2.2")]) == [
        (oid(f"{SYS}.5.0"), b"\x04\x04core"),
        (oid(f"{SYS}.6.0"), NO_SUCH_OBJECT),  # nothing recorded under sysLocation
        (oid("1.3.6.1.2.1.2.2.1.2.2"), NO_SUCH_INSTANCE),  # ifDescr has other rows
    ]


def test_getnext_follows_oid_order_not_file_order_and_ends_with_end_of_mib_view() -> None:
    recording = replay(
        "1.3.6.1.2.1.2.2.1.2.10|4|ten",
        "1.3.6.1.2.1.2.2.1.2.9|4|nine",  # out of order in the file, as in zte-zrx10
        "1.3.6.1.2.1.2.2.1.2.2|4|old",
        "1.3.6.1.2.1.2.2.1.2.2|4|two",  # a later line for the same OID wins, as in snmpsim
    )
    prefix = oid("1.3.6.1.2.1.2.2.1.2")
    assert [o[-1] for o, _ in recording.get_next([prefix])] == [2]
    assert recording.get_next([(*prefix, 2)])[0][0][-1] == 9
    assert recording.get_next([(*prefix, 9)])[0][0][-1] == 10
    assert recording.get_next([(*prefix, 10)]) == [((*prefix, 10), END)]
    assert dict(recording.walk(prefix))[(*prefix, 2)] == "two"


def test_getbulk_repeats_each_column_and_stops_at_the_end() -> None:
    recording = replay(
        *(f"1.3.6.1.2.1.2.2.1.{c}.{r}|2|{c * 10 + r}" for c in (7, 8) for r in (1, 2))
    )
    admin, oper = oid("1.3.6.1.2.1.2.2.1.7"), oid("1.3.6.1.2.1.2.2.1.8")
    answer = recording.get_bulk([admin, oper], 25, None)
    # rows side by side; oper's column ends the MIB, then a row of endOfMibView ends the answer
    assert [(o[-2:], v) for o, v in answer] == [
        ((7, 1), b"\x02\x01\x47"), ((8, 1), b"\x02\x01\x51"),
        ((7, 2), b"\x02\x01\x48"), ((8, 2), b"\x02\x01\x52"),
        ((8, 1), b"\x02\x01\x51"), ((8, 2), END),
        ((8, 2), b"\x02\x01\x52"), ((8, 2), END),
        ((8, 2), END), ((8, 2), END),
    ]  # fmt: skip


def test_getbulk_answers_at_most_max_varbinds_like_snmpsim() -> None:
    recording = load(recording_path("network/switch/cisco-c3560"))
    columns = [oid(f"1.3.6.1.2.1.2.2.1.{c}") for c in (2, 3, 5, 7, 8)]
    assert len(recording.get_bulk(columns, 25, 64)) == 60  # 12 rows of 5: 64 // 5
    assert len(recording.get_bulk(columns, 25, None)) == 125
    assert len(recording.get_bulk(columns, 3, 64)) == 15


def test_an_unknown_community_gets_no_answer() -> None:
    sessions = ReplaySessions([recording_path("network/wifi/ubiquiti-m5")])
    with pytest.raises(PollError) as caught:
        asyncio.run(SnmpCollector("127.0.0.1", 161, "public", sessions=sessions).poll())
    assert caught.value.reason == "timeout"


def test_snmpv1_walks_by_getnext_and_sees_no_counter64() -> None:
    recording = load(recording_path("network/switch/cisco-c3560"))
    transport = ReplayTransport(recording, CommunityAuth("cisco-c3560", version="1"), 64)
    hc_in = oid("1.3.6.1.2.1.31.1.1.1.6")
    [(after, value)] = asyncio.run(transport.bulk([hc_in], 25))  # one row: GETNEXT
    assert after[: len(hc_in)] != hc_in and not isinstance(value, Counter64)
    assert asyncio.run(transport.get([(*hc_in, 1)])) == [((*hc_in, 1), None)]
    assert asyncio.run(transport.bulk([oid("1.4")], 25)) == [(oid("1.4"), END_OF_MIB_VIEW)]

    sessions = ReplaySessions([recording_path("network/switch/cisco-c3560")])
    reading = asyncio.run(
        SnmpCollector("127.0.0.1", 161, "cisco-c3560", version="1", sessions=sessions).poll()
    )
    assert len(reading.interfaces) == 57
    assert {i.counter_bits for i in reading.interfaces} == {32}
