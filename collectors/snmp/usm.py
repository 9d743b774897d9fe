"""SNMPv3 with the User-based Security Model (USM) over our BER codec: the v3 transport.

    clocks: EngineClocks = {}                          # SnmpSessions holds one for all devices
    transport = UsmTransport(host, 161, auth, timeout=2, retries=1, clocks=clocks)
    engine_id = await transport.discover_engine_id()   # RFC 3414 4: the empty-engine-ID probe
    bound = UsmTransport(host, 161, auth.for_engine(engine_id), ..., clocks=clocks)
    await bound.bulk([(1, 3, 6, 1, 2, 1, 2, 2, 1, 10)], 25)

Why our own: measured on snmpsim's cisco-c3560 recording over SHA/AES-128, names cached as
the daemon polls (bench/v3_candidates.py; bench/RESULTS.md "SNMPv3 candidates"), this module
spent 0.0144 CPU-s a poll, 1.4x the v2c path's 0.0105; pysnmp 7.1 spent 0.105 (7.3x: pyasn1
and its message-processing layers) and ezsnmp 2.5 (net-snmp)
0.104 just to send the same 18 requests and read their results (it runs a net-snmp command
line per call: about 4 ms of CPU even for a one-OID GET). ezsnmp also blocks, so in this
asyncio daemon every call would need a thread, and its wheel brings its own libnetsnmp and
OpenSSL. The crypto itself is microseconds a datagram (HMAC from hmac.digest, the ciphers from
libcrypto.py: both on the OpenSSL hashlib already loads; the `cryptography` package cost 8.7 MB
RSS); the rest is the socket flow (udp.py) and BER (ber.py) that the v2c path already has.

What it does (RFC 3412 message, RFC 3414 USM):
- keys: each passphrase hashed over 1 MB once per user (RFC 3414 A.2.1, cached in
  UsmAuth.keys), localised once per engine ID (A.2.2). When AES-192/256 need a longer key
  than the auth hash gives (MD5 or SHA-1 auth; SHA-224 for AES-256), two incompatible
  extensions exist, named as the peers name them: AES-192/256 by draft-blumenthal-aes-usm-04
  3.1.2.1 (Kul || H(Kul), repeated: net-snmp's AES-192/256 and gosnmp's AES192/256, so
  snmp_exporter's), AES-192C/256C by draft-reeder-snmpv3-usm-3desede 2.1 (the password-to-key
  steps again, on the key so far: Cisco, net-snmp's AES-192-C, gosnmp's AES192C, and what
  pysnmp and snmpsim call AES192/256). With a long enough hash both give the same key.
- auth: HMAC-MD5-96 and HMAC-SHA-96 (RFC 3414), HMAC-SHA-224/256/384/512 (RFC 7860);
  privacy: DES-CBC (RFC 3414 8.1), AES-128/192/256-CFB (RFC 3826).
- timeliness: the agent's boots and time (EngineClocks, per host, port and engine ID) from
  discovery and from every authenticated message; a notInTimeWindow report (the agent
  restarted with the same engine ID: boots moved) re-synchronises and the request is sent
  once more.
- failures: the agent's reports become PollErrors naming the cause (unknown user, wrong
  digest, decryption error, time window, security level, engine ID, context). An answer that
  fails its HMAC is dropped as forged; one that authenticates but does not decrypt means the
  priv key differs.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from collectors.readings import PollError

from . import ber, libcrypto
from .client import PRIV_KEY_LENGTH, UnknownEngineId, UsmAuth
from .udp import UdpExchange
from .values import Oidt, VarBind, format_oid

# auth protocol -> (hashlib name, HMAC length on the wire)
_AUTH: dict[str, tuple[str, int]] = {
    "MD5": ("md5", 12),
    "SHA": ("sha1", 12),
    "SHA-224": ("sha224", 16),
    "SHA-256": ("sha256", 24),
    "SHA-384": ("sha384", 32),
    "SHA-512": ("sha512", 48),
}
MAX_MESSAGE_SIZE = 65507  # msgMaxSize: the largest UDP payload over IPv4
_USM_STATS = (1, 3, 6, 1, 6, 3, 15, 1, 1)  # usmStats*, RFC 3414 5
_UNSUPPORTED_LEVEL, _NOT_IN_TIME_WINDOW, _UNKNOWN_USER, _UNKNOWN_ENGINE_ID = 1, 2, 3, 4
_WRONG_DIGEST, _DECRYPTION_ERROR = 5, 6
_UNKNOWN_CONTEXT = (1, 3, 6, 1, 6, 3, 12, 1, 5, 0)  # snmpUnknownContexts, RFC 3413
_UNAVAILABLE_CONTEXT = (1, 3, 6, 1, 6, 3, 12, 1, 4, 0)
_salts = itertools.count(random.getrandbits(63))  # privacy salts: never twice per key


def password_to_key(password: bytes, auth_protocol: str) -> bytes:
    """RFC 3414 A.2.1: the master key Ku, the hash of the passphrase repeated to 1 MB."""
    if not password:
        raise PollError("config", "an SNMPv3 password must not be empty")
    repeated = password * (1_048_576 // len(password) + 1)
    return hashlib.new(_AUTH[auth_protocol][0], repeated[:1_048_576]).digest()


def localize_key(master: bytes, engine_id: bytes, auth_protocol: str) -> bytes:
    """RFC 3414 A.2.2: Kul = H(Ku || engineID || Ku)."""
    return hashlib.new(_AUTH[auth_protocol][0], master + engine_id + master).digest()


def localize_priv_key(
    master: bytes, engine_id: bytes, auth_protocol: str, priv_protocol: str
) -> bytes:
    """The localised privacy key, extended when the cipher needs more than the hash gives:
    AES-192C/256C by draft-reeder 2.1, AES-192/256 by draft-blumenthal 3.1.2.1."""
    needed = PRIV_KEY_LENGTH[priv_protocol]
    key = localize_key(master, engine_id, auth_protocol)
    while len(key) < needed:
        if priv_protocol.endswith("C"):
            key += localize_key(password_to_key(key, auth_protocol), engine_id, auth_protocol)
        else:
            key += hashlib.new(_AUTH[auth_protocol][0], key).digest()
    return key[:needed]


@dataclass(frozen=True, slots=True)
class LocalKeys:
    """One user's keys localised to one engine ID."""

    auth_protocol: str
    auth: bytes
    priv_protocol: str | None
    priv: bytes
    # keyed once: a copy of it signs a message in 1.4 us, hmac.digest in 2.0 (1,400 octets)
    _mac: hmac.HMAC = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        mac = hmac.new(self.auth, digestmod=_AUTH[self.auth_protocol][0])  # C, on OpenSSL
        object.__setattr__(self, "_mac", mac)

    def digest(self, message: bytes) -> bytes:
        mac = self._mac.copy()
        mac.update(message)
        return mac.digest()[: _AUTH[self.auth_protocol][1]]

    def encrypt(self, plaintext: bytes, boots: int, engine_time: int) -> tuple[bytes, bytes]:
        """(ciphertext, msgPrivacyParameters) of a scoped PDU."""
        if self.priv_protocol == "DES":  # RFC 3414 8.1.1.1: salt = boots || local counter
            salt = boots.to_bytes(4, "big") + (next(_salts) % 2**32).to_bytes(4, "big")
            padded = plaintext + bytes(-len(plaintext) % 8)
            return libcrypto.des_cbc(self.priv[:8], self._des_iv(salt), padded, encrypt=True), salt
        salt = (next(_salts) % 2**64).to_bytes(8, "big")  # RFC 3826 3.1.2.1
        iv = self._aes_iv(boots, engine_time, salt)
        return libcrypto.aes_cfb(self.priv, iv, plaintext, encrypt=True), salt

    def decrypt(self, ciphertext: bytes, salt: bytes, boots: int, engine_time: int) -> bytes:
        """The plaintext; BerError when the parameters cannot be right (RFC 3414 8.3.2)."""
        if len(salt) != 8:
            raise ber.BerError("msgPrivacyParameters is not 8 octets")
        if self.priv_protocol == "DES":
            if len(ciphertext) % 8:
                raise ber.BerError("DES ciphertext is not a multiple of 8 octets")
            return libcrypto.des_cbc(self.priv[:8], self._des_iv(salt), ciphertext, encrypt=False)
        iv = self._aes_iv(boots, engine_time, salt)
        return libcrypto.aes_cfb(self.priv, iv, ciphertext, encrypt=False)

    def _des_iv(self, salt: bytes) -> bytes:  # RFC 3414 8.1.1.1: pre-IV xor salt
        return bytes(a ^ b for a, b in zip(self.priv[8:16], salt, strict=True))

    @staticmethod
    def _aes_iv(boots: int, engine_time: int, salt: bytes) -> bytes:  # RFC 3826 3.1.2.1
        return boots.to_bytes(4, "big") + engine_time.to_bytes(4, "big") + salt


