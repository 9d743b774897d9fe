"""Thin asyncio SNMP client over pysnmp 7.1 hlapi v3arch: GET and a multi-column GETBULK walk.

    client = await SnmpClient.create("127.0.0.1", 161, CommunityAuth("public"), timeout=2.0)
    await client.get(["1.3.6.1.2.1.1.5.0"])        -> {"1.3.6.1.2.1.1.5.0": "core-router"}
    await client.walk_columns(["1.3.6.1.2.1.2.2.1.2"])
        -> {"1.3.6.1.2.1.2.2.1.2": {"1": "ether1", "2": "ether2"}}
    client.requests, client.varbinds                 -> 2, 3

SNMPv3: `UsmAuth(user, "SHA-256", auth_password, "AES", priv_password)`; the collector first
asks `discover_engine_id()` and then binds the credentials to that engine (`for_engine`).
Auth failures are PollError("auth", ...) naming unknown user, wrong digest, decryption error
or time window.

Values come back as plain Python: int (`Counter64` for 64-bit counters, so callers can refuse a
Counter32 where a Counter64 belongs), str (UTF-8 text), bytes (anything else), `Oid` (dotted
string). noSuchObject / noSuchInstance / endOfMibView are never values: the OID is just absent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal, Protocol

from pyasn1.error import PyAsn1Error
from pyasn1.type import univ
from pysnmp.entity import config as engine_config
from pysnmp.error import PySnmpError
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    UsmUserData,
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
    """SNMPv1/v2c credentials (`UsmAuth` is the v3 counterpart, with the same members)."""

    community: str = field(repr=False)
    version: Literal["1", "2c"] = "2c"
    # Said when the agent stays silent: v1/v2c agents drop a wrong community without a word.
    silence_hint: ClassVar[str] = "check address, port, community or the device's SNMP ACL"

    def to_pysnmp(self) -> CommunityData:
        return CommunityData(self.community, mpModel=0 if self.version == "1" else 1)

    def context(self) -> ContextData:
        return ContextData()


AUTH_PROTOCOLS = {
    "MD5": engine_config.USM_AUTH_HMAC96_MD5,
    "SHA": engine_config.USM_AUTH_HMAC96_SHA,
    "SHA-224": engine_config.USM_AUTH_HMAC128_SHA224,
    "SHA-256": engine_config.USM_AUTH_HMAC192_SHA256,
    "SHA-384": engine_config.USM_AUTH_HMAC256_SHA384,
    "SHA-512": engine_config.USM_AUTH_HMAC384_SHA512,
}
# AES-192/256 with the key extension net-snmp and Cisco use (draft-reeder), not Blumenthal's.
PRIV_PROTOCOLS = {
    "DES": engine_config.USM_PRIV_CBC56_DES,
    "AES": engine_config.USM_PRIV_CFB128_AES,
    "AES-128": engine_config.USM_PRIV_CFB128_AES,
    "AES-192": engine_config.USM_PRIV_CFB192_AES,
    "AES-256": engine_config.USM_PRIV_CFB256_AES,
}


@dataclass(frozen=True, slots=True)
class UsmAuth:
    """SNMPv3 USM credentials; no auth protocol = noAuthNoPriv, no priv protocol = authNoPriv.

    pysnmp's USM table holds one row per (engine ID, user name), so the user is installed for
    the agent's own engine ID (`for_engine`), learnt by `discover_engine_id`: two devices with
    the same user name but different keys then never share, or overwrite, a row. Passphrases
    are hashed to master keys once (RFC 3414 A.2 hashes 1 MB per passphrase).
    """

    user: str
    auth_protocol: str | None = None
    auth_password: str | None = field(default=None, repr=False)
    priv_protocol: str | None = None
    priv_password: str | None = field(default=None, repr=False)
    context_name: str = ""
    engine_id: bytes | None = None
    version: ClassVar[str] = "3"
    # v3 agents answer a wrong user or key with a report, so silence means the path is wrong.
    silence_hint: ClassVar[str] = "check address, port and the device's SNMP ACL"
    _keys: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.auth_protocol is None and self.priv_protocol is not None:
            raise PollError("config", "SNMPv3 privacy needs an auth_protocol too")
        for protocol, table, what in (
            (self.auth_protocol, AUTH_PROTOCOLS, "auth"),
            (self.priv_protocol, PRIV_PROTOCOLS, "priv"),
        ):
            if protocol is not None and protocol not in table:
                raise PollError("config", f"unknown SNMPv3 {what} protocol {protocol!r}")

    @property
    def security_level(self) -> str:
        if self.auth_protocol is None:
            return "noAuthNoPriv"
        return "authNoPriv" if self.priv_protocol is None else "authPriv"

    def for_engine(self, engine_id: bytes | None) -> UsmAuth:
        """The same credentials bound to one agent's engine ID (master keys are shared)."""
        return replace(self, engine_id=engine_id, _keys=self._keys)

    def to_pysnmp(self) -> UsmUserData:
        if self.auth_protocol is None:
            return UsmUserData(self.user, securityEngineId=self.engine_id)
        if not self._keys:
            self._keys.update(self._master_keys())
        return UsmUserData(self.user, securityEngineId=self.engine_id, **self._keys)

    def context(self) -> ContextData:
        return ContextData(contextName=self.context_name.encode())

    def _master_keys(self) -> dict[str, Any]:
        assert self.auth_protocol is not None
        auth = AUTH_PROTOCOLS[self.auth_protocol]
        auth_key = engine_config.AUTH_SERVICES[auth].hash_passphrase(
            (self.auth_password or "").encode()
        )
        keys: dict[str, Any] = {
            "authKey": bytes(auth_key),
            "authProtocol": auth,
            "authKeyType": engine_config.USM_KEY_TYPE_MASTER,
        }
        if self.priv_protocol is not None:
            priv = PRIV_PROTOCOLS[self.priv_protocol]
            priv_key = engine_config.PRIV_SERVICES[priv].hash_passphrase(
                auth, (self.priv_password or "").encode()
            )
            keys |= {
                "privKey": bytes(priv_key),
                "privProtocol": priv,
                "privKeyType": engine_config.USM_KEY_TYPE_MASTER,
            }
        return keys


