"""BER for SNMP messages: encode GET, GETNEXT and GETBULK requests, decode responses.

    wire = encode_request(1, b"public", GETBULK, 42, [(1, 3, 6, 1, 2, 1, 2, 2, 1, 10)], 0, 25)
    answer = decode_message(datagram)
    answer.request_id, answer.error_status, answer.varbinds -> 42, 0, [((1, 3, ..., 1), 81234)]

SNMPv3 (RFC 3412 6, RFC 3414 2.4) is the same PDU in another envelope: encode_v3_message /
decode_v3_message handle the envelope (header, USM security parameters, the scoped PDU or its
ciphertext) and encode_scoped_pdu / decode_scoped_pdu the plaintext; usm.py does the crypto.

Only what a manager needs, so it is small and fast: pyasn1 spends about 60 us a varbind on a
GETBULK answer, this about 2 (bench/RESULTS.md). Strict about structure: every length must fit
inside its enclosure, tags are single-byte, lengths definite; a datagram that breaks a rule
raises BerError and is dropped by the caller. Lenient about values the way net-snmp is: an
unsigned type sent as a negative INTEGER (no leading zero) is read modulo 2^32 or 2^64; a value
that does not fit its type at all becomes None, so one bad cell does not lose the whole answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .values import END_OF_MIB_VIEW, Counter64, EndOfMibView, Oid, Oidt, Value, VarBind

GET, GETNEXT, RESPONSE, GETBULK, REPORT = 0xA0, 0xA1, 0xA2, 0xA5, 0xA8

_SEQUENCE, _INTEGER, _OCTETS, _NULL, _OID = 0x30, 0x02, 0x04, 0x05, 0x06
_IP_ADDRESS, _COUNTER32, _GAUGE32, _TIMETICKS, _OPAQUE, _COUNTER64, _UINTEGER32 = (
    0x40, 0x41, 0x42, 0x43, 0x44, 0x46, 0x47,
)  # fmt: skip
_NO_SUCH_OBJECT, _NO_SUCH_INSTANCE, _END_OF_MIB_VIEW = 0x80, 0x81, 0x82
AUTH_FLAG, PRIV_FLAG, REPORTABLE_FLAG = 0x01, 0x02, 0x04  # msgFlags, RFC 3412 6.4
_PDU_TAGS = frozenset((0xA0, 0xA1, 0xA2, 0xA3, 0xA5, 0xA6, 0xA7, 0xA8))
_MAX_SUB_IDS = 128  # RFC 2578 7.1.3
_MAX_SUB_ID = 2**32 - 1

# RFC 3416 3: error-status values, for messages.
ERROR_STATUS = (
    "noError", "tooBig", "noSuchName", "badValue", "readOnly", "genErr", "noAccess",
    "wrongType", "wrongLength", "wrongEncoding", "wrongValue", "noCreation",
    "inconsistentValue", "resourceUnavailable", "commitFailed", "undoFailed",
    "authorizationError", "notWritable", "inconsistentName",
)  # fmt: skip


class BerError(ValueError):
    """The datagram is not a well-formed SNMP message."""


@dataclass(frozen=True, slots=True)
class Message:
    version: int  # 0 = SNMPv1, 1 = SNMPv2c
    community: bytes
    pdu_type: int
    request_id: int
    error_status: int
    error_index: int
    varbinds: list[VarBind]


@dataclass(frozen=True, slots=True)
class Pdu:
    pdu_type: int
    request_id: int
    error_status: int
    error_index: int
    varbinds: list[VarBind]


@dataclass(frozen=True, slots=True)
class UsmParameters:
    """UsmSecurityParameters (RFC 3414 2.4) of one SNMPv3 message."""

    engine_id: bytes
    boots: int
    time: int
    user: bytes
    auth: bytes  # the HMAC, zeros while it is computed
    priv: bytes  # the salt


@dataclass(frozen=True, slots=True)
class V3Message:
    """An SNMPv3 message with its scoped PDU still encoded (`data`: the ScopedPDU, or the
    ciphertext when flags say privacy), and where its HMAC sits, to check it."""

    msg_id: int
    flags: int
    security_model: int
    usm: UsmParameters
    data: bytes
    auth_at: int  # offset of usm.auth in the datagram


def error_name(status: int) -> str:
    return ERROR_STATUS[status] if 0 <= status < len(ERROR_STATUS) else f"error {status}"


# --- encoding ------------------------------------------------------------------------------


def _length(size: int) -> bytes:
    if size < 0x80:
        return bytes((size,))
    body = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes((tag,)) + _length(len(body)) + body


def _integer(value: int) -> bytes:
    return _tlv(_INTEGER, value.to_bytes((value.bit_length() + 8) // 8, "big", signed=True))


def encode_oid(oid: Oidt) -> bytes:
    if len(oid) < 2 or len(oid) > _MAX_SUB_IDS or oid[0] > 2 or (oid[0] < 2 and oid[1] >= 40):
        raise BerError(f"cannot encode OID {'.'.join(map(str, oid))}")
    body = bytearray()
    for sub_id in (oid[0] * 40 + oid[1], *oid[2:]):
        if not 0 <= sub_id <= _MAX_SUB_ID:
            raise BerError(f"OID sub-identifier {sub_id} out of range")
        septets = [sub_id & 0x7F]
        sub_id >>= 7
        while sub_id:
            septets.append(0x80 | (sub_id & 0x7F))
            sub_id >>= 7
        body += bytes(reversed(septets))
    return _tlv(_OID, bytes(body))


def encode_pdu(
    pdu_type: int,
    request_id: int,
    oids: Sequence[Oidt],
    non_repeaters: int = 0,
    max_repetitions: int = 0,
) -> bytes:
    """A request PDU with NULL values; GETBULK carries its two counts where the others carry
    error-status and error-index (both 0)."""
    varbinds = b"".join(_tlv(_SEQUENCE, encode_oid(oid) + b"\x05\x00") for oid in oids)
    return _tlv(
        pdu_type,
        _integer(request_id) + _integer(non_repeaters) + _integer(max_repetitions)
        + _tlv(_SEQUENCE, varbinds),
    )  # fmt: skip


def encode_request(
    version: int,
    community: bytes,
    pdu_type: int,
    request_id: int,
    oids: Sequence[Oidt],
    non_repeaters: int = 0,
    max_repetitions: int = 0,
) -> bytes:
    """An SNMPv1/v2c request (encode_pdu in its community envelope)."""
    pdu = encode_pdu(pdu_type, request_id, oids, non_repeaters, max_repetitions)
    return _tlv(_SEQUENCE, _integer(version) + _tlv(_OCTETS, community) + pdu)


def encode_scoped_pdu(context_engine_id: bytes, context_name: bytes, pdu: bytes) -> bytes:
    return _tlv(_SEQUENCE, _tlv(_OCTETS, context_engine_id) + _tlv(_OCTETS, context_name) + pdu)


def encode_v3_message(
    msg_id: int, max_size: int, flags: int, usm: UsmParameters, data: bytes
) -> tuple[bytes, int]:
    """An SNMPv3 message with the USM security model (3), and the offset of usm.auth in it.

    `data` is the encoded ScopedPDU, or the ciphertext when `flags` has the privacy bit."""
    header = _tlv(
        _SEQUENCE,
        _integer(msg_id) + _integer(max_size) + _tlv(_OCTETS, bytes((flags,))) + _integer(3),
    )
    before_auth = (
        _tlv(_OCTETS, usm.engine_id) + _integer(usm.boots) + _integer(usm.time)
        + _tlv(_OCTETS, usm.user) + bytes((_OCTETS,)) + _length(len(usm.auth))
    )  # fmt: skip
    parameters_body = before_auth + usm.auth + _tlv(_OCTETS, usm.priv)
    parameters = _tlv(_SEQUENCE, parameters_body)
    security = _tlv(_OCTETS, parameters)
    version = _integer(3)
    body = version + header + security + (_tlv(_OCTETS, data) if flags & PRIV_FLAG else data)
    message = _tlv(_SEQUENCE, body)
    auth_at = (  # the headers in front of it, then what precedes it in each enclosure
        len(message) - len(body) + len(version) + len(header) + len(security) - len(parameters)
        + len(parameters) - len(parameters_body) + len(before_auth)
    )  # fmt: skip
    return message, auth_at


# --- decoding ------------------------------------------------------------------------------


def _header(data: bytes, at: int, limit: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the TLV at `at`, which must end by `limit`."""
    if at + 2 > limit:
        raise BerError("truncated")
    tag = data[at]
    if tag & 0x1F == 0x1F:
        raise BerError("multi-byte tag")
    size = data[at + 1]
    start = at + 2
    if size & 0x80:
        count = size & 0x7F
        if count == 0 or count > 4:
            raise BerError("indefinite or oversized length")
        if start + count > limit:
            raise BerError("truncated length")
        size = int.from_bytes(data[start : start + count], "big")
        start += count
    end = start + size
    if end > limit:
        raise BerError("length beyond its enclosure")
    return tag, start, end


