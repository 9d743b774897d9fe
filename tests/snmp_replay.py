"""A snmpsim `.snmprec` recording served to the real SNMP collector in-process, as an agent would.

    sessions = ReplaySessions([recording_path("network/switch/cisco-c3560")])
    collector = SnmpCollector("127.0.0.1", 161, "cisco-c3560", sessions=sessions)
    reading = asyncio.run(collector.poll())      # no socket, no snmpsim process

The seam is client.Transport: ReplaySessions.client gives SnmpClient a ReplayTransport instead
of a UDP socket, so everything above it (walks, collector, profiles, checks, exporters) is the
product's code. Like snmpsim, the community picks the recording (its file name); an unknown
one gets no answer. Each answer is encoded in BER and read back by ber.decode_message, so values
reach the collector exactly as they would off the wire.

What an agent does (RFC 3416 4.2): GET answers noSuchInstance for an OID not recorded whose
parent has recorded OIDs, noSuchObject otherwise; GETNEXT the next recorded OID in lexicographic
order, whatever the file's order, and endOfMibView after the last; GETBULK up to max-repetitions
rows of GETNEXT, cut to whole rows within `max_varbinds` varbinds but at least one row (snmpsim
1.2.2, through pysnmp, answers at most 64) and ended after a row that is all endOfMibView.
SNMPv1 has no GETBULK (the transport walks by GETNEXT) and no Counter64: a v1 agent skips those
objects (RFC 2576 4.1.2.1).

The .snmprec format as snmpsim reads it: one `OID|TAG|VALUE` per line, blank and `#` lines
skipped, each line stripped, bytes read as ISO-8859-1 (so a plain value is its own bytes). TAG
is the BER identifier in decimal (2 Integer, 4 OctetString, 5 Null, 6 OID, 64 IpAddress, 65
Counter32, 66 Gauge32, 67 TimeTicks, 68 Opaque, 70 Counter64, 128-130 the exceptions), with `x`
when the value is hex and `e` when it has Python escapes. A later line for the same OID replaces
an earlier one (snmpsim's index keeps the last). `TAG:module|params` lines are snmpsim variation
modules; replayed frozen at start: the `value=` param (writecache), else `initial=`, else `min=`,
else 0 (numeric with its clock at 0).
"""

from __future__ import annotations

import bisect
import bz2
import codecs
import functools
import importlib.util
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

from collectors.readings import PollError
from collectors.snmp import ber
from collectors.snmp.client import CommunityAuth, SnmpAuth, SnmpClient, SnmpSessions
from collectors.snmp.values import EndOfMibView, Oidt, Value, VarBind, parse_oid

# snmpsim 1.2.2 answers at most 64 varbinds per GETBULK: its --max-var-binds sets an attribute
# that pysnmp 7 renamed (cmdrsp.BulkCommandResponder.max_varbinds), so the flag has no effect.
SNMPSIM_MAX_VAR_BINDS = 64
# The snmpsim-data recordings the tests poll, through snmpsim (tests/integration/conftest.py)
# and through this replay (tests/unit/test_snmp_golden.py).
RECORDINGS = (
    "network/switch/cisco-c3560",
    "network/firewall/legend-holdings-firewall",  # 32-bit counters only, no ifName
    "network/router/juniper-mx960-12-3r6-6",
    "network/wifi/ubiquiti-m5",  # 32-bit counters only
    # the real-device acceptance set (tests/fixtures/snmp/<name>/expected.prom)
    "network/switch/cisco-c3750",  # some ports 32-bit only
    "network/router/huawei-s5720",
    "network/switch/h3c-comware-7-1-075",
    "network/switch/zte-zrx10",  # 221 interfaces
    "network/firewall/paloalto-pa-5000",
    "network/firewall/topsec-ngfw4000-uf",  # 108 interfaces, 32-bit only
    "network/wifi/sangfor-wac-2",  # 32-bit only
    "network/wifi/aruba-7210",
    "network/router/vyatta-unknown",
    # UPS over SNMP (tests/fixtures/snmp-ups/<name>/expected.yaml); the APC ones are PDUs
    "UPS/eaton-93e-80",
    "UPS/huawei-gse200m",
    "UPS/phoenixtec-power",
    "UPS/eastpower-istars-swv053",
    "UPS/emerson-network-power",
    "UPS/vertiv-power",
    "UPS/apc-7902b",
    "UPS/apc-8641",
    "UPS/apc-8932",
)
_COUNTER64 = 70
_NUMBERS = frozenset((2, 65, 66, 67, 70))  # INTEGER and the unsigned application types
_OCTETS = frozenset((4, 68))  # OctetString, Opaque
_EMPTY = frozenset((5, 128, 129, 130))  # Null, noSuchObject, noSuchInstance, endOfMibView
_NO_SUCH_OBJECT, _NO_SUCH_INSTANCE, _END_OF_MIB_VIEW = b"\x80\x00", b"\x81\x00", b"\x82\x00"
_TAGS = {*_NUMBERS, *_OCTETS, *_EMPTY, 6, 64}