SnmpAuth = CommunityAuth | UsmAuth


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


# The user name a discovery probe carries; agents answer it with a report that names their
# engine ID (RFC 3414 4), whether or not such a user exists.
_DISCOVERY_USER = "erozgar-engine-discovery"
_SYS_NAME = (1, 3, 6, 1, 2, 1, 1, 5, 0)


@dataclass
class _EngineWatch:
    """What one SnmpEngine saw per (host, port): datagrams sent (retries included) and the
    authoritative engine ID of the latest SNMPv3 message received."""

    packets: dict[tuple[str, int], int] = field(default_factory=dict)
    engine_ids: dict[tuple[str, int], bytes] = field(default_factory=dict)

    def observe(
        self, _engine: SnmpEngine, point: str, variables: dict[str, Any], _ctx: Any
    ) -> None:
        address = variables.get("transportAddress")
        if not address:
            return
        key = (str(address[0]), int(address[1]))
        if point == "rfc3412.sendPdu":
            self.packets[key] = self.packets.get(key, 0) + 1
            return
        engine_id = variables.get("securityEngineId")
        if variables.get("securityModel") == 3 and engine_id:
            self.engine_ids[key] = bytes(engine_id)


_WATCHES: weakref.WeakKeyDictionary[SnmpEngine, _EngineWatch] = weakref.WeakKeyDictionary()


def _watch(engine: SnmpEngine) -> _EngineWatch:
    watch = _WATCHES.get(engine)
    if watch is None:
        watch = _WATCHES[engine] = _EngineWatch()
        engine.observer.register_observer(
            watch.observe, "rfc3412.sendPdu", "rfc3412.prepareDataElements:internal"
        )
    return watch


async def close_engine(engine: SnmpEngine) -> None:
    """Close a shared engine while answers may be in flight (the agent stopping).

    pysnmp hands each datagram it reads to the loop (call_soon); close_dispatcher() right away
    unregisters the transport first, and an answer already read then ends in an "Unregistered
    transport" traceback from asyncio. So stop reading, let the loop deliver what was read
    (one pass), then close.
    """
    dispatcher = engine.transport_dispatcher
    if dispatcher is not None:
        with contextlib.suppress(PySnmpError):  # no poll ever opened the transport
            dispatcher.get_transport(UdpTransportTarget.TRANSPORT_DOMAIN).close_transport()
        await asyncio.sleep(0)
    engine.close_dispatcher()


def _forget_peer_engine(engine: SnmpEngine, host: str, port: int) -> None:
    """Drop pysnmp's cached engine ID of (host, port) so the next message rediscovers it.

    pysnmp 7.1.30 keeps a peer's engine ID for 300 s and, meanwhile, discards the reports of an
    agent that restarted with a new one (usm 3.2.3: unknown engine), so a reset device would
    stay dark for five minutes. There is no public call for this; the attribute is checked.
    """
    model = engine.message_processing_subsystems.get(3)
    cache = getattr(model, "_SnmpV3MessageProcessingModel__engineIdCache", None)
    if isinstance(cache, dict):
        for key in [k for k in cache if tuple(k[1][:2]) == (host, port)]:
            del cache[key]


class Transport(Protocol):
    """What SnmpClient needs from the wire; raises PollError on any failure."""

    async def discover_engine_id(self) -> bytes: ...

    def packets_sent(self) -> int: ...

    async def get(self, oids: Sequence[Oidt]) -> list[RawVarBind]: ...

    async def bulk(self, oids: Sequence[Oidt], max_repetitions: int) -> list[RawVarBind]: ...