def local_keys(auth: UsmAuth, engine_id: bytes) -> LocalKeys | None:
    """`auth`'s keys for `engine_id` (None for noAuthNoPriv). Master keys are hashed once per
    user and localised keys once per engine, both kept in auth.keys (shared by for_engine)."""
    if auth.auth_protocol is None:
        return None
    cached = auth.keys.get(engine_id)
    if cached is not None:
        return cached
    masters = auth.keys.get(None)
    if masters is None:
        masters = auth.keys[None] = (
            password_to_key((auth.auth_password or "").encode(), auth.auth_protocol),
            password_to_key((auth.priv_password or "").encode(), auth.auth_protocol)
            if auth.priv_protocol is not None
            else b"",
        )
    priv = b""
    if auth.priv_protocol is not None:
        priv = localize_priv_key(masters[1], engine_id, auth.auth_protocol, auth.priv_protocol)
    keys = LocalKeys(
        auth.auth_protocol,
        localize_key(masters[0], engine_id, auth.auth_protocol),
        auth.priv_protocol,
        priv,
    )
    auth.keys[engine_id] = keys
    return keys


@dataclass(frozen=True, slots=True)
class EngineClock:
    """An agent's snmpEngineBoots and snmpEngineTime as learnt at `at` (time.monotonic)."""

    boots: int
    time: int
    at: float

    def now(self) -> tuple[int, int]:
        return self.boots, min(self.time + int(time.monotonic() - self.at), 2**31 - 1)


