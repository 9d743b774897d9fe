"""One active probe run to one target: several ICMP echoes or TCP connects, one RTT or loss each.

    reading = await probe(ProbeTarget("gateway", "10.0.0.1"), count=5, spacing=0.5, timeout=1)
    reading.rtts   # (0.0031, None, 0.0029, 0.0030, 0.0035): seconds, None = no reply in time

ICMP echo is written here (struct, checksum, identifier/sequence matching, asyncio) rather than
taken from a library. It uses the kernel's unprivileged ICMP sockets (SOCK_DGRAM, allowed for
the groups in /proc/sys/net/ipv4/ping_group_range) and falls back to a raw socket (root or
CAP_NET_RAW). A TCP target measures connect time instead; a refused connection still proves the
path works, so it counts as a reply. An IPv6 target gets ICMPv6 echoes (or a TCP connect over
IPv6). Probes may bind a source address per family and/or an interface (SO_BINDTODEVICE, see
Binding, which the DNS and HTTP probes share) so each uplink is measured on its own path.
Stateless: the link check in agent/checks/link_quality.py keeps the counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import os
import socket
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .readings import PollError
from .tcp import ConnectError, knock

PING_GROUP_RANGE = Path("/proc/sys/net/ipv4/ping_group_range")
# (echo request, echo reply) types: ICMP (RFC 792) and ICMPv6 (RFC 4443)
_ECHO = {socket.AF_INET: (8, 0), socket.AF_INET6: (128, 129)}
_HEADER = struct.Struct("!BBHHH")  # type, code, checksum, identifier, sequence
_PAYLOAD_BYTES = 56  # ping(8)'s default: 64-byte ICMP messages
_RECV_BYTES = 2048


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    name: str
    address: str  # an IPv4 or IPv6 address (validated in the config)
    tcp_port: int | None = None  # set: TCP connect instead of ICMP echo


@dataclass(frozen=True, slots=True)
class ProbeReading:
    """One probe run: per packet the round-trip time in seconds, or None when it was lost."""

    target: str
    address: str
    method: Literal["icmp", "tcp"]
    rtts: tuple[float | None, ...]
    note: str = ""  # why packets could not be sent (e.g. "network is unreachable"), else ""

    @property
    def sent(self) -> int:
        return len(self.rtts)

    @property
    def received(self) -> int:
        return sum(rtt is not None for rtt in self.rtts)


def checksum(data: bytes) -> int:
    """RFC 1071 Internet checksum."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(
    identifier: int, sequence: int, payload: bytes, family: int = socket.AF_INET
) -> bytes:
    """An echo request; for ICMPv6 the kernel fills in the checksum (it covers the IPv6
    pseudo-header, RFC 3542 section 3.1), so ours stays 0."""
    kind = _ECHO[family][0]
    header = _HEADER.pack(kind, 0, 0, identifier, sequence)
    if family == socket.AF_INET6:
        return header + payload
    return _HEADER.pack(kind, 0, checksum(header + payload), identifier, sequence) + payload


def parse_echo_reply(
    data: bytes, raw: bool, family: int = socket.AF_INET
) -> tuple[int, int, bytes] | None:
    """(identifier, sequence, payload) of an echo reply, else None (other ICMP, or garbage).

    A raw IPv4 socket delivers the IP header too; a datagram one, or any ICMPv6 one, does not.
    """
    if raw and family == socket.AF_INET:
        if len(data) < 20:
            return None
        data = data[(data[0] & 0x0F) * 4 :]
    if len(data) < _HEADER.size:
        return None
    kind, code, _, identifier, sequence = _HEADER.unpack_from(data)
    if kind != _ECHO[family][1] or code != 0:
        return None
    return identifier, sequence, data[_HEADER.size :]


def ping_group_allows(range_text: str, gids: set[int]) -> bool:
    """Whether ping_group_range ("low high") admits one of `gids`; "1 0" (the default) is none."""
    try:
        low, high = (int(part) for part in range_text.split())
    except ValueError:
        return False
    return any(low <= gid <= high for gid in gids)


def unprivileged_icmp_allowed() -> bool:
    """True when this process may open an unprivileged ICMP socket (by its groups)."""
    try:
        text = PING_GROUP_RANGE.read_text()
    except OSError:
        return False
    return ping_group_allows(text, {os.getegid(), *os.getgroups()})


def open_icmp_socket(family: int = socket.AF_INET) -> tuple[socket.socket, bool]:
    """(socket, raw): an unprivileged ICMP socket when the kernel allows it, else a raw one.
    ping_group_range governs ICMPv6 datagram sockets too."""
    proto = socket.IPPROTO_ICMPV6 if family == socket.AF_INET6 else socket.IPPROTO_ICMP
    try:
        return socket.socket(family, socket.SOCK_DGRAM, proto), False
    except PermissionError:
        pass
    try:
        return socket.socket(family, socket.SOCK_RAW, proto), True
    except PermissionError:
        raise PollError(
            "denied",
            "ICMP not permitted: this user's groups are outside "
            f"net.ipv4.ping_group_range ({_range_text()}) and it has no CAP_NET_RAW",
        ) from None


def _range_text() -> str:
    try:
        return " ".join(PING_GROUP_RANGE.read_text().split())
    except OSError:
        return "unreadable"


def _bind(sock: socket.socket, source_address: str | None, bind_interface: str | None) -> None:
    try:
        if bind_interface:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, bind_interface.encode())
        if source_address:
            sock.bind((source_address, 0))
    except OSError as exc:
        sock.close()
        what = (
            f"interface {bind_interface!r}"
            if exc.errno in (errno.ENODEV, errno.EPERM)
            else f"source address {source_address}"
        )
        raise PollError("config", f"cannot bind the probe to {what}: {exc.strerror}") from None