class PysnmpTransport:
    """pysnmp hlapi v3arch. One SnmpEngine may serve many targets (pass the same `engine`)."""

    def __init__(self, engine: SnmpEngine, auth: SnmpAuth, target: UdpTransportTarget) -> None:
        self._engine = engine
        self._auth = auth
        self._target = target
        self._context = auth.context()

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

    def packets_sent(self) -> int:
        """Datagrams this engine has sent to the target so far, retries included."""
        host, port = self._target.transport_address[:2]
        return _watch(self._engine).packets.get((str(host), int(port)), 0)

    async def get(self, oids: Sequence[Oidt]) -> list[RawVarBind]:
        return await self._request(get_cmd, oids)

    async def discover_engine_id(self) -> bytes:
        """The agent's SNMPv3 engine ID, from its answer to a probe with an unknown user."""
        seen = _watch(self._engine).engine_ids
        host, port = self._target.transport_address[:2]
        seen.pop((host, port), None)
        _forget_peer_engine(self._engine, host, port)
        try:
            result = await get_cmd(
                self._engine, UsmUserData(_DISCOVERY_USER), self._target, ContextData(),
                ObjectType(ObjectIdentity(_SYS_NAME)), lookupMib=False,
            )  # fmt: skip
        except (PyAsn1Error, PySnmpError, OSError) as exc:
            raise PollError("unreachable", f"cannot send to the agent: {exc}") from None
        engine_id = seen.get((host, port))
        if engine_id is not None:
            return engine_id
        self._check(result)  # raises for a timeout and the like
        raise PollError("protocol", f"agent {host}:{port} did not reveal its SNMPv3 engine ID")

    async def bulk(self, oids: Sequence[Oidt], max_repetitions: int) -> list[RawVarBind]:
        return await self._request(bulk_cmd, oids, 0, max_repetitions)  # 0 non-repeaters

    async def _request(
        self, command: Callable[..., Awaitable[Any]], oids: Sequence[Oidt], *head: int
    ) -> list[RawVarBind]:
        request = [ObjectType(ObjectIdentity(oid)) for oid in oids]
        try:
            result = await command(
                self._engine, self._auth.to_pysnmp(), self._target, self._context, *head,
                *request, lookupMib=False,
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
        if isinstance(error_indication, _AUTH_ERRORS):
            raise PollError("auth", f"{host}:{port}: {_auth_message(error_indication, self._auth)}")
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


# Report PDUs of RFC 3414 (usmStats*) as pysnmp raises them, and the local USM's own verdicts.
_AUTH_ERRORS = (
    errind.UnknownUserName,
    errind.UnknownSecurityName,
    errind.WrongDigest,
    errind.AuthenticationFailure,
    errind.DecryptionError,
    errind.NotInTimeWindow,
    errind.UnsupportedSecurityLevel,
    errind.UnknownEngineID,
)


def _auth_message(indication: errind.ErrorIndication, auth: SnmpAuth) -> str:
    user = getattr(auth, "user", "?")
    if isinstance(indication, errind.UnknownUserName | errind.UnknownSecurityName):
        return f"the agent has no SNMPv3 user {user!r} (unknown user name)"
    if isinstance(indication, errind.WrongDigest | errind.AuthenticationFailure):
        return (
            f"wrong auth key for SNMPv3 user {user!r} (wrong digest): check auth_password "
            "and auth_protocol"
        )
    if isinstance(indication, errind.DecryptionError):
        return (
            f"wrong priv key for SNMPv3 user {user!r} (decryption error): check priv_password "
            "and priv_protocol"
        )
    if isinstance(indication, errind.NotInTimeWindow):
        return "SNMPv3 message not in time window even after re-synchronising with the agent"
    if isinstance(indication, errind.UnsupportedSecurityLevel):
        level = getattr(auth, "security_level", "?")
        return f"the agent refuses security level {level} for SNMPv3 user {user!r}"
    return "the agent's SNMPv3 engine ID could not be discovered (unknown engine ID)"


class SnmpClient:
    """GET and multi-column GETBULK over a Transport; counts PDUs sent and varbinds received."""

    def __init__(self, transport: Transport, *, max_requests: int = 5000) -> None:
        self._transport = transport
        self.max_requests = max_requests  # per walk_columns call; a broken agent stops here
        self.requests = 0
        self.varbinds = 0
        self._packets_before = transport.packets_sent()

    @property
    def packets(self) -> int:
        """Datagrams sent by this client so far (requests plus retries and v3 discovery)."""
        return self._transport.packets_sent() - self._packets_before

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

    async def discover_engine_id(self) -> bytes:
        self.requests += 1
        return await self._transport.discover_engine_id()

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
        self,
        column_oids: Sequence[str],
        *,
        max_repetitions: int = 25,
        answered: dict[str, float] | None = None,
    ) -> dict[str, dict[str, Value]]:
        """Walk table columns side by side: every GETBULK carries each unfinished column once.

        A column ends when the agent leaves its subtree, says endOfMibView, or answers an OID
        that does not increase (a broken agent; the rows read so far are kept). `answered`, when
        given, receives each row's time.monotonic() of arrival: a large table spans several
        answers, and a rate must divide by the time between two reads of the same row.
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
            arrived = time.monotonic()
            self.varbinds += len(answer)
            done = _advance(active, prefixes, cursors, result, answer, answered, arrived)
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
    answered: dict[str, float] | None = None,
    arrived: float = 0.0,
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
            row = format_oid(oid[len(prefix) :])
            result[column][row] = value
            if answered is not None:
                answered.setdefault(row, arrived)
    return done