def _expect(data: bytes, at: int, limit: int, tag: int) -> tuple[int, int]:
    found, start, end = _header(data, at, limit)
    if found != tag:
        raise BerError(f"expected tag 0x{tag:02x}, found 0x{found:02x}")
    return start, end


def _signed(data: bytes, start: int, end: int) -> int:
    if start == end or end - start > 9:
        raise BerError("bad INTEGER length")
    return int.from_bytes(data[start:end], "big", signed=True)


def _unsigned(data: bytes, start: int, end: int, bits: int) -> int | None:
    """An unsigned application type; None when it cannot hold a `bits`-bit value."""
    size = end - start
    if size == 0 or size > bits // 8 + 1 or (size == bits // 8 + 1 and data[start] != 0):
        return None
    return int.from_bytes(data[start:end], "big", signed=True) % (1 << bits)


def decode_oid(data: bytes, start: int, end: int) -> Oidt:
    if start == end or data[end - 1] & 0x80:
        raise BerError("empty or truncated OID")
    raw = data[start:end]
    if max(raw) < 0x80:  # every sub-identifier below 128: one octet each, the common case
        sub_ids = list(raw)
    else:
        sub_ids = []
        sub_id = 0
        for octet in raw:
            sub_id = (sub_id << 7) | (octet & 0x7F)
            if not octet & 0x80:
                sub_ids.append(sub_id)
                sub_id = 0
    first = sub_ids[0]
    if len(sub_ids) >= _MAX_SUB_IDS or max(sub_ids[1:], default=0) > _MAX_SUB_ID:
        raise BerError("OID too long")
    if first < 80:
        return (first // 40, first % 40, *sub_ids[1:])
    if first - 80 > _MAX_SUB_ID:
        raise BerError("OID sub-identifier out of range")
    return (2, first - 80, *sub_ids[1:])


# A poll's varbind names are the last poll's (the same columns, rows and devices), and decoding
# one costs about 1 us: 984 a poll of the cisco-c3560 recording. Kept decoded, keyed by their
# encoding, up to this many (about 200 bytes each); past it the cache starts again.
_KNOWN_OIDS = 16384
_known_oids: dict[bytes, Oidt] = {}


def _known_oid(data: bytes, start: int, end: int) -> Oidt:
    """decode_oid, from the cache when this encoding was decoded before."""
    raw = bytes(data[start:end])
    oid = _known_oids.get(raw)
    if oid is None:
        oid = decode_oid(data, start, end)  # raises before anything is kept
        if len(_known_oids) >= _KNOWN_OIDS:
            _known_oids.clear()
        _known_oids[raw] = oid
    return oid


def _text(raw: bytes) -> Value:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def _value(tag: int, data: bytes, start: int, end: int) -> Value | EndOfMibView | None:
    if tag == _COUNTER64:
        counter = _unsigned(data, start, end, 64)
        return None if counter is None else Counter64(counter)
    if tag in (_COUNTER32, _GAUGE32, _TIMETICKS, _UINTEGER32):
        return _unsigned(data, start, end, 32)
    if tag == _INTEGER:
        return _signed(data, start, end) if 0 < end - start <= 5 else None
    if tag in (_OCTETS, _OPAQUE):
        return _text(data[start:end])
    if tag == _IP_ADDRESS:
        return ".".join(map(str, data[start:end])) if end - start == 4 else None
    if tag == _OID:
        try:
            return Oid(".".join(map(str, decode_oid(data, start, end))))
        except BerError:
            return None
    if tag == _END_OF_MIB_VIEW:
        return END_OF_MIB_VIEW
    return None  # NULL, noSuchObject, noSuchInstance and types no manager should see


def decode_message(data: bytes) -> Message:
    """A whole SNMPv1/v2c message; BerError for anything that is not one."""
    start, end = _expect(data, 0, len(data), _SEQUENCE)
    if end != len(data):
        raise BerError("bytes after the message")
    at, version_end = _expect(data, start, end, _INTEGER)
    version = _signed(data, at, version_end)
    at, community_end = _expect(data, version_end, end, _OCTETS)
    community = data[at:community_end]
    pdu = _pdu(data, community_end, end)
    return Message(
        version, bytes(community), pdu.pdu_type, pdu.request_id, pdu.error_status,
        pdu.error_index, pdu.varbinds,
    )  # fmt: skip


def _pdu(data: bytes, at: int, end: int) -> Pdu:
    """The PDU at `at`, which must end exactly at `end`."""
    pdu_type, at, pdu_end = _header(data, at, end)
    if pdu_type not in _PDU_TAGS or pdu_end != end:
        raise BerError(f"not a PDU: tag 0x{pdu_type:02x}")
    fields = []
    for _ in range(3):  # request-id, error-status, error-index
        at, field_end = _expect(data, at, pdu_end, _INTEGER)
        fields.append(_signed(data, at, field_end))
        at = field_end
    at, list_end = _expect(data, at, pdu_end, _SEQUENCE)
    if list_end != pdu_end:
        raise BerError("bytes after the varbind list")
    varbinds: list[VarBind] = []
    while at < list_end:
        binding, binding_end = _expect(data, at, list_end, _SEQUENCE)
        oid_start, oid_end = _expect(data, binding, binding_end, _OID)
        tag, value_start, value_end = _header(data, oid_end, binding_end)
        if value_end != binding_end:
            raise BerError("bytes after a varbind value")
        varbinds.append(
            (_known_oid(data, oid_start, oid_end), _value(tag, data, value_start, value_end))
        )
        at = binding_end
    return Pdu(pdu_type, *fields, varbinds)


def decode_v3_message(data: bytes) -> V3Message:
    """The envelope of an SNMPv3 message with USM parameters; BerError for anything else."""
    start, end = _expect(data, 0, len(data), _SEQUENCE)
    if end != len(data):
        raise BerError("bytes after the message")
    at, version_end = _expect(data, start, end, _INTEGER)
    if _signed(data, at, version_end) != 3:
        raise BerError("not an SNMPv3 message")
    at, header_end = _expect(data, version_end, end, _SEQUENCE)
    at, id_end = _expect(data, at, header_end, _INTEGER)
    msg_id = _signed(data, at, id_end)
    at, size_end = _expect(data, id_end, header_end, _INTEGER)  # msgMaxSize, not needed
    at, flags_end = _expect(data, size_end, header_end, _OCTETS)
    if flags_end - at != 1:
        raise BerError("msgFlags is not one octet")
    flags = data[at]
    at, model_end = _expect(data, flags_end, header_end, _INTEGER)
    model = _signed(data, at, model_end)
    if model_end != header_end:
        raise BerError("bytes after msgGlobalData")
    at, security_end = _expect(data, header_end, end, _OCTETS)
    at, parameters_end = _expect(data, at, security_end, _SEQUENCE)
    if parameters_end != security_end:
        raise BerError("bytes after the security parameters")
    values: list[bytes | int] = []
    auth_at = 0
    for tag in (_OCTETS, _INTEGER, _INTEGER, _OCTETS, _OCTETS, _OCTETS):
        field_start, field_end = _expect(data, at, parameters_end, tag)
        if tag == _INTEGER:
            values.append(_signed(data, field_start, field_end))
        else:
            values.append(bytes(data[field_start:field_end]))
        if len(values) == 5:
            auth_at = field_start
        at = field_end
    if at != parameters_end:
        raise BerError("bytes after the USM parameters")
    if flags & PRIV_FLAG:
        at, data_end = _expect(data, security_end, end, _OCTETS)
    else:
        at, data_end = security_end, _expect(data, security_end, end, _SEQUENCE)[1]
    if data_end != end:
        raise BerError("bytes after the scoped PDU")
    usm = UsmParameters(*values)  # type: ignore[arg-type]
    return V3Message(msg_id, flags, model, usm, bytes(data[at:data_end]), auth_at)


def decode_scoped_pdu(data: bytes) -> tuple[bytes, bytes, Pdu]:
    """(contextEngineID, contextName, PDU) of a ScopedPDU. Bytes after it are ignored: DES
    pads the plaintext to its block size (RFC 3414 8.1.1.2)."""
    start, end = _expect(data, 0, len(data), _SEQUENCE)
    at, engine_end = _expect(data, start, end, _OCTETS)
    engine_id = bytes(data[at:engine_end])
    at, name_end = _expect(data, engine_end, end, _OCTETS)
    return engine_id, bytes(data[at:name_end]), _pdu(data, name_end, end)
