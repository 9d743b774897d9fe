"""SnmpCollector: the system group and IF-MIB interface table of one router or switch.

    reading = await SnmpCollector("127.0.0.1", 161, "public").poll()
    reading.sys_name                 -> "core-router"
    reading.interfaces[0]            -> InterfaceSample(index=1, name="ether1", alias="PTCL fibre",
                                        in_octets=81234567, counter_bits=64, speed_bps=1e9, ...)
    reading.requests, reading.varbinds -> 3, 97

One GET for the system scalars, one side-by-side GETBULK walk of the IF-MIB columns, and a second
walk of ifInOctets/ifOutOctets only when some interface has no 64-bit counters.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace

from pysnmp.hlapi.v3arch.asyncio import SnmpEngine

from collectors.readings import InterfaceSample, PollError, SnmpReading
from collectors.snmp.client import CommunityAuth, Counter64, Oid, SnmpClient, Value

log = logging.getLogger(__name__)

SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"  # TimeTicks, 1/100 s
SYS_NAME = "1.3.6.1.2.1.1.5.0"

IF_DESCR = "1.3.6.1.2.1.2.2.1.2"
IF_SPEED = "1.3.6.1.2.1.2.2.1.5"  # Gauge32 bit/s, saturates at 4294967295
IF_ADMIN_STATUS = "1.3.6.1.2.1.2.2.1.7"  # 1 up, 2 down, 3 testing
IF_OPER_STATUS = "1.3.6.1.2.1.2.2.1.8"  # 1 up, 2 down, 3 testing, 4 unknown, 5 dormant, ...
IF_IN_OCTETS = "1.3.6.1.2.1.2.2.1.10"  # Counter32
IF_IN_DISCARDS = "1.3.6.1.2.1.2.2.1.13"
IF_IN_ERRORS = "1.3.6.1.2.1.2.2.1.14"
IF_OUT_OCTETS = "1.3.6.1.2.1.2.2.1.16"  # Counter32
IF_OUT_DISCARDS = "1.3.6.1.2.1.2.2.1.19"
IF_OUT_ERRORS = "1.3.6.1.2.1.2.2.1.20"
IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"
IF_HC_IN_OCTETS = "1.3.6.1.2.1.31.1.1.1.6"  # Counter64
IF_HC_OUT_OCTETS = "1.3.6.1.2.1.31.1.1.1.10"  # Counter64
IF_HIGH_SPEED = "1.3.6.1.2.1.31.1.1.1.15"  # Gauge32, Mbit/s
IF_ALIAS = "1.3.6.1.2.1.31.1.1.1.18"

IF_COLUMNS = (
    IF_NAME, IF_DESCR, IF_ALIAS, IF_OPER_STATUS, IF_ADMIN_STATUS, IF_HIGH_SPEED, IF_SPEED,
    IF_HC_IN_OCTETS, IF_HC_OUT_OCTETS, IF_IN_ERRORS, IF_OUT_ERRORS, IF_IN_DISCARDS,
    IF_OUT_DISCARDS,
)  # fmt: skip
FALLBACK_COLUMNS = (IF_IN_OCTETS, IF_OUT_OCTETS)

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
    table: Mapping[str, Mapping[str, Value]], fallback: Mapping[str, Mapping[str, Value]]
) -> tuple[InterfaceSample, ...]:
    """IF-MIB columns {column: {index: value}} -> one InterfaceSample per row, sorted by index.

    A row exists when any ifTable column has it; ifXTable-only rows are ignored. Names are
    made unique ("name#index") where a device gives several rows the same one, so every port
    is its own series.
    """
    indexes: set[int] = set()
    for column in (IF_DESCR, IF_OPER_STATUS, IF_ADMIN_STATUS, IF_SPEED):
        indexes.update(int(suffix) for suffix in table.get(column, {}) if suffix.isdigit())

    def cell(columns: Mapping[str, Mapping[str, Value]], column: str, index: int) -> Value | None:
        return columns.get(column, {}).get(str(index))

    samples = []
    for index in sorted(indexes):
        in_octets = counter(cell(table, IF_HC_IN_OCTETS, index), 64)
        out_octets = counter(cell(table, IF_HC_OUT_OCTETS, index), 64)
        bits = 64
        if in_octets is None or out_octets is None:
            in_octets = counter(cell(fallback, IF_IN_OCTETS, index), 32)
            out_octets = counter(cell(fallback, IF_OUT_OCTETS, index), 32)
            bits = 32
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
            )
        )
    names = Counter(sample.name for sample in samples)
    return tuple(
        replace(sample, name=f"{sample.name}#{sample.index}") if names[sample.name] > 1 else sample
        for sample in samples
    )


def needs_fallback(table: Mapping[str, Mapping[str, Value]]) -> bool:
    """True when some ifTable row lacks a usable ifHCInOctets or ifHCOutOctets."""
    rows = set(table.get(IF_DESCR, {})) | set(table.get(IF_OPER_STATUS, {}))
    return any(
        counter(table.get(column, {}).get(row), 64) is None
        for row in rows
        for column in (IF_HC_IN_OCTETS, IF_HC_OUT_OCTETS)
    )


class SnmpCollector:
    """Polls one SNMP agent. Without `engine` each poll opens and closes its own SnmpEngine;
    pass one engine (created in the polling event loop) to share it across targets."""

    def __init__(
        self,
        host: str,
        port: int,
        community: str,
        *,
        version: str = "2c",
        timeout: float = 2.0,
        retries: int = 1,
        engine: SnmpEngine | None = None,
        max_repetitions: int = 25,
    ) -> None:
        if version not in ("1", "2c"):
            raise PollError("config", f"unsupported SNMP version {version!r} (use '1' or '2c')")
        self.host = host
        self.port = port
        self._auth = CommunityAuth(community, version="1" if version == "1" else "2c")
        self._timeout = timeout
        self._retries = retries
        self._engine = engine
        self._max_repetitions = max_repetitions

    def __repr__(self) -> str:
        return f"SnmpCollector({self.host!r}, {self.port}, version={self._auth.version!r})"

    async def poll(self) -> SnmpReading:
        engine = self._engine or SnmpEngine()
        try:
            return await self._poll(engine)
        finally:
            if self._engine is None:
                engine.close_dispatcher()

    async def close(self) -> None:
        """Nothing to release: a shared engine is closed by whoever created it."""

    async def _poll(self, engine: SnmpEngine) -> SnmpReading:
        client = await SnmpClient.create(
            self.host, self.port, self._auth,
            timeout=self._timeout, retries=self._retries, engine=engine,
        )  # fmt: skip
        system = await client.get([SYS_NAME, SYS_DESCR, SYS_OBJECT_ID, SYS_UPTIME])
        table = await client.walk_columns(IF_COLUMNS, max_repetitions=self._max_repetitions)
        fallback: dict[str, dict[str, Value]] = {}
        if needs_fallback(table):
            fallback = await client.walk_columns(
                FALLBACK_COLUMNS, max_repetitions=self._max_repetitions
            )
        uptime = system.get(SYS_UPTIME)
        object_id = system.get(SYS_OBJECT_ID)
        interfaces = build_interfaces(table, fallback)
        log.debug(
            "%s:%s: %d interfaces, %d requests, %d varbinds",
            self.host, self.port, len(interfaces), client.requests, client.varbinds,
        )  # fmt: skip
        return SnmpReading(
            sys_name=text(system.get(SYS_NAME)) or "",
            sys_descr=text(system.get(SYS_DESCR)) or "",
            sys_object_id=object_id if isinstance(object_id, Oid) else "",
            sys_uptime_ticks=uptime if isinstance(uptime, int) and uptime >= 0 else 0,
            interfaces=interfaces,
            requests=client.requests,
            varbinds=client.varbinds,
        )