EngineClocks = dict[tuple[str, int, bytes], EngineClock]


@dataclass(frozen=True, slots=True)
class _Answer:
    message: ber.V3Message
    pdu: ber.Pdu


class UsmTransport:
    """GET and GETBULK to one agent over SNMPv3 USM; raises PollError on any failure."""

    def __init__(
        self,
        host: str,
        port: int,
        auth: UsmAuth,
        *,
        timeout: float,
        retries: int,
        clocks: EngineClocks,
    ) -> None:
        self.host = host
        self.port = port
        self._auth = auth
        self._clocks = clocks
        self._msg_id = random.randrange(1, 2**31 - 1)
        self._udp = UdpExchange(
            host, port, timeout=timeout, retries=retries, silence_hint=auth.silence_hint
        )

    def packets_sent(self) -> int:
        return self._udp.sent

    def close(self) -> None:
        self._udp.close()

    async def discover_engine_id(self) -> bytes:
        """The agent's engine ID from its report to a probe with no engine ID, no user and no
        varbinds (RFC 3414 4); its boots and time come with it. Later requests use it."""
        answer = await self._send(b"", None, ber.GET, [])
        engine_id = answer.message.usm.engine_id
        if not engine_id:
            raise PollError(
                "protocol", f"agent {self.host}:{self.port} did not reveal its SNMPv3 engine ID"
            )
        self._learn(engine_id, answer.message.usm, force=True)
        self._auth = self._auth.for_engine(engine_id)
        return engine_id

    async def get(self, oids: Sequence[Oidt]) -> list[VarBind]:
        return await self._request(ber.GET, oids)

    async def bulk(self, oids: Sequence[Oidt], max_repetitions: int) -> list[VarBind]:
        return await self._request(ber.GETBULK, oids, max_repetitions)

    async def _request(
        self, pdu_type: int, oids: Sequence[Oidt], max_repetitions: int = 0
    ) -> list[VarBind]:
        engine_id = self._auth.engine_id
        if engine_id is None:
            engine_id = await self.discover_engine_id()
        keys = local_keys(self._auth, engine_id)
        answer = await self._send(engine_id, keys, pdu_type, oids, max_repetitions)
        if _report(answer) == _NOT_IN_TIME_WINDOW and keys is not None:
            # the agent restarted (boots moved) or its clock stepped: its report carries the
            # boots and time it expects now; send once more with them
            self._learn(engine_id, answer.message.usm, force=True)
            answer = await self._send(engine_id, keys, pdu_type, oids, max_repetitions)
        if answer.pdu.pdu_type == ber.REPORT:
            raise self._report_error(answer)
        return self._varbinds(answer.pdu, oids)

    async def _send(
        self,
        engine_id: bytes,
        keys: LocalKeys | None,
        pdu_type: int,
        oids: Sequence[Oidt],
        max_repetitions: int = 0,
    ) -> _Answer:
        """One request, re-sent as udp.py does; returns its Response or a Report."""
        user = self._auth.user.encode() if engine_id else b""
        context = self._auth.context_name.encode() if engine_id else b""
        flags = ber.REPORTABLE_FLAG
        if keys is not None:
            flags |= ber.AUTH_FLAG | (ber.PRIV_FLAG if keys.priv_protocol else 0)
        tries: set[int] = set()

        def encode() -> bytes:
            self._msg_id = self._msg_id % (2**31 - 1) + 1
            tries.add(self._msg_id)
            clock = self._clocks.get((self.host, self.port, engine_id))
            boots, engine_time = clock.now() if clock is not None and keys else (0, 0)
            scoped = ber.encode_scoped_pdu(
                engine_id, context,
                ber.encode_pdu(pdu_type, self._msg_id, oids, 0, max_repetitions),
            )  # fmt: skip
            salt = b""
            if flags & ber.PRIV_FLAG:
                assert keys is not None
                scoped, salt = keys.encrypt(scoped, boots, engine_time)
            digest = bytes(_AUTH[keys.auth_protocol][1]) if keys is not None else b""
            usm = ber.UsmParameters(engine_id, boots, engine_time, user, digest, salt)
            wire, auth_at = ber.encode_v3_message(
                self._msg_id, MAX_MESSAGE_SIZE, flags, usm, scoped
            )
            if keys is None:
                return wire
            return wire[:auth_at] + keys.digest(wire) + wire[auth_at + len(digest) :]

        def match(datagram: bytes) -> _Answer | None:
            message = ber.decode_v3_message(datagram)
            if message.msg_id not in tries or message.security_model != 3:
                return None
            if message.flags & ber.PRIV_FLAG and not message.flags & ber.AUTH_FLAG:
                raise ber.BerError("privacy without authentication")
            if message.flags & ber.AUTH_FLAG:
                if keys is None or not self._authentic(datagram, message, engine_id, keys):
                    return None  # forged, damaged, or meant for another user or engine
                self._learn(engine_id, message.usm)
            scoped = message.data
            if message.flags & ber.PRIV_FLAG:
                assert keys is not None
                usm = message.usm
                scoped = keys.decrypt(scoped, usm.priv, usm.boots, usm.time)
                try:
                    _, _, pdu = ber.decode_scoped_pdu(scoped)
                except ber.BerError:  # it authenticated, so it came from the agent
                    raise self._auth_error(_DECRYPTION_ERROR) from None
            else:
                _, _, pdu = ber.decode_scoped_pdu(scoped)
            if pdu.pdu_type == ber.REPORT:
                return _Answer(message, pdu)
            if pdu.pdu_type != ber.RESPONSE or pdu.request_id not in tries:
                return None
            if (message.flags & 3) != (flags & 3):  # RFC 3412 7.2.13: the request's level
                return None
            return _Answer(message, pdu)

        return await self._udp.exchange(encode, match)

    def _authentic(
        self, datagram: bytes, message: ber.V3Message, engine_id: bytes, keys: LocalKeys
    ) -> bool:
        usm = message.usm
        if usm.engine_id != engine_id or usm.user != self._auth.user.encode():
            return False
        size = len(usm.auth)
        if size != _AUTH[keys.auth_protocol][1]:
            return False
        zeroed = datagram[: message.auth_at] + bytes(size) + datagram[message.auth_at + size :]
        return hmac.compare_digest(keys.digest(zeroed), usm.auth)

    def _learn(self, engine_id: bytes, usm: ber.UsmParameters, *, force: bool = False) -> None:
        """Keep the agent's boots and time: always when `force`, else when they are later than
        what we hold (RFC 3414 3.2.7 b: an authentic message can only move the clock on)."""
        key = (self.host, self.port, engine_id)
        clock = self._clocks.get(key)
        if force or clock is None or (usm.boots, usm.time) > clock.now():
            self._clocks[key] = EngineClock(usm.boots, usm.time, time.monotonic())

    def _varbinds(self, pdu: ber.Pdu, oids: Sequence[Oidt]) -> list[VarBind]:
        status, index = pdu.error_status, pdu.error_index
        if status:
            where = f" at {format_oid(oids[index - 1])}" if 0 < index <= len(oids) else ""
            raise PollError(
                "protocol",
                f"agent {self.host}:{self.port} answered {ber.error_name(status)}{where}",
            )
        return pdu.varbinds

    def _report_error(self, answer: _Answer) -> PollError:
        """The PollError that an agent's report PDU names."""
        stat = _report(answer)
        if stat is not None:
            return self._auth_error(stat)
        oid = answer.pdu.varbinds[0][0] if answer.pdu.varbinds else ()
        if oid in (_UNKNOWN_CONTEXT, _UNAVAILABLE_CONTEXT):
            state = "unknown" if oid == _UNKNOWN_CONTEXT else "unavailable"
            return PollError(
                "protocol",
                f"{self.host}:{self.port}: the agent has no SNMPv3 context "
                f"{self._auth.context_name!r} ({state} context)",
            )
        return PollError(
            "protocol", f"agent {self.host}:{self.port} answered a report {format_oid(oid)}"
        )

    def _auth_error(self, stat: int) -> PollError:
        user = self._auth.user
        messages = {
            _UNSUPPORTED_LEVEL: f"the agent refuses security level {self._auth.security_level} "
            f"for SNMPv3 user {user!r}",
            _NOT_IN_TIME_WINDOW: "SNMPv3 message not in time window even after "
            "re-synchronising with the agent",
            _UNKNOWN_USER: f"the agent has no SNMPv3 user {user!r} (unknown user name)",
            _UNKNOWN_ENGINE_ID: "the agent's SNMPv3 engine ID changed or could not be "
            "discovered (unknown engine ID)",
            _WRONG_DIGEST: f"wrong auth key for SNMPv3 user {user!r} (wrong digest): check "
            "auth_password and auth_protocol",
            _DECRYPTION_ERROR: f"wrong priv key for SNMPv3 user {user!r} (decryption error): "
            f"check priv_password and priv_protocol{self._auth.priv_key_hint()}",
        }
        message = f"{self.host}:{self.port}: " + messages.get(stat, f"usmStats {stat} reported")
        if stat == _UNKNOWN_ENGINE_ID:
            return UnknownEngineId(message)
        return PollError("auth", message)


def _report(answer: _Answer) -> int | None:
    """The usmStats counter a report names (1-6), None for a Response or any other report."""
    if answer.pdu.pdu_type != ber.REPORT or not answer.pdu.varbinds:
        return None
    oid = answer.pdu.varbinds[0][0]
    if oid[: len(_USM_STATS)] == _USM_STATS and len(oid) == len(_USM_STATS) + 2:
        return oid[len(_USM_STATS)]
    return None