def family(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


@dataclass(frozen=True, slots=True)
class Binding:
    """Where a link's probes leave from: its source address of the target's family and/or its
    interface. Every probe of a link (ICMP, TCP, DNS, HTTP) opens its sockets here."""

    source_address: str | None = None  # IPv4
    source_address6: str | None = None
    interface: str | None = None

    @property
    def family(self) -> socket.AddressFamily:
        """The family a name should resolve to: a link bound to a source address of one family
        only reaches the other family by another path, so it must not be offered it."""
        if self.source_address and not self.source_address6:
            return socket.AF_INET
        if self.source_address6 and not self.source_address:
            return socket.AF_INET6
        return socket.AF_UNSPEC

    def source(self, address: str) -> str | None:
        return self.source_address6 if family(address) == socket.AF_INET6 else self.source_address

    def bind(self, sock: socket.socket, address: str) -> None:
        """Bind `sock` (of `address`'s family); PollError("config") when the box refuses."""
        _bind(sock, self.source(address), self.interface)

    def socket(self, address: str, kind: Literal["udp", "tcp"]) -> socket.socket:
        """A bound, non-blocking socket to reach `address` over `kind`."""
        sock_type = socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM
        sock = socket.socket(family(address), sock_type)
        self.bind(sock, address)
        sock.setblocking(False)
        return sock


UNBOUND = Binding()  # the route the kernel picks


def reason(exc: OSError) -> str:
    """A socket error as a probe's note: "network is unreachable"."""
    return (exc.strerror or str(exc) or type(exc).__name__).lower()


async def probe(
    target: ProbeTarget,
    *,
    count: int = 5,
    spacing: float = 0.5,
    timeout: float = 1.0,
    binding: Binding = UNBOUND,
) -> ProbeReading:
    """`count` packets `spacing` seconds apart; a reply later than `timeout` counts as lost.

    Raises PollError when the probe cannot run at all (ICMP not permitted, bad bind); lost
    packets, unreachable networks and silence are results, not errors.
    """
    if target.tcp_port is not None:
        return await _tcp_probe(target, count, spacing, timeout, binding)
    return await _icmp_probe(target, count, spacing, timeout, binding)


async def _icmp_probe(
    target: ProbeTarget, count: int, spacing: float, timeout: float, binding: Binding
) -> ProbeReading:
    af = family(target.address)
    sock, raw = open_icmp_socket(af)
    binding.bind(sock, target.address)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    want = ipaddress.ip_address(target.address)
    # A datagram socket gets its identifier from the kernel (it overwrites ours), which also
    # filters replies for us; a raw socket sees every echo reply on the box, so it needs its
    # own identifier and the random payload to tell its replies from another pinger's.
    identifier = int.from_bytes(os.urandom(2), "big")
    payload = os.urandom(8) + bytes(_PAYLOAD_BYTES - 8)
    sent_at: dict[int, float] = {}
    rtts: list[float | None] = [None] * count
    answered = asyncio.Event()
    note = ""

    async def receive() -> None:
        while True:
            data, (address, *_) = await loop.sock_recvfrom(sock, _RECV_BYTES)
            arrived = time.perf_counter()
            reply = parse_echo_reply(data, raw, af)
            if reply is None or ipaddress.ip_address(address.split("%")[0]) != want:
                continue
            ident, sequence, echoed = reply
            if echoed != payload or (raw and ident != identifier) or sequence not in sent_at:
                continue
            if rtts[sequence] is None and arrived - sent_at[sequence] <= timeout:
                rtts[sequence] = arrived - sent_at[sequence]
            if sum(r is not None for r in rtts) == len(sent_at):
                answered.set()

    receiver = asyncio.create_task(receive())
    try:
        for sequence in range(count):
            if sequence:
                await asyncio.sleep(spacing)
            packet = echo_request(identifier, sequence, payload, af)
            sent_at[sequence] = time.perf_counter()
            try:
                await loop.sock_sendto(sock, packet, (target.address, 0))
            except OSError as exc:
                del sent_at[sequence]
                note = reason(exc)
        answered.clear()  # it may have been set while only the first packets were out
        if sent_at and sum(r is not None for r in rtts) < len(sent_at):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(answered.wait(), timeout)
    except OSError as exc:
        note = reason(exc)
    finally:
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError, OSError):
            await receiver
        sock.close()
    return ProbeReading(target.name, target.address, "icmp", tuple(rtts), note)


async def _tcp_probe(
    target: ProbeTarget, count: int, spacing: float, timeout: float, binding: Binding
) -> ProbeReading:
    assert target.tcp_port is not None
    rtts: list[float | None] = []
    note = ""
    for attempt in range(count):
        if attempt:
            await asyncio.sleep(spacing)
        rtt, why = await _tcp_connect(target.address, target.tcp_port, timeout, binding)
        rtts.append(rtt)
        note = why or note
    return ProbeReading(target.name, target.address, "tcp", tuple(rtts), note)


async def _tcp_connect(
    address: str, port: int, timeout: float, binding: Binding
) -> tuple[float | None, str]:
    """(connect time or None, why it could not be sent)."""
    sock = binding.socket(address, "tcp")
    # Close with RST, not FIN: no TIME_WAIT sockets pile up on the agent's box.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    try:
        return await knock(address, port, timeout, sock), ""
    except ConnectError as exc:
        if exc.reason == "refused":  # the far end (or a firewall on the path) sent RST: it works
            return exc.seconds, ""
        return None, "" if exc.reason == "timeout" else str(exc).lower()
    finally:
        sock.close()
