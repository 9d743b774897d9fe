"""SNMP for the collectors: credentials, transports, and GET plus a multi-column GETBULK walk.

    sessions = SnmpSessions()                       # one per event loop, shared by all devices
    client = await sessions.client("127.0.0.1", 161, CommunityAuth("public"), timeout=2.0)
    await client.get(["1.3.6.1.2.1.1.5.0"])        -> {"1.3.6.1.2.1.1.5.0": "core-router"}
    await client.walk_columns(["1.3.6.1.2.1.2.2.1.2"])
        -> {"1.3.6.1.2.1.2.2.1.2": {"1": "ether1", "2": "ether2"}}
    client.requests, client.varbinds                 -> 2, 3
    client.close(); await sessions.close()

SNMPv1/v2c go through community.py, SNMPv3 through usm.py (our own USM, imported at the first
v3 device), both over our BER codec (ber.py: pyasn1 decoding was two thirds of the agent's CPU)
and one UDP socket per poll (udp.py).
SNMPv3: `UsmAuth(user, "SHA-256", auth_password, "AES", priv_password)`; the collector first
asks `discover_engine_id()`, which binds the client to that engine, and later polls bind new
clients to it (`for_engine`).
Auth failures are PollError("auth", ...) naming unknown user, wrong digest, decryption error
or time window. Values are plain Python (values.py).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from collectors.readings import PollError

from .community import CommunityTransport
from .values import EndOfMibView, Oidt, Value, VarBind, format_oid, parse_oid

if TYPE_CHECKING:
    from .usm import EngineClocks

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CommunityAuth:
    """SNMPv1/v2c credentials (`UsmAuth` is the v3 counterpart, with the same members)."""

    community: str = field(repr=False)
    version: Literal["1", "2c"] = "2c"
    # Said when the agent stays silent: v1/v2c agents drop a wrong community without a word.
    silence_hint: ClassVar[str] = "check address, port, community or the device's SNMP ACL"


AUTH_PROTOCOLS = ("MD5", "SHA", "SHA-224", "SHA-256", "SHA-384", "SHA-512")
# AES-192/256: a key too short is extended by Blumenthal's draft (net-snmp, gosnmp); the C
# variants by Reeder's, as Cisco does (usm.py). The peers' own names.
PRIV_PROTOCOLS = ("DES", "AES", "AES-128", "AES-192", "AES-256", "AES-192C", "AES-256C")
# the localised key: as long as the auth hash's digest; each cipher's key (DES: key + pre-IV)
KEY_LENGTH = {"MD5": 16, "SHA": 20, "SHA-224": 28, "SHA-256": 32, "SHA-384": 48, "SHA-512": 64}
PRIV_KEY_LENGTH = {"DES": 16, "AES": 16, "AES-128": 16, "AES-192": 24, "AES-256": 32,
                   "AES-192C": 24, "AES-256C": 32}  # fmt: skip


@dataclass(frozen=True, slots=True)
class UsmAuth:
    """SNMPv3 USM credentials; no auth protocol = noAuthNoPriv, no priv protocol = authNoPriv.

    Keys are localised to the agent's own engine ID (`for_engine`), learnt by
    `discover_engine_id`, and each device has its own UsmAuth: two devices with the same user
    name but different keys never share a key. `keys`, shared by every `for_engine` copy,
    caches what usm.py derives: under None the master keys (the passphrases hashed once), under
    each engine ID the keys localised to it.
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
    keys: dict[bytes | None, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.auth_protocol is None and self.priv_protocol is not None:
            raise PollError("config", "SNMPv3 privacy needs an auth_protocol too")
        for protocol, known, what in (
            (self.auth_protocol, AUTH_PROTOCOLS, "auth"),
            (self.priv_protocol, PRIV_PROTOCOLS, "priv"),
        ):
            if protocol is not None and protocol not in known:
                raise PollError("config", f"unknown SNMPv3 {what} protocol {protocol!r}")

    @property
    def security_level(self) -> str:
        if self.auth_protocol is None:
            return "noAuthNoPriv"
        return "authNoPriv" if self.priv_protocol is None else "authPriv"

    def priv_key_hint(self) -> str:
        """What to try when the priv key does not work although the password may be right:
        the other AES-192/256 key extension, when this user's auth hash is too short for the
        cipher's key (MD5 or SHA-1; SHA-224 for AES-256) so that one was used."""
        priv, auth = self.priv_protocol, self.auth_protocol
        if priv is None or auth is None or not priv.startswith(("AES-192", "AES-256")):
            return ""
        if KEY_LENGTH[auth] >= PRIV_KEY_LENGTH[priv]:
            return ""
        plain = priv.removesuffix("C")
        if priv.endswith("C"):
            return f" (or the device extends {plain} keys as net-snmp does: try {plain})"
        return f" (or the device extends {plain} keys the Cisco way: try {plain}C)"

    def for_engine(self, engine_id: bytes | None) -> UsmAuth:
        """The same credentials bound to one agent's engine ID (master keys are shared)."""
        return replace(self, engine_id=engine_id, keys=self.keys)


SnmpAuth = CommunityAuth | UsmAuth


class UnknownEngineId(PollError):
    """The agent no longer knows the engine ID the request carried (it came back with a new
    one, RFC 3414 3.2.3); the collector rediscovers it and reads again in the same poll."""

    def __init__(self, message: str) -> None:
        super().__init__("auth", message)


class Transport(Protocol):
    """What SnmpClient needs from the wire; raises PollError on any failure."""

    async def discover_engine_id(self) -> bytes: ...

    def packets_sent(self) -> int: ...

    async def get(self, oids: Sequence[Oidt]) -> list[VarBind]: ...

    async def bulk(self, oids: Sequence[Oidt], max_repetitions: int) -> list[VarBind]: ...

    def close(self) -> None: ...


class SnmpSessions:
    """Opens clients to agents, each with its own UDP socket for one poll. What outlives a
    poll is the SNMPv3 agents' boots and time (usm.EngineClocks), kept here for all devices;
    usm.py is imported at the first v3 device, so an agent with none never loads it."""

    def __init__(self) -> None:
        self._clocks: EngineClocks = {}

    async def client(
        self, host: str, port: int, auth: SnmpAuth, *, timeout: float = 2.0, retries: int = 1
    ) -> SnmpClient:
        if isinstance(auth, CommunityAuth):
            return SnmpClient(
                CommunityTransport(
                    host, port, auth.community, auth.version,
                    timeout=timeout, retries=retries, silence_hint=auth.silence_hint,
                )
            )  # fmt: skip
        from .usm import UsmTransport

        return SnmpClient(
            UsmTransport(host, port, auth, timeout=timeout, retries=retries, clocks=self._clocks)
        )

    async def close(self) -> None:
        """Forget the agents' clocks (the agent stopping); sockets close with each poll."""
        self._clocks.clear()


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

    def close(self) -> None:
        self._transport.close()

    async def discover_engine_id(self) -> bytes:
        self.requests += 1
        return await self._transport.discover_engine_id()

    async def get(self, oids: Sequence[str]) -> dict[str, Value]:
        self.requests += 1
        answer = await self._transport.get([parse_oid(oid) for oid in oids])
        self.varbinds += len(answer)
        result: dict[str, Value] = {}
        for oid, value in answer:
            if value is not None and not isinstance(value, EndOfMibView):
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
    answer: list[VarBind],
    answered: dict[str, float] | None = None,
    arrived: float = 0.0,
) -> set[str]:
    """Apply one GETBULK answer; return the columns that are finished.

    With non-repeaters = 0, varbind i of the answer continues requested column i mod n
    (RFC 3416 4.2.3), also when the agent truncated the answer.
    """
    done: set[str] = set()
    for position, (oid, value) in enumerate(answer):
        column = active[position % len(active)]
        if column in done:
            continue
        prefix = prefixes[column]
        if isinstance(value, EndOfMibView) or oid[: len(prefix)] != prefix:
            done.add(column)
            continue
        if oid <= cursors[column]:
            log.warning("agent returned non-increasing OID %s; column ends", format_oid(oid))
            done.add(column)
            continue
        cursors[column] = oid
        if value is not None:
            # Row indexes and port names repeat in every column and on every switch of a hub,
            # and the name columns are kept between polls: one copy of each string, not one per
            # device (Oid, a str subclass, cannot be interned and is rare).
            row = sys.intern(format_oid(oid[len(prefix) :]))
            result[column][row] = sys.intern(value) if type(value) is str else value
            if answered is not None:
                answered.setdefault(row, arrived)
    return done
