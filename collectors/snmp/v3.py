"""SNMPv3 over pysnmp 7.1 hlapi v3arch: USM keys, engine-ID discovery, report PDUs.

Only SNMPv3 devices need pysnmp (community devices use community.py), and it costs ~23 MB of
imports and ~0.09 CPU-s an engine, so this module is imported at the first v3 device
(client.SnmpSessions). Values come back decoded (values.py), like every transport's.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyasn1.error import PyAsn1Error
from pyasn1.type import univ
from pysnmp.entity import config as engine_config
from pysnmp.error import PySnmpError
from pysnmp.hlapi.v3arch.asyncio import (
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

from .client import UsmAuth
from .values import END_OF_MIB_VIEW, Counter64, EndOfMibView, Oid, Oidt, Value, VarBind

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


def usm_user_data(auth: UsmAuth) -> UsmUserData:
    """pysnmp's credentials for `auth`; passphrases are hashed to master keys once per user
    (RFC 3414 A.2 hashes 1 MB per passphrase) and kept in the UsmAuth."""
    if auth.auth_protocol is None:
        return UsmUserData(auth.user, securityEngineId=auth.engine_id)
    if not auth.keys:
        auth.keys.update(_master_keys(auth))
    return UsmUserData(auth.user, securityEngineId=auth.engine_id, **auth.keys)


def _master_keys(auth: UsmAuth) -> dict[str, Any]:
    assert auth.auth_protocol is not None
    protocol = AUTH_PROTOCOLS[auth.auth_protocol]
    auth_key = engine_config.AUTH_SERVICES[protocol].hash_passphrase(
        (auth.auth_password or "").encode()
    )
    keys: dict[str, Any] = {
        "authKey": bytes(auth_key),
        "authProtocol": protocol,
        "authKeyType": engine_config.USM_KEY_TYPE_MASTER,
    }
    if auth.priv_protocol is not None:
        priv = PRIV_PROTOCOLS[auth.priv_protocol]
        priv_key = engine_config.PRIV_SERVICES[priv].hash_passphrase(
            protocol, (auth.priv_password or "").encode()
        )
        keys |= {
            "privKey": bytes(priv_key),
            "privProtocol": priv,
            "privKeyType": engine_config.USM_KEY_TYPE_MASTER,
        }
    return keys


def decode_value(value: object) -> Value | EndOfMibView | None:
    """pyasn1/pysnmp value -> plain Python; None for noSuch*, Null and anything unknown."""
    if isinstance(value, rfc1905.EndOfMibView):
        return END_OF_MIB_VIEW
    if isinstance(value, rfc1905.NoSuchObject | rfc1905.NoSuchInstance | univ.Null):
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


class PysnmpTransport:
    """SNMPv3 through pysnmp hlapi v3arch; one SnmpEngine serves many targets."""

    def __init__(self, engine: SnmpEngine, auth: UsmAuth, target: UdpTransportTarget) -> None:
        self._engine = engine
        self._auth = auth
        self._target = target
        self._context = ContextData(contextName=auth.context_name.encode())

    @classmethod
    async def create(
        cls,
        host: str,
        port: int,
        auth: UsmAuth,
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

    def close(self) -> None:
        """Nothing to release: the engine outlives a poll and SnmpSessions closes it."""

    def packets_sent(self) -> int:
        """Datagrams this engine has sent to the target so far, retries included."""
        host, port = self._target.transport_address[:2]
        return _watch(self._engine).packets.get((str(host), int(port)), 0)

    async def get(self, oids: Sequence[Oidt]) -> list[VarBind]:
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

    async def bulk(self, oids: Sequence[Oidt], max_repetitions: int) -> list[VarBind]:
        return await self._request(bulk_cmd, oids, 0, max_repetitions)  # 0 non-repeaters

    async def _request(
        self, command: Callable[..., Awaitable[Any]], oids: Sequence[Oidt], *head: int
    ) -> list[VarBind]:
        request = [ObjectType(ObjectIdentity(oid)) for oid in oids]
        try:
            result = await command(
                self._engine, usm_user_data(self._auth), self._target, self._context, *head,
                *request, lookupMib=False,
            )  # fmt: skip
        except PyAsn1Error as exc:
            raise PollError("decode", f"undecodable answer: {exc}") from None
        except (PySnmpError, OSError) as exc:
            raise PollError("unreachable", f"cannot send to the agent: {exc}") from None
        return self._check(result)

    def _check(self, result: tuple[Any, Any, Any, Sequence[Any]]) -> list[VarBind]:
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
        return [(tuple(oid), decode_value(value)) for oid, value in var_binds]


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


def _auth_message(indication: errind.ErrorIndication, auth: UsmAuth) -> str:
    user = auth.user
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
        return f"the agent refuses security level {auth.security_level} for SNMPv3 user {user!r}"
    return "the agent's SNMPv3 engine ID could not be discovered (unknown engine ID)"
