"""SnmpCollector: the system group and IF-MIB interface table of one router or switch.

    reading = await SnmpCollector("127.0.0.1", 161, "public").poll()
    reading.sys_name                 -> "core-router"
    reading.interfaces[0]            -> InterfaceSample(index=1, name="ether1", alias="PTCL fibre",
                                        in_octets=81234567, counter_bits=64, speed_bps=1e9, ...)
    reading.requests, reading.varbinds -> 3, 97

Per poll: one GET for the system scalars and ifNumber; a side-by-side GETBULK walk of only the
counter and status columns, or GETs of just the `pinned` rows; the 32-bit columns only for rows
without 64-bit counters; a walk of the name columns (ifName, ifDescr, ifAlias, ifSpeed,
ifHighSpeed, ifType) only when the caller has no usable copy (`known`; the agent caches it) or
the counter rows no longer match it (ports renumbered); and the health values of the device
profile chosen by sysObjectID (collectors/profiles/snmp/).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace

from collectors.readings import InterfaceNames, InterfaceSample, PollError, SnmpReading
from collectors.snmp.client import (
    CommunityAuth,
    SnmpAuth,
    SnmpClient,
    SnmpSessions,
    UnknownEngineId,
    UsmAuth,
)
from collectors.snmp.profile import health_samples, select_profile
from collectors.snmp.ups import detect_ups, read_ups
from collectors.snmp.values import Counter64, Oid, Value

log = logging.getLogger(__name__)

SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"  # TimeTicks, 1/100 s
SYS_NAME = "1.3.6.1.2.1.1.5.0"
IF_NUMBER = "1.3.6.1.2.1.2.1.0"

IF_DESCR = "1.3.6.1.2.1.2.2.1.2"
IF_TYPE = (
    "1.3.6.1.2.1.2.2.1.3"  # IANAifType: whether ifSpeed is a line rate (agent/checks/bandwidth.py)
)
IF_SPEED = "1.3.6.1.2.1.2.2.1.5"  # Gauge32 bit/s, saturates at 4294967295
IF_ADMIN_STATUS = "1.3.6.1.2.1.2.2.1.7"  # 1 up, 2 down, 3 testing
IF_OPER_STATUS = "1.3.6.1.2.1.2.2.1.8"  # 1 up, 2 down, 3 testing, 4 unknown, 5 dormant, ...
IF_IN_OCTETS = "1.3.6.1.2.1.2.2.1.10"  # Counter32
IF_IN_UCAST = "1.3.6.1.2.1.2.2.1.11"  # Counter32
IF_IN_DISCARDS = "1.3.6.1.2.1.2.2.1.13"
IF_IN_ERRORS = "1.3.6.1.2.1.2.2.1.14"
IF_OUT_OCTETS = "1.3.6.1.2.1.2.2.1.16"  # Counter32
IF_OUT_UCAST = "1.3.6.1.2.1.2.2.1.17"  # Counter32
IF_OUT_DISCARDS = "1.3.6.1.2.1.2.2.1.19"
IF_OUT_ERRORS = "1.3.6.1.2.1.2.2.1.20"
IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"
IF_HC_IN_OCTETS = "1.3.6.1.2.1.31.1.1.1.6"  # Counter64
IF_HC_IN_UCAST = "1.3.6.1.2.1.31.1.1.1.7"  # Counter64
IF_HC_OUT_OCTETS = "1.3.6.1.2.1.31.1.1.1.10"  # Counter64
IF_HC_OUT_UCAST = "1.3.6.1.2.1.31.1.1.1.11"  # Counter64
IF_HIGH_SPEED = "1.3.6.1.2.1.31.1.1.1.15"  # Gauge32, Mbit/s
IF_ALIAS = "1.3.6.1.2.1.31.1.1.1.18"
IF_COUNTER_DISCONTINUITY = "1.3.6.1.2.1.31.1.1.1.19"  # TimeStamp (sysUpTime ticks)

NAME_COLUMNS = (IF_NAME, IF_DESCR, IF_ALIAS, IF_HIGH_SPEED, IF_SPEED, IF_TYPE)
COUNTER_COLUMNS = (
    IF_OPER_STATUS, IF_ADMIN_STATUS, IF_HC_IN_OCTETS, IF_HC_OUT_OCTETS, IF_IN_ERRORS,
    IF_OUT_ERRORS, IF_IN_DISCARDS, IF_OUT_DISCARDS, IF_HC_IN_UCAST, IF_HC_OUT_UCAST,
    IF_COUNTER_DISCONTINUITY,
)  # fmt: skip
IF_COLUMNS = NAME_COLUMNS + COUNTER_COLUMNS
FALLBACK_COLUMNS = (IF_IN_OCTETS, IF_OUT_OCTETS, IF_IN_UCAST, IF_OUT_UCAST)
# varbinds per GET of pinned rows: well under the ~1,400-byte answers that avoid fragmentation
_GET_BATCH = 24

MAX_32 = 2**32 - 1
MAX_64 = 2**64 - 1


def text(value: Value | None) -> str | None:
    """DisplayString -> str; None for bytes that are not UTF-8 and for non-string types."""
    if isinstance(value, str) and not isinstance(value, Oid):
        return value.rstrip("\x00").strip()
    return None


def counter(value: Value | None, bits: int) -> int | None:
    """A counter of `bits` width, or None when the device sent a wrong type or range."""
    if not isinstance(value, int) or not 0 <= value <= (MAX_64 if bits == 64 else MAX_32):
        return None
    if (bits == 64) != isinstance(value, Counter64):
        return None
    return value


def gauge(value: Value | None) -> int | None:
    if isinstance(value, int) and not isinstance(value, Counter64) and 0 <= value <= MAX_32:
        return value
    return None


def status_up(value: Value | None) -> bool | None:
    """ifOperStatus / ifAdminStatus: True for up(1), False for any other known state."""
    if isinstance(value, int) and not isinstance(value, Counter64) and 1 <= value <= 7:
        return value == 1
    return None


def interface_name(index: int, if_name: str | None, if_descr: str | None) -> str:
    return if_name or if_descr or f"if{index}"


def speed_bps(high_speed: int | None, speed: int | None) -> float | None:
    """ifHighSpeed (Mbit/s) when above 0, else ifSpeed (bit/s, stuck at 4294967295 above 4 Gb/s)."""
    if high_speed:
        return high_speed * 1e6
    return float(speed) if speed is not None else None


def build_interfaces(
    table: Mapping[str, Mapping[str, Value]],
    fallback: Mapping[str, Mapping[str, Value]],
    answered: Mapping[str, float] | None = None,
) -> tuple[InterfaceSample, ...]:
    """IF-MIB columns {column: {index: value}} -> one InterfaceSample per row, sorted by index.

    A row exists when any ifTable column has it; ifXTable-only rows are ignored. Names are
    made unique ("name#index") where a device gives several rows the same one, so every port
    is its own series.
    """
    indexes = row_indexes(table)

    def cell(columns: Mapping[str, Mapping[str, Value]], column: str, index: int) -> Value | None:
        return columns.get(column, {}).get(str(index))

    samples = []
    for index in sorted(indexes):
        in_octets = counter(cell(table, IF_HC_IN_OCTETS, index), 64)
        out_octets = counter(cell(table, IF_HC_OUT_OCTETS, index), 64)
        in_packets = counter(cell(table, IF_HC_IN_UCAST, index), 64)
        out_packets = counter(cell(table, IF_HC_OUT_UCAST, index), 64)
        bits = 64
        if in_octets is None or out_octets is None:
            in_octets = counter(cell(fallback, IF_IN_OCTETS, index), 32)
            out_octets = counter(cell(fallback, IF_OUT_OCTETS, index), 32)
            bits = 32
        if in_packets is None or out_packets is None:
            in_packets = counter(cell(fallback, IF_IN_UCAST, index), 32)
            out_packets = counter(cell(fallback, IF_OUT_UCAST, index), 32)
        discontinuity = cell(table, IF_COUNTER_DISCONTINUITY, index)
        descr = text(cell(table, IF_DESCR, index))
        samples.append(
            InterfaceSample(
                index=index,
                name=interface_name(index, text(cell(table, IF_NAME, index)), descr),
                descr=descr or "",
                alias=text(cell(table, IF_ALIAS, index)) or "",
                oper_up=status_up(cell(table, IF_OPER_STATUS, index)),
                admin_up=status_up(cell(table, IF_ADMIN_STATUS, index)),
                speed_bps=speed_bps(
                    gauge(cell(table, IF_HIGH_SPEED, index)), gauge(cell(table, IF_SPEED, index))
                ),
                in_octets=in_octets,
                out_octets=out_octets,
                counter_bits=bits,
                in_errors=counter(cell(table, IF_IN_ERRORS, index), 32),
                out_errors=counter(cell(table, IF_OUT_ERRORS, index), 32),
                in_discards=counter(cell(table, IF_IN_DISCARDS, index), 32),
                out_discards=counter(cell(table, IF_OUT_DISCARDS, index), 32),
                in_packets=in_packets,
                out_packets=out_packets,
                discontinuity_ticks=gauge(discontinuity),
                read_at=answered.get(str(index)) if answered else None,
                if_type=gauge(cell(table, IF_TYPE, index)),
            )
        )
    names = Counter(sample.name for sample in samples)
    return tuple(
        replace(sample, name=f"{sample.name}#{sample.index}") if names[sample.name] > 1 else sample
        for sample in samples
    )


def row_indexes(table: Mapping[str, Mapping[str, Value]]) -> set[int]:
    """ifIndex values of the rows any ifTable column has (ifXTable-only rows do not count)."""
    indexes: set[int] = set()
    for column in (IF_DESCR, IF_OPER_STATUS, IF_ADMIN_STATUS, IF_SPEED):
        indexes.update(int(suffix) for suffix in table.get(column, {}) if suffix.isdigit())
    return indexes


def needs_fallback(table: Mapping[str, Mapping[str, Value]]) -> bool:
    """True when some ifTable row lacks a usable ifHCInOctets or ifHCOutOctets."""
    return any(
        counter(table.get(column, {}).get(str(row)), 64) is None
        for row in row_indexes(table)
        for column in (IF_HC_IN_OCTETS, IF_HC_OUT_OCTETS)
    )


def fallback_rows(table: Mapping[str, Mapping[str, Value]]) -> dict[int, tuple[str, ...]]:
    """Rows without usable 64-bit octet or unicast packet counters -> the 32-bit columns each
    needs instead, sorted by row."""
    needs: dict[int, tuple[str, ...]] = {}
    for row in sorted(row_indexes(table)):
        columns: tuple[str, ...] = ()
        for hc_pair, old_pair in (
            ((IF_HC_IN_OCTETS, IF_HC_OUT_OCTETS), (IF_IN_OCTETS, IF_OUT_OCTETS)),
            ((IF_HC_IN_UCAST, IF_HC_OUT_UCAST), (IF_IN_UCAST, IF_OUT_UCAST)),
        ):
            if any(counter(table.get(c, {}).get(str(row)), 64) is None for c in hc_pair):
                columns += old_pair
        if columns:
            needs[row] = columns
    return needs


def names_usable(known: InterfaceNames | None, if_number: int | None, uptime: int) -> bool:
    """A cached name table still describes the device: same ifNumber, and no restart since."""
    return known is not None and known.if_number == if_number and uptime >= known.uptime_ticks


class SnmpCollector:
    """Polls one SNMP agent. Pass the agent's SnmpSessions (created in the polling event loop)
    to keep v3 agents' engine IDs and clocks across polls; without one, each poll starts over."""

    def __init__(
        self,
        host: str,
        port: int,
        community: str = "",
        *,
        version: str = "2c",
        usm: UsmAuth | None = None,
        timeout: float = 2.0,
        retries: int = 1,
        sessions: SnmpSessions | None = None,
        max_repetitions: int = 25,
    ) -> None:
        if version not in ("1", "2c", "3"):
            raise PollError("config", f"unsupported SNMP version {version!r} (use 1, 2c or 3)")
        if version == "3" and usm is None:
            raise PollError("config", "SNMP version 3 needs a user")
        self.host = host
        self.port = port
        self._auth: SnmpAuth = (
            usm
            if version == "3" and usm is not None
            else CommunityAuth(community, version="1" if version == "1" else "2c")
        )
        self._timeout = timeout
        self._retries = retries
        self._sessions = sessions
        self._max_repetitions = max_repetitions
        # Like a kept connection: the v3 agent's engine ID, forgotten on any auth failure so
        # a replaced or reset device is rediscovered on the next poll.
        self._engine_id: bytes | None = None

    def __repr__(self) -> str:
        return f"SnmpCollector({self.host!r}, {self.port}, version={self._auth.version!r})"

    async def poll(
        self, known: InterfaceNames | None = None, pinned: Collection[int] | None = None
    ) -> SnmpReading:
        """One reading. `known`: the name columns of an earlier poll, reused unless ifNumber or a
        restart says the table changed. `pinned`: ifIndexes to GET instead of walking the
        counter columns (only used together with a usable `known`)."""
        sessions = self._sessions or SnmpSessions()
        try:
            return await self._poll(sessions, known, pinned)
        finally:
            if self._sessions is None:
                await sessions.close()

    async def close(self) -> None:
        """Nothing to release: shared SnmpSessions are closed by whoever created them."""

    async def _connect(self, sessions: SnmpSessions) -> SnmpClient:
        """A client for this poll; for v3 bound to the agent's engine ID (discovered once, by
        this client, so its datagrams count in the poll's packets)."""
        auth = self._auth
        if isinstance(auth, UsmAuth) and self._engine_id is not None and self._sessions is not None:
            auth = auth.for_engine(self._engine_id)
        client = await sessions.client(
            self.host, self.port, auth, timeout=self._timeout, retries=self._retries
        )
        if isinstance(auth, UsmAuth) and auth.engine_id is None:
            try:
                self._engine_id = await client.discover_engine_id()
            except BaseException:  # a PollError, or the poll cancelled: the socket closes
                client.close()
                raise
        return client

    async def _poll(
        self, sessions: SnmpSessions, known: InterfaceNames | None, pinned: Collection[int] | None
    ) -> SnmpReading:
        try:
            return await self._read_once(sessions, known, pinned)
        except PollError as exc:
            error = exc
        silent = error.reason == "timeout"
        if (silent or isinstance(error, UnknownEngineId)) and isinstance(self._auth, UsmAuth):
            engine_id = self._engine_id
            self._engine_id = None
            if engine_id is not None and await self._rediscovered(sessions, engine_id):
                # The agent came back with a new engine ID (a reset, or no persistent
                # storage) and refuses, or drops, what is meant for the old one. Read again.
                return await self._read_once(sessions, known, pinned)
            if silent:
                error = await self._explain_silence(sessions) or error
        if error.reason == "auth":
            self._engine_id = None
        raise error

    async def _read_once(
        self, sessions: SnmpSessions, known: InterfaceNames | None, pinned: Collection[int] | None
    ) -> SnmpReading:
        client = await self._connect(sessions)
        try:
            return await self._read(client, known, pinned)
        finally:
            client.close()

    async def _rediscovered(self, sessions: SnmpSessions, known: bytes) -> bool:
        """True when the agent answers discovery with an engine ID other than `known`."""
        probe = await sessions.client(
            self.host, self.port, self._auth, timeout=self._timeout, retries=0
        )
        try:
            engine_id = await probe.discover_engine_id()
        except PollError:
            return False
        finally:
            probe.close()
        if engine_id == known:
            self._engine_id = engine_id
            return False
        log.info("%s:%s: SNMPv3 engine ID changed; using the new one", self.host, self.port)
        self._engine_id = engine_id
        return True

    async def _explain_silence(self, sessions: SnmpSessions) -> PollError | None:
        """Why an authPriv request went unanswered, when the agent is there after all.

        Agents such as net-snmp drop a message they cannot decrypt without a report (RFC 3414
        3.2.8 allows it), so a wrong priv key looks like silence. If the agent answers an
        authNoPriv GET for the same user (even with authorizationError), user and auth key
        are right and the priv key is not.
        """
        auth = self._auth
        if not isinstance(auth, UsmAuth) or auth.priv_protocol is None:
            return None
        signed = UsmAuth(auth.user, auth.auth_protocol, auth.auth_password)
        probe = await sessions.client(
            self.host, self.port, signed, timeout=self._timeout, retries=0
        )
        try:
            await probe.discover_engine_id()
            await probe.get([SYS_NAME])
        except PollError as exc:
            if exc.reason == "auth":
                return exc
            if exc.reason != "protocol":  # an error-status answer is still an answer
                return None
        finally:
            probe.close()
        return PollError(
            "auth",
            f"{self.host}:{self.port}: wrong priv key for SNMPv3 user {auth.user!r} (decryption "
            "error: the agent answers signed requests but drops encrypted ones): check "
            "priv_password and priv_protocol",
        )

    async def _read(
        self, client: SnmpClient, known: InterfaceNames | None, pinned: Collection[int] | None
    ) -> SnmpReading:
        system = await client.get([SYS_NAME, SYS_DESCR, SYS_OBJECT_ID, SYS_UPTIME, IF_NUMBER])
        uptime_raw = system.get(SYS_UPTIME)
        uptime = uptime_raw if isinstance(uptime_raw, int) and uptime_raw >= 0 else 0
        if_number = gauge(system.get(IF_NUMBER))
        refreshed = not names_usable(known, if_number, uptime)
        use_pinned = pinned is not None and not refreshed
        # Counters first and back to back, timed: rates divide by the time between two reads,
        # which must not depend on whether names or health were read in the same poll.
        answered: dict[str, float] = {}  # row -> when its counters arrived (walks only)
        if use_pinned:
            assert pinned is not None
            counters = await self._get_rows(client, COUNTER_COLUMNS, sorted(pinned))
            if set(pinned) - row_indexes(counters):
                # a pinned row is gone (a PPPoE session re-created under a new ifIndex): the
                # cached names are stale; walk this once so the port is found where it is now
                refreshed, use_pinned = True, False
        if not use_pinned:
            counters = await client.walk_columns(
                COUNTER_COLUMNS, max_repetitions=self._max_repetitions, answered=answered
            )
        missing = fallback_rows(counters)
        wanted = [c for c in FALLBACK_COLUMNS if any(c in cols for cols in missing.values())]
        fallback: dict[str, dict[str, Value]] = {}
        if missing and use_pinned:
            fallback = await self._get_rows(client, wanted, sorted(missing))
        elif missing:
            late: dict[str, float] = {}
            fallback = await client.walk_columns(
                wanted, max_repetitions=self._max_repetitions, answered=late
            )
            for row, columns in missing.items():  # 32-bit octets: timed by the second walk
                if IF_IN_OCTETS in columns and str(row) in late:
                    answered[str(row)] = late[str(row)]
        read_at = time.monotonic()
        if known is not None and not refreshed and not use_pinned:
            # ports renumbered, appeared or went without ifNumber changing: the cached names
            # are stale (a name on a row that is gone would hide the port at its new index)
            refreshed = row_indexes(counters) != row_indexes(known.columns)
        names = await self._names(client, if_number, uptime) if refreshed else known
        assert names is not None
        table = {**names.columns, **counters}
        if use_pinned:
            assert pinned is not None
            table = _only_rows(table, pinned)
        object_id = system.get(SYS_OBJECT_ID)
        object_id = object_id if isinstance(object_id, Oid) else ""
        profile = select_profile(object_id)
        scalars = await client.get(profile.scalar_oids()) if profile.scalar_oids() else {}
        columns = await client.walk_columns(profile.columns()) if profile.columns() else {}
        # UPS over SNMP: a UPS card's values besides its IF-MIB ports (collectors/snmp/ups.py)
        ups_profile = await detect_ups(client, object_id)
        ups = await read_ups(client, ups_profile) if ups_profile is not None else None
        interfaces = build_interfaces(table, fallback, answered)
        log.debug(
            "%s:%s: %d interfaces, %d requests, %d varbinds",
            self.host, self.port, len(interfaces), client.requests, client.varbinds,
        )  # fmt: skip
        return SnmpReading(
            sys_name=text(system.get(SYS_NAME)) or "",
            sys_descr=text(system.get(SYS_DESCR)) or "",
            sys_object_id=object_id,
            sys_uptime_ticks=uptime,
            interfaces=interfaces,
            requests=client.requests,
            varbinds=client.varbinds,
            retries=max(0, client.packets - client.requests),
            health=health_samples(profile, scalars, columns),
            profile=profile.name,
            names=names,
            names_refreshed=refreshed,
            read_at=read_at,
            ups=ups,
        )

    async def _names(
        self, client: SnmpClient, if_number: int | None, uptime: int
    ) -> InterfaceNames:
        columns = await client.walk_columns(NAME_COLUMNS, max_repetitions=self._max_repetitions)
        return InterfaceNames(columns=columns, if_number=if_number, uptime_ticks=uptime)

    async def _get_rows(
        self, client: SnmpClient, columns: Sequence[str], rows: Sequence[int]
    ) -> dict[str, dict[str, Value]]:
        """GET `columns` of just these rows, batched; the answer shaped like a column walk."""
        oids = [f"{column}.{row}" for row in rows for column in columns]
        result: dict[str, dict[str, Value]] = {column: {} for column in columns}
        for start in range(0, len(oids), _GET_BATCH):
            answer = await client.get(oids[start : start + _GET_BATCH])
            for oid, value in answer.items():
                column, _, row = oid.rpartition(".")
                if column in result:
                    result[column][row] = value
        return result


def _only_rows(
    table: Mapping[str, Mapping[str, Value]], rows: Collection[int]
) -> dict[str, dict[str, Value]]:
    keep = {str(row) for row in rows}
    return {
        column: {k: v for k, v in cells.items() if k in keep} for column, cells in table.items()
    }
