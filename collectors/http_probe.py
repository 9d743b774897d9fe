"""One HTTP(S) GET of a configured URL, timed in phases as blackbox_exporter's http prober does.

    reading = await fetch_url(HttpTarget("pseb", "https://example.org/"), timeout=5)
    reading.status, reading.phases, reading.tls_expiry   # 200, (("resolve", 0.0), ...), 1.79e9

Phases, each the time since the previous one ended: resolve (the URL's host name, by the box's
resolver, to the family the link has a source address of; 0 for an address), connect (TCP),
tls (the handshake; 0 for http), processing (the request sent until the first byte of the
answer: the server's think time) and transfer (the rest of the body, read up to `max_bytes`).
Time to first byte is the sum of the first four.

Plain asyncio streams and ssl: one request, `Connection: close`, HTTP/1.1. Redirects are never
followed: a 3xx is reported with its Location, so a probe never measures a host nobody
configured; the check says where it points. The certificate is verified against the system's
CAs, or `ca_file`, and its notAfter is the expiry. Stateless; agent/checks/link_quality.py
counts the probes.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from .probe import UNBOUND, Binding, reason

Phase = Literal["resolve", "connect", "tls", "processing", "transfer"]
PHASES: tuple[Phase, ...] = ("resolve", "connect", "tls", "processing", "transfer")
_HEAD_BYTES = 65536  # status line and headers; more is not a web server we want to measure
_USER_AGENT = "erozgar-agent"


@dataclass(frozen=True, slots=True)
class HttpTarget:
    name: str
    url: str  # http:// or https:// (validated in the config)
    max_bytes: int = 1 << 20
    ca_file: str | None = None


@dataclass(frozen=True, slots=True)
class HttpReading:
    """One GET. `status` None: no answer came; `note` says in which phase it stopped."""

    target: str
    url: str
    address: str  # the address connected to ("" if the name did not resolve)
    status: int | None
    phases: tuple[tuple[Phase, float], ...]  # the phases finished, in order
    body_bytes: int  # read, at most max_bytes
    tls_expiry: float | None  # unix time the server's certificate expires (https only)
    location: str = ""  # a redirect's Location, not followed
    note: str = ""

    @property
    def ok(self) -> bool:
        """The server answered with a success or a redirect (a 4xx/5xx, or nothing, is not)."""
        return self.status is not None and 200 <= self.status < 400

    @property
    def first_byte(self) -> float | None:
        if self.status is None:
            return None
        return sum(seconds for phase, seconds in self.phases if phase != "transfer")


def request_head(
    host: str, port: int | None, path: str, method: str = "GET", headers: str = ""
) -> bytes:
    """One HTTP/1.1 request's head, `Connection: close`; `headers`: more CRLF-ended lines."""
    authority = host if ":" not in host else f"[{host}]"
    if port is not None:
        authority += f":{port}"
    return (
        f"{method} {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: {_USER_AGENT}\r\n"
        f"Accept: */*\r\n{headers}Connection: close\r\n\r\n"
    ).encode("ascii")


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    """(status, headers lower-cased) of a response head; ValueError if it is not HTTP."""
    lines = head.decode("iso-8859-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ValueError(f"not an HTTP status line: {lines[0][:60]!r}")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


async def fetch_url(
    target: HttpTarget, *, timeout: float = 5.0, binding: Binding = UNBOUND
) -> HttpReading:
    """GET `target.url` once within `timeout`; failures are results with a note. Raises
    PollError only when the socket cannot be bound."""
    url = urlsplit(target.url)
    host, secure = url.hostname or "", url.scheme == "https"
    port = url.port or (443 if secure else 80)
    phases: list[tuple[Phase, float]] = []
    mark = time.perf_counter()

    def lap(phase: Phase) -> None:
        nonlocal mark
        now = time.perf_counter()
        phases.append((phase, now - mark))
        mark = now

    address, status, body, expiry, location, note = "", None, 0, None, "", ""
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            address = await resolve(host, port, binding.family)
            lap("resolve")
            reader, writer = await open_stream(
                address, port, host, secure, binding, target.ca_file, lambda: lap("connect")
            )
            lap("tls")
            if secure:
                cert = writer.get_extra_info("peercert") or {}
                if "notAfter" in cert:
                    expiry = float(ssl.cert_time_to_seconds(cert["notAfter"]))
            writer.write(request_head(host, url.port, (url.path or "/") + _query(url.query)))
            head = await reader.readuntil(b"\r\n\r\n")
            lap("processing")
            status, headers = parse_head(head[:-4])
            location = headers.get("location", "") if 300 <= status < 400 else ""
            # Content-Length, where given, ends the body before the server closes.
            wanted = target.max_bytes
            if headers.get("content-length", "").isdigit():
                wanted = min(wanted, int(headers["content-length"]))
            while body < wanted:
                chunk = await reader.read(min(65536, wanted - body))
                if not chunk:
                    break
                body += len(chunk)
            lap("transfer")
    except TimeoutError:
        note = f"no {_next(phases, secure)} within {timeout:g} s"
    except asyncio.LimitOverrunError:
        note = f"the response head is over {_HEAD_BYTES // 1024} KiB"
    except asyncio.IncompleteReadError:
        note = "the server closed the connection before a complete response head"
    except ssl.SSLError as exc:
        note = f"TLS: {getattr(exc, 'verify_message', '') or exc.reason or exc}".lower()
    except ValueError as exc:
        note = str(exc)
    except OSError as exc:
        note = f"{_next(phases, secure)}: {reason(exc)}"
    finally:
        if writer is not None:
            writer.close()
    return HttpReading(
        target.name, target.url, address, status, tuple(phases), body, expiry, location, note
    )


async def resolve(host: str, port: int, family: int) -> str:
    """The address to connect to: the host itself if it is one (no lookup, so resolve takes
    no time), else the first the box's resolver gives of `family` (a Binding's)."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, family=family, type=socket.SOCK_STREAM)
    return str(infos[0][4][0])


async def open_stream(
    address: str,
    port: int,
    host: str,
    secure: bool,
    binding: Binding,
    ca_file: str | None = None,
    connected: Callable[[], None] = lambda: None,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A stream to `address`:`port` from a socket bound as the link's probes are, TLS to `host`
    (verified against the system's CAs or `ca_file`) when `secure`. `connected` is called once
    TCP is up, before the handshake. The HTTP probe and the capacity test's HTTP legs both
    connect here."""
    sock = binding.socket(address, "tcp")
    try:
        await asyncio.get_running_loop().sock_connect(sock, (address, port))
    except BaseException:
        sock.close()
        raise
    connected()
    return await asyncio.open_connection(
        sock=sock,
        ssl=_context(ca_file) if secure else None,
        server_hostname=host if secure else None,
        limit=_HEAD_BYTES,
    )


@functools.lru_cache(maxsize=16)
def _context(ca_file: str | None) -> ssl.SSLContext:
    """One verifying context per CA file: loading the system's CAs each run costs CPU."""
    return ssl.create_default_context(cafile=ca_file)


def _query(query: str) -> str:
    return f"?{query}" if query else ""


def _next(phases: list[tuple[Phase, float]], secure: bool) -> str:
    """The phase that did not finish, in words."""
    words = {
        "resolve": "name resolution",
        "connect": "TCP connection",
        "tls": "TLS handshake" if secure else "connection",
        "processing": "first byte",
        "transfer": "end of the body",
    }
    return words[PHASES[len(phases)]]
