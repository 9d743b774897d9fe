"""The SNMPv1/v2c codec (collectors/snmp/ber.py) against pyasn1, an independent BER codec.

Answers are built by pysnmp's own message classes and encoder, then read by ours; requests are
built by ours and read by pyasn1. SNMPv3 (usm.py) reads its PDUs with the same decoder.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api, rfc1902, rfc1905

from collectors.snmp import ber
from collectors.snmp.values import END_OF_MIB_VIEW, Counter64, Oid

from ..fuzz.settings import FUZZ

V2C = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
IF_HC_IN_OCTETS_1 = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6, 1)


def pyasn1_response(varbinds: list[tuple[tuple[int, ...], object]], request_id: int = 9) -> bytes:
    pdu = V2C.ResponsePDU()
    V2C.apiPDU.set_defaults(pdu)
    V2C.apiPDU.set_request_id(pdu, request_id)
    V2C.apiPDU.set_varbinds(pdu, varbinds)
    message = V2C.Message()
    V2C.apiMessage.set_defaults(message)
    V2C.apiMessage.set_community(message, "public")
    V2C.apiMessage.set_pdu(message, pdu)
    return encoder.encode(message)


VALUES = [
    (rfc1902.Counter64(2**64 - 1), 2**64 - 1, Counter64),
    (rfc1902.Counter64(2**40), 2**40, Counter64),
    (rfc1902.Counter32(2**32 - 1), 2**32 - 1, int),
    (rfc1902.Counter32(7), 7, int),
    (rfc1902.Gauge32(1000), 1000, int),
    (rfc1902.TimeTicks(12345), 12345, int),
    (rfc1902.Integer32(-3), -3, int),
    (rfc1902.Integer32(-(2**31)), -(2**31), int),
    (rfc1902.Unsigned32(2**31), 2**31, int),
    (rfc1902.OctetString(b"ether1"), "ether1", str),
    (rfc1902.OctetString("Gi0/1 Ä".encode()), "Gi0/1 Ä", str),
    (rfc1902.OctetString(b"\xff\xfe\x00"), b"\xff\xfe\x00", bytes),
    (rfc1902.OctetString(b"x" * 300), "x" * 300, str),  # a two-byte length
    (rfc1902.IpAddress("10.0.0.1"), "10.0.0.1", str),
    (rfc1902.ObjectIdentifier("1.3.6.1.4.1.14988.1"), "1.3.6.1.4.1.14988.1", Oid),
    (rfc1902.ObjectIdentifier("2.999.3"), "2.999.3", Oid),
]


@pytest.mark.parametrize(("raw", "expected", "kind"), VALUES)
def test_reads_every_value_type_as_pyasn1_encodes_it(raw: object, expected: object, kind: type):
    message = ber.decode_message(pyasn1_response([(IF_HC_IN_OCTETS_1, raw)]))
    ((oid, value),) = message.varbinds
    assert oid == IF_HC_IN_OCTETS_1
    assert value == expected
    assert type(value) is kind


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (rfc1905.NoSuchObject(""), None),
        (rfc1905.NoSuchInstance(""), None),
        (rfc1905.EndOfMibView(""), END_OF_MIB_VIEW),
        (rfc1902.Null(""), None),
    ],
)
def test_exceptions_are_absent_or_end_the_walk(raw: object, expected: object) -> None:
    ((_, value),) = ber.decode_message(pyasn1_response([(IF_HC_IN_OCTETS_1, raw)])).varbinds
    assert value is expected


def test_header_fields_of_a_response() -> None:
    message = ber.decode_message(pyasn1_response([], request_id=2**31 - 1))
    assert (message.version, message.community, message.pdu_type) == (1, b"public", ber.RESPONSE)
    assert (message.request_id, message.error_status, message.error_index) == (2**31 - 1, 0, 0)
    assert message.varbinds == []


def test_getbulk_request_as_pyasn1_reads_it() -> None:
    oids = [(1, 3, 6, 1, 2, 1, 2, 2, 1, 10), (1, 3, 6, 1, 4, 1, 9, 9, 2**32 - 1)]
    wire = ber.encode_request(1, b"s3cret", ber.GETBULK, 123456, oids, 0, 25)
    message, rest = decoder.decode(wire, asn1Spec=V2C.Message())
    assert rest == b""
    pdu = V2C.apiMessage.get_pdu(message)
    assert bytes(V2C.apiMessage.get_community(message)) == b"s3cret"
    assert pdu.tagSet == V2C.GetBulkRequestPDU.tagSet
    assert int(V2C.apiBulkPDU.get_request_id(pdu)) == 123456
    assert int(V2C.apiBulkPDU.get_max_repetitions(pdu)) == 25
    assert [tuple(oid) for oid, _ in V2C.apiBulkPDU.get_varbinds(pdu)] == oids


def test_sloppy_unsigned_encodings_are_read_as_net_snmp_reads_them() -> None:
    oid = ber.encode_oid(IF_HC_IN_OCTETS_1)
    minus_one = b"\x30" + bytes([len(oid) + 6]) + oid + b"\x41\x04\xff\xff\xff\xff"
    too_big = b"\x30" + bytes([len(oid) + 7]) + oid + b"\x41\x05\x01\x00\x00\x00\x00"
    body = b"\x02\x01\x09\x02\x01\x00\x02\x01\x00\x30" + bytes([len(minus_one + too_big)])
    pdu = b"\xa2" + bytes([len(body) + len(minus_one + too_big)]) + body + minus_one + too_big
    head = b"\x02\x01\x01\x04\x06public"
    datagram = b"\x30" + bytes([len(head + pdu)]) + head + pdu
    (_, wrapped), (_, out_of_range) = ber.decode_message(datagram).varbinds
    assert wrapped == 2**32 - 1  # a Counter32 sent without its leading zero
    assert out_of_range is None  # five bytes of Counter32 are not a counter: absent, not fatal


@pytest.mark.parametrize(
    "datagram",
    [
        b"",
        b"\x30",
        b"\x30\x80\x00\x00",  # indefinite length
        b"\x30\x85\x00\x00\x00\x00\x01",  # five length bytes
        b"\x30\x84\xff\xff\xff\xf0\x02\x01\x01",  # length far beyond the datagram
        b"\x1f\x81\x00\x00",  # multi-byte tag
        b"\x04\x00",  # not a SEQUENCE
    ],
)
def test_malformed_datagrams_are_refused(datagram: bytes) -> None:
    with pytest.raises(ber.BerError):
        ber.decode_message(datagram)


def test_every_truncation_and_trailing_byte_is_refused() -> None:
    valid = pyasn1_response([(IF_HC_IN_OCTETS_1, raw) for raw, _, _ in VALUES])
    assert len(ber.decode_message(valid).varbinds) == len(VALUES)
    for cut in range(len(valid)):
        with pytest.raises(ber.BerError):
            ber.decode_message(valid[:cut])
    with pytest.raises(ber.BerError):
        ber.decode_message(valid + b"\x00")


sub_ids = st.integers(0, 2**32 - 1)
oids = st.tuples(st.integers(0, 1), st.integers(0, 39), st.lists(sub_ids, max_size=20)).map(
    lambda t: (t[0], t[1], *t[2])
) | st.tuples(st.just(2), sub_ids, st.lists(sub_ids, max_size=20)).map(lambda t: (2, t[1], *t[2]))
counters = st.integers(0, 2**64 - 1).map(rfc1902.Counter64)
octets = st.binary(max_size=200).map(rfc1902.OctetString)
integers = st.integers(-(2**31), 2**31 - 1).map(rfc1902.Integer32)


def plain(raw: object) -> object:
    """What a pyasn1 value of these three types reads as (values.py)."""
    if isinstance(raw, rfc1902.Counter64):
        return Counter64(raw)
    if isinstance(raw, rfc1902.OctetString):
        octets = raw.asOctets()
        try:
            return octets.decode("utf-8")
        except UnicodeDecodeError:
            return octets
    return int(raw)  # type: ignore[call-overload]


@FUZZ
@given(st.lists(st.tuples(oids, counters | octets | integers), max_size=40))
def test_any_answer_reads_as_pyasn1_wrote_it(varbinds: list) -> None:
    message = ber.decode_message(pyasn1_response(varbinds))
    assert message.varbinds == [(oid, plain(raw)) for oid, raw in varbinds]
    assert [type(value) for _, value in message.varbinds] == [
        type(plain(raw)) for _, raw in varbinds
    ]


def test_names_decoded_before_read_the_same_and_the_cache_stays_bounded(monkeypatch) -> None:
    """Varbind names are kept decoded between polls (the same columns every poll), up to a
    bound: a walk of more distinct names than that still reads every name right."""
    monkeypatch.setattr(ber, "_KNOWN_OIDS", 50)
    monkeypatch.setattr(ber, "_known_oids", {})
    rows = [
        ((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6, 10000 + n), rfc1902.Counter64(n)) for n in range(120)
    ]
    first = ber.decode_message(pyasn1_response(rows)).varbinds
    again = ber.decode_message(pyasn1_response(rows)).varbinds
    assert first == again == [(oid, Counter64(n)) for n, (oid, _) in enumerate(rows)]
    assert 0 < len(ber._known_oids) <= 50
