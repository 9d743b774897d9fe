"""Thin asyncio SNMP client over pysnmp 7.1 hlapi v3arch: GET and a multi-column GETBULK walk.

    client = await SnmpClient.create("127.0.0.1", 161, CommunityAuth("public"), timeout=2.0)
    await client.get(["1.3.6.1.2.1.1.5.0"])        -> {"1.3.6.1.2.1.1.5.0": "core-router"}
    await client.walk_columns(["1.3.6.1.2.1.2.2.1.2"])
        -> {"1.3.6.1.2.1.2.2.1.2": {"1": "ether1", "2": "ether2"}}
    client.requests, client.varbinds                 -> 2, 3

Values come back as plain Python: int (`Counter64` for 64-bit counters, so callers can refuse a
Counter32 where a Counter64 belongs), str (UTF-8 text), bytes (anything else), `Oid` (dotted
string). noSuchObject / noSuchInstance / endOfMibView are never values: the OID is just absent.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

from pyasn1.error import PyAsn1Error
from pyasn1.type import univ
from pysnmp.error import PySnmpError
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    bulk_cmd,
    get_cmd,
)
from pysnmp.proto import errind, rfc1902, rfc1905

from collectors.readings import PollError

log = logging.getLogger(__name__)

Oidt = tuple[int, ...]
RawVarBind = tuple[Oidt, object]  # (OID, pyasn1 value) as the agent sent it


class Counter64(int):
    """An int that arrived as SNMP Counter64 (ifHC* columns must be one)."""


class Oid(str):
    """A dotted OID string that arrived as an OBJECT IDENTIFIER value."""


Value = int | str | bytes


@dataclass(frozen=True, slots=True)
class CommunityAuth:
    """SNMPv1/v2c credentials. A later `UsmAuth` (v3) only needs the same two members."""

    community: str = field(repr=False)
    version: Literal["1", "2c"] = "2c"
    # Said when the agent stays silent: v1/v2c agents drop a wrong community without a word.
    silence_hint: ClassVar[str] = "check address, port, community or the device's SNMP ACL"

    def to_pysnmp(self) -> CommunityData:
        return CommunityData(self.community, mpModel=0 if self.version == "1" else 1)


SnmpAuth = CommunityAuth


def parse_oid(oid: str) -> Oidt:
    return tuple(int(part) for part in oid.strip(".").split("."))


def format_oid(oid: Oidt) -> str:
    return ".".join(map(str, oid))


def decode_value(value: object) -> Value | None:
    """pyasn1/pysnmp value -> plain Python; None for exceptions, Null and anything unknown."""
    if isinstance(
        value, rfc1905.NoSuchObject | rfc1905.NoSuchInstance | rfc1905.EndOfMibView | univ.Null
    ):
        return None
    if isinstance(value, rfc1902.IpAddress):
        return ".".join(str(octet) for octet in value.asOctets())
    if isinstance(value, univ.OctetString):  # also Opaque and Bits
        raw = value.asOctets()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw
    if isinstance(value, rfc1902.Counter64):
        return Counter64(value)
    if isinstance(value, univ.Integer):  # Integer32, Counter32, Gauge32, TimeTicks, Unsigned32
        return int(value)
    if isinstance(value, univ.ObjectIdentifier):
        return Oid(value.prettyPrint())
    return None


class Transport(Protocol):
    """What SnmpClient needs from the wire; raises PollError on any failure."""

    async def get(self, oids: Sequence[Oidt]) -> list[RawVarBind]: ...

    async def bulk(self, oids: Sequence[Oidt], max_repetitions: int) -> list[RawVarBind]: ...


class PysnmpTransport:
    """pysnmp hlapi v3arch. One SnmpEngine may serve many targets (pass the same `engine`)."""

    def __init__(self, engine: SnmpEngine, auth: SnmpAuth, target: UdpTransportTarget) -> None:
        self._engine = engine
        self._auth = auth
        self._auth_data = auth.to_pysnmp()
        self._target = target
        self._context = ContextData()

    @classmethod
    async def create(
        cls,
        host: str,
        port: int,
        auth: SnmpAuth,
        *,
        timeout: float,
        retries: int,
        engine: SnmpEngine,
    ) -> PysnmpTransport:
        try:
            target = await UdpTransportTarget.create((host, port), timeout=timeout, retries=retries)
        except PySnmpError as exc:  # getaddrinfo failed: unknown host name
            raise PollError("unreachable", f"cannot resolve {host}:{port}: {exc}") from None
        return cls(engine, auth, target)

    async def get(self, oids: Sequence[Oidt]) -> list[RawVarBind]:
        return await self._request(get_cmd, oids)

    async def bulk(self, oids: Sequence[Oidt], max_repetitions: int) -> list[RawVarBind]:
        return await self._request(bulk_cmd, oids, 0, max_repetitions)  # 0 non-repeaters

    async def _request(
        self, command: Callable[..., Awaitable[Any]], oids: Sequence[Oidt], *head: int
    ) -> list[RawVarBind]:
        request = [ObjectType(ObjectIdentity(oid)) for oid in oids]
        try:
            result = await command(
                self._engine, self._auth_data, self._target, self._context, *head, *request,
                lookupMib=False,
            )  # fmt: skip
        except PyAsn1Error as exc:
            raise PollError("decode", f"undecodable answer: {exc}") from None
        except (PySnmpError, OSError) as exc:
            raise PollError("unreachable", f"cannot send to the agent: {exc}") from None
        return self._check(result)

    def _check(self, result: tuple[Any, Any, Any, Sequence[Any]]) -> list[RawVarBind]:
        error_indication, error_status, error_index, var_binds = result
        host, port = self._target.transport_address
        if isinstance(error_indication, errind.RequestTimedOut):
            raise PollError(
                "timeout",
                f"no SNMP answer from {host}:{port} after {self._target.retries + 1} "
                f"tries of {self._target.timeout:g}s: {self._auth.silence_hint}",
            )
        if isinstance(error_indication, errind.DeserializationError):
            raise PollError("decode", f"undecodable answer from {host}:{port}: {error_indication}")
        if error_indication:
            raise PollError("protocol", f"SNMP error from {host}:{port}: {error_indication}")
        if error_status:
            where = ""
            if 0 < int(error_index) <= len(var_binds):
                where = f" at {var_binds[int(error_index) - 1][0].prettyPrint()}"
            raise PollError(
                "protocol", f"agent {host}:{port} answered {error_status.prettyPrint()}{where}"
            )
        return [(tuple(oid), value) for oid, value in var_binds]


class SnmpClient:
    """GET and multi-column GETBULK over a Transport; counts PDUs sent and varbinds received."""

    def __init__(self, transport: Transport, *, max_requests: int = 200) -> None:
        self._transport = transport
        self.max_requests = max_requests  # per walk_columns call; a broken agent stops here
        self.requests = 0
        self.varbinds = 0

    @classmethod
    async def create(
        cls,
        host: str,
        port: int,
        auth: SnmpAuth,
        *,
        timeout: float = 2.0,
        retries: int = 1,
        engine: SnmpEngine,
    ) -> SnmpClient:
        transport = await PysnmpTransport.create(
            host, port, auth, timeout=timeout, retries=retries, engine=engine
        )
        return cls(transport)

    async def get(self, oids: Sequence[str]) -> dict[str, Value]:
        self.requests += 1
        answer = await self._transport.get([parse_oid(oid) for oid in oids])
        self.varbinds += len(answer)
        result: dict[str, Value] = {}
        for oid, raw in answer:
            value = decode_value(raw)
            if value is not None:
                result[format_oid(oid)] = value
        return result

    async def walk_columns(
        self, column_oids: Sequence[str], *, max_repetitions: int = 25
    ) -> dict[str, dict[str, Value]]:
        """Walk table columns side by side: every GETBULK carries each unfinished column once.

        A column ends when the agent leaves its subtree, says endOfMibView, or answers an OID
        that does not increase (a broken agent; the rows read so far are kept).
        """
        columns = list(dict.fromkeys(column_oids))
        prefixes = {column: parse_oid(column) for column in columns}
        cursors = dict(prefixes)
        result: dict[str, dict[str, Value]] = {column: {} for column in columns}
        active = columns
        sent = 0
        while active:
            if sent >= self.max_requests:
                raise PollError(
                    "protocol",
                    f"table walk of {len(columns)} columns unfinished after {sent} requests",
                )
            sent += 1
            self.requests += 1
            answer = await self._transport.bulk([cursors[c] for c in active], max_repetitions)
            self.varbinds += len(answer)
            done = _advance(active, prefixes, cursors, result, answer)
            if not answer:  # an agent that answers nothing would be asked again forever
                break
            active = [column for column in active if column not in done]
        return result


def _advance(
    active: list[str],
    prefixes: dict[str, Oidt],
    cursors: dict[str, Oidt],
    result: dict[str, dict[str, Value]],
    answer: list[RawVarBind],
) -> set[str]:
    """Apply one GETBULK answer; return the columns that are finished.

    With non-repeaters = 0, varbind i of the answer continues requested column i mod n
    (RFC 3416 4.2.3), also when the agent truncated the answer.
    """
    done: set[str] = set()
    for position, (oid, raw) in enumerate(answer):
        column = active[position % len(active)]
        if column in done:
            continue
        prefix = prefixes[column]
        if isinstance(raw, rfc1905.EndOfMibView) or oid[: len(prefix)] != prefix:
            done.add(column)
            continue
        if oid <= cursors[column]:
            log.warning("agent returned non-increasing OID %s; column ends", format_oid(oid))
            done.add(column)
            continue
        cursors[column] = oid
        value = decode_value(raw)
        if value is not None:
            result[column][format_oid(oid[len(prefix) :])] = value
    return done