class SnmpPeer(NamedTuple):
    host: str
    port: int
    community: str


class Recording(NamedTuple):
    """One recording as served: the peer to poll and the .snmprec file it serves."""

    peer: SnmpPeer
    path: Path


def snmpsim_data() -> Path:
    """The recordings folder of the snmpsim-data package (a test dependency)."""
    spec = importlib.util.find_spec("snmpsim_data")
    assert spec is not None and spec.origin is not None, "pip install snmpsim-data==1.0.1"
    return Path(spec.origin).parent / "data"


def recording_path(relative: str) -> Path:
    """`network/switch/cisco-c3560` -> its .snmprec.bz2 in snmpsim-data (a few ship plain)."""
    packed = snmpsim_data() / f"{relative}.snmprec.bz2"
    return packed if packed.exists() else snmpsim_data() / f"{relative}.snmprec"


def recording_name(path: Path) -> str:
    """The community snmpsim serves a file under: its name without .snmprec(.bz2)."""
    return path.name.removesuffix(".bz2").removesuffix(".snmprec")


class Snmprec:
    """One recording: its OIDs in lexicographic order and each one's (tag, raw value)."""

    def __init__(self, text: bytes) -> None:
        records: dict[Oidt, tuple[str, bytes]] = {}
        for raw in text.split(b"\n"):
            line = raw.strip()
            if not line or line.startswith(b"#"):
                continue
            oid, tag, value = line.split(b"|", 2)
            records[parse_oid(oid.decode())] = (tag.decode(), value)
        self.records = records
        self.oids = sorted(records)

    @classmethod
    def read(cls, path: Path) -> Snmprec:
        raw = path.read_bytes()
        return cls(bz2.decompress(raw) if path.suffix == ".bz2" else raw)

    def tag(self, oid: Oidt) -> int:
        return int(self.records[oid][0].split(":")[0].rstrip("xe"))

    def value(self, oid: Oidt) -> bytes:
        """The recorded value as a BER TLV."""
        return _value_tlv(*self.records[oid])

    def walk(self, prefix: Oidt) -> list[VarBind]:
        """Every recorded OID under `prefix` with its value as the collector would read it."""
        start = bisect.bisect_left(self.oids, prefix)
        end = bisect.bisect_left(self.oids, (*prefix[:-1], prefix[-1] + 1))
        return decode([(oid, self.value(oid)) for oid in self.oids[start:end]])

    def column(self, column: str) -> dict[int, Value | EndOfMibView | None]:
        """A table column indexed by one number (IF-MIB's): {index: value}."""
        prefix = parse_oid(column)
        return {oid[-1]: value for oid, value in self.walk(prefix) if len(oid) == len(prefix) + 1}

    def get(self, oids: Sequence[Oidt], *, v1: bool = False) -> list[tuple[Oidt, bytes]]:
        answer = []
        for oid in oids:
            if oid in self.records and not (v1 and self.tag(oid) == _COUNTER64):
                answer.append((oid, self.value(oid)))
            else:
                at = bisect.bisect_right(self.oids, oid[:-1])
                known = at < len(self.oids) and self.oids[at][: len(oid) - 1] == oid[:-1]
                answer.append((oid, _NO_SUCH_INSTANCE if known else _NO_SUCH_OBJECT))
        return answer

    def get_next(self, oids: Sequence[Oidt], *, v1: bool = False) -> list[tuple[Oidt, bytes]]:
        answer = []
        for oid in oids:
            at = bisect.bisect_right(self.oids, oid)
            while v1 and at < len(self.oids) and self.tag(self.oids[at]) == _COUNTER64:
                at += 1
            if at == len(self.oids):
                answer.append((oid, _END_OF_MIB_VIEW))
            else:
                answer.append((self.oids[at], self.value(self.oids[at])))
        return answer

    def get_bulk(
        self, oids: Sequence[Oidt], max_repetitions: int, max_varbinds: int | None
    ) -> list[tuple[Oidt, bytes]]:
        """Non-repeaters 0 (all the collector sends): rows of GETNEXT, each from the last."""
        repetitions = max_repetitions
        if max_varbinds is not None and oids:
            repetitions = min(repetitions, max(1, max_varbinds // len(oids)))
        answer: list[tuple[Oidt, bytes]] = []
        cursors = list(oids)
        for _ in range(repetitions if cursors else 0):
            row = self.get_next(cursors)
            answer += row
            if all(value == _END_OF_MIB_VIEW for _, value in row):
                break
            cursors = [oid for oid, _ in row]
        return answer


def _value_tlv(tag: str, value: bytes) -> bytes:
    kind, _, module = tag.partition(":")
    if module:
        params = dict(part.split(b"=", 1) for part in value.split(b",") if b"=" in part)
        value = params.get(b"value", params.get(b"initial", params.get(b"min", b"0")))
    encoding = kind[-1] if kind[-1] in "xe" else ""
    identifier = int(kind.removesuffix(encoding))
    if identifier not in _TAGS:
        raise ValueError(f"snmprec tag {tag!r} is not an SNMP type")
    if encoding == "x":
        value = bytes.fromhex(value.decode())
    elif encoding == "e":
        value = codecs.escape_decode(value)[0]
    if identifier == 6:
        return ber.encode_oid(parse_oid(value.decode()))
    if identifier in _NUMBERS:
        number = int(value)
        value = number.to_bytes((number.bit_length() + 8) // 8, "big", signed=True)
    elif identifier == 64 and not encoding:
        value = bytes(int(part) for part in value.split(b"."))
    elif identifier in _EMPTY:
        value = b""
    return ber._tlv(identifier, value)


def decode(
    varbinds: Iterable[tuple[Oidt, bytes]], *, request_id: int = 1, version: int = 1,
    community: bytes = b"",
) -> list[VarBind]:  # fmt: skip
    """`varbinds` (value TLVs) sent as a Response message, read back by the product's codec."""
    body = b"".join(ber._tlv(0x30, ber.encode_oid(oid) + value) for oid, value in varbinds)
    fields = ber._integer(request_id) + ber._integer(0) + ber._integer(0)
    pdu = ber._tlv(ber.RESPONSE, fields + ber._tlv(0x30, body))
    message = ber._integer(version) + ber._tlv(0x04, community) + pdu
    return ber.decode_message(ber._tlv(0x30, message)).varbinds


@functools.cache
def load(path: Path) -> Snmprec:
    """Each recording is read once per test session (the biggest take about a second)."""
    return Snmprec.read(path)


class ReplayTransport:
    """client.Transport over a recording; counts requests as the UDP transport counts packets."""

    def __init__(self, recording: Snmprec, auth: CommunityAuth, max_varbinds: int | None) -> None:
        self._recording = recording
        self._auth = auth
        self._v1 = auth.version == "1"
        self._max_varbinds = max_varbinds
        self.sent = 0

    def packets_sent(self) -> int:
        return self.sent

    async def discover_engine_id(self) -> bytes:
        raise PollError("config", "SNMPv3 engine discovery on a replayed recording")

    async def get(self, oids: Sequence[Oidt]) -> list[VarBind]:
        return self._answer(self._recording.get(oids, v1=self._v1))

    async def bulk(self, oids: Sequence[Oidt], max_repetitions: int) -> list[VarBind]:
        if self._v1:  # like CommunityTransport: one GETNEXT row per request
            return self._answer(self._recording.get_next(oids, v1=True))
        return self._answer(self._recording.get_bulk(oids, max_repetitions, self._max_varbinds))

    def close(self) -> None:
        """Nothing to release."""

    def _answer(self, varbinds: Iterable[tuple[Oidt, bytes]]) -> list[VarBind]:
        self.sent += 1
        return decode(
            varbinds, request_id=self.sent, version=0 if self._v1 else 1,
            community=self._auth.community.encode(),
        )  # fmt: skip


class ReplaySessions(SnmpSessions):
    """SnmpSessions whose clients read recordings, keyed by community like snmpsim's."""

    def __init__(
        self, paths: Iterable[Path], *, max_varbinds: int | None = SNMPSIM_MAX_VAR_BINDS
    ) -> None:
        super().__init__()
        self._paths = {recording_name(path): path for path in paths}
        self._max_varbinds = max_varbinds

    async def client(
        self, host: str, port: int, auth: SnmpAuth, *, timeout: float = 2.0, retries: int = 1
    ) -> SnmpClient:
        if not isinstance(auth, CommunityAuth) or auth.community not in self._paths:
            # a v1/v2c agent drops a wrong community; a replay has no v3 engine
            raise PollError(
                "timeout", f"no SNMP answer from {host}:{port}: no recording for these credentials"
            )
        recording = load(self._paths[auth.community])
        return SnmpClient(ReplayTransport(recording, auth, self._max_varbinds))
