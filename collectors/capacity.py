"""One capacity test of one WAN link: download and upload rates, latency under load, bytes used.

    reading = await measure(endpoint, duration=10, byte_cap=500_000_000, bind=bind, probe_target=t)
    reading.download_bps, reading.upload_bps, reading.loaded_rtts, reading.bytes, reading.error

iperf3 (Debian's binary, run with -J) against a PSEB-run server: download is reverse mode (-R,
the server sends), upload normal mode; the rate is the receiver's figure. Where no iperf3 server
answers (or none is configured, or the binary is missing) an HTTP download of `download_url` and
an upload to `upload_url` stand in: bytes over time from the first body byte, an upload counting
only the bytes the far end acknowledged (what left the socket's send queue). Both bind to the
link's source address and/or interface, as the probes do. While each transfer runs, small probes
(collectors/probe.py) to the link's first target measure the round-trip time under load.

Stateless, and it never raises for the network: what went wrong is in `error`, one line, and
the bytes a failed attempt used still count against the day's budget (agent/checks/capacity.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import socket
import ssl
import struct
import termios
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Literal
from urllib.parse import urlsplit

from .http_probe import open_stream, parse_head, request_head, resolve
from .probe import UNBOUND, Binding, ProbeTarget, probe
from .readings import PollError

Direction = Literal["download", "upload"]
_CHUNK = 64 * 1024
_PROBE_SPACING = 0.25  # seconds between latency probes during a transfer
_CONNECT_SECONDS = 5.0
_IPERF3_SLACK_SECONDS = 15.0  # iperf3's own setup and teardown on top of the test time


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a link's capacity is measured (from the config's capacity_test block)."""

    iperf3: tuple[str, int] | None = None
    download_url: str | None = None
    upload_url: str | None = None
    username: str | None = None
    password: str | None = None  # handed to iperf3 in its environment only
    rsa_public_key_path: str | None = None


@dataclass(frozen=True, slots=True)
class CapacityReading:
    method: str  # iperf3 | http | "" (nothing could run)
    download_bps: float | None  # bits per second, as delivered to the receiver
    upload_bps: float | None
    loaded_rtts: tuple[float, ...]  # answered probe RTTs (seconds) during the transfers
    bytes: int  # sent plus received by the test, both directions
    error: str  # "" when both directions were measured, else what went wrong


@dataclass(frozen=True, slots=True)
class _Leg:
    bps: float | None
    bytes: int
    error: str


Progress = Callable[[str], None]  # told each phase as it starts ("download by iperf3 ...")


async def measure(
    endpoint: Endpoint,
    *,
    duration: float,
    byte_cap: int,
    bind: Binding = UNBOUND,
    probe_target: ProbeTarget | None = None,
    progress: Progress | None = None,
) -> CapacityReading:
    """Download then upload, `duration` seconds each, by iperf3 or else HTTP."""
    errors: list[str] = []
    if endpoint.iperf3 is not None:
        binary = shutil.which("iperf3")
        if binary is None:
            errors.append("iperf3 is not installed (apt-get install iperf3)")
        else:
            reading = await _run(
                "iperf3",
                lambda d: _iperf3(binary, endpoint, d, duration, bind),
                duration,
                bind,
                probe_target,
                progress,
            )
            # No byte moved: the server is not there; anything else is its answer.
            if reading.bytes or not (endpoint.download_url or endpoint.upload_url):
                return reading
            errors.append(reading.error)
    if endpoint.download_url or endpoint.upload_url:
        reading = await _run(
            "http",
            lambda d: _http(endpoint, d, duration, byte_cap // 2, bind),
            duration,
            bind,
            probe_target,
            progress,
        )
        if errors and reading.error:  # neither worked: say why iperf3 did not either
            reading = replace(reading, error="; ".join([*errors, reading.error]))
        return reading
    return CapacityReading("", None, None, (), 0, "; ".join(errors))


async def _run(
    method: str,
    leg: Callable[[Direction], Awaitable[_Leg]],
    duration: float,
    bind: Binding,
    probe_target: ProbeTarget | None,
    progress: Progress | None,
) -> CapacityReading:
    legs: dict[Direction, _Leg] = {}
    rtts: list[float] = []
    for direction in ("download", "upload"):
        if progress is not None:
            progress(f"{direction} by {method} for {duration:g} s")
        transfer = asyncio.ensure_future(leg(direction))
        latency = asyncio.ensure_future(_loaded_rtts(probe_target, duration, bind))
        legs[direction] = await transfer
        if legs[direction].error:  # no load to measure latency under
            latency.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            rtts += await latency
    down, up = legs["download"], legs["upload"]
    error = "; ".join(f"{d}: {leg.error}" for d, leg in legs.items() if leg.error)
    if down.error and up.error and down.error == up.error:
        error = down.error
    return CapacityReading(method, down.bps, up.bps, tuple(rtts), down.bytes + up.bytes, error)


async def _loaded_rtts(target: ProbeTarget | None, duration: float, bind: Binding) -> list[float]:
    """RTTs of small probes sent while a transfer runs (from 1 s in, once it is under way)."""
    count = int((duration - 1.5) / _PROBE_SPACING)
    if target is None or count < 1:
        return []
    await asyncio.sleep(1.0)
    try:
        reading = await probe(
            target, count=count, spacing=_PROBE_SPACING, timeout=1.0, binding=bind
        )
    except (PollError, OSError):
        return []  # the probes' own trouble shows in the link's probe metrics
    return [rtt for rtt in reading.rtts if rtt is not None]


# --- iperf3 -----------------------------------------------------------------------------------


def iperf3_command(
    binary: str, endpoint: Endpoint, direction: Direction, duration: float, bind: Binding
) -> list[str]:
    assert endpoint.iperf3 is not None
    host, port = endpoint.iperf3
    command = [binary, "-c", host, "-p", str(port), "-J", "-t", f"{duration:g}",
               "--connect-timeout", str(int(_CONNECT_SECONDS * 1000))]  # fmt: skip
    if direction == "download":
        command.append("-R")
    if bind.source_address:
        command += ["-B", bind.source_address]
    if bind.interface:
        command += ["--bind-dev", bind.interface]
    if endpoint.username:
        command += ["--username", endpoint.username]
    if endpoint.rsa_public_key_path:
        command += ["--rsa-public-key-path", endpoint.rsa_public_key_path]
    return command


def parse_iperf3(text: str) -> _Leg:
    """The receiver's rate and the bytes moved, from iperf3's -J output; else its error."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        line = text.strip().splitlines()[-1:] or ["no output"]
        return _Leg(None, 0, f"iperf3 gave no JSON: {line[0][:200]}")
    end = data.get("end") or {}
    received, sent = end.get("sum_received") or {}, end.get("sum_sent") or {}
    moved = int(max(received.get("bytes", 0), sent.get("bytes", 0)))
    if data.get("error"):
        return _Leg(None, moved, str(data["error"]).strip().splitlines()[0])
    if "bits_per_second" not in received:
        return _Leg(None, moved, "iperf3 reported no received rate")
    return _Leg(float(received["bits_per_second"]), moved, "")


async def _iperf3(
    binary: str, endpoint: Endpoint, direction: Direction, duration: float, bind: Binding
) -> _Leg:
    env = {k: v for k, v in os.environ.items() if k != "IPERF3_PASSWORD"}
    if endpoint.password is not None:
        env["IPERF3_PASSWORD"] = endpoint.password
    process = await asyncio.create_subprocess_exec(
        *iperf3_command(binary, endpoint, direction, duration, bind),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        async with asyncio.timeout(duration + _IPERF3_SLACK_SECONDS):
            out, err = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        return _Leg(None, 0, f"iperf3 did not finish within {duration + _IPERF3_SLACK_SECONDS:g} s")
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    leg = parse_iperf3(out.decode(errors="replace"))
    if leg.bps is None and not leg.error:
        leg = _Leg(None, leg.bytes, err.decode(errors="replace").strip()[:200] or "iperf3 failed")
    return leg


# --- HTTP -------------------------------------------------------------------------------------


async def _connect(
    url: str, bind: Binding
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str, str]:
    """(reader, writer, host, path) of a connection to `url`'s server, bound like the probes."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    try:
        address = await resolve(host, port, bind.family)
    except socket.gaierror as exc:
        raise PollError("unreachable", f"cannot resolve {host} ({exc.strerror})") from None
    try:
        async with asyncio.timeout(_CONNECT_SECONDS):
            reader, writer = await open_stream(address, port, host, tls, bind)
    except TimeoutError:
        raise PollError(
            "timeout", f"{host}:{port}: no connection within {_CONNECT_SECONDS:g} s"
        ) from None
    except (OSError, ssl.SSLError) as exc:
        raise PollError(
            "unreachable", f"{host}:{port}: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return reader, writer, host, path


async def _status(reader: asyncio.StreamReader) -> int:
    """The response's status code; the headers are read and dropped."""
    head = await reader.readuntil(b"\r\n\r\n")
    try:
        return parse_head(head[:-4])[0]
    except ValueError as exc:
        raise PollError("error", f"not an HTTP response: {exc}") from None


def _unsent(writer: asyncio.StreamWriter) -> int:
    """Bytes still in the socket's send queue, not yet acknowledged by the far end."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return 0
    raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, struct.pack("i", 0))
    return int(struct.unpack("i", raw)[0])


async def _http(
    endpoint: Endpoint, direction: Direction, duration: float, cap: int, bind: Binding
) -> _Leg:
    url = endpoint.download_url if direction == "download" else endpoint.upload_url
    if url is None:
        return _Leg(None, 0, f"no {direction}_url configured")
    writer: asyncio.StreamWriter | None = None
    try:
        reader, writer, host, path = await _connect(url, bind)
        if direction == "download":
            return await _download(reader, writer, host, path, duration, cap)
        return await _upload(reader, writer, host, path, duration, cap)
    except PollError as exc:
        return _Leg(None, 0, f"{url}: {exc}")
    except TimeoutError:
        return _Leg(None, 0, f"{url}: no answer within {duration + _CONNECT_SECONDS:g} s")
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        return _Leg(None, 0, f"{url}: {getattr(exc, 'strerror', None) or type(exc).__name__}")
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()


async def _download(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    host: str,
    path: str,
    duration: float,
    cap: int,
) -> _Leg:
    writer.write(request_head(host, None, path))
    async with asyncio.timeout(duration + _CONNECT_SECONDS):
        status = await _status(reader)
        if status != 200:
            return _Leg(None, 0, f"HTTP status {status}")
        received, started = 0, time.monotonic()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(duration):
                while received < cap:
                    chunk = await reader.read(min(_CHUNK, cap - received))
                    if not chunk:
                        break
                    received += len(chunk)
    elapsed = time.monotonic() - started
    if not received or elapsed <= 0:
        return _Leg(None, received, "the download sent no data")
    return _Leg(received * 8 / elapsed, received, "")


async def _upload(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    host: str,
    path: str,
    duration: float,
    cap: int,
) -> _Leg:
    writer.write(
        request_head(
            host, None, path, "POST",
            f"Content-Type: application/octet-stream\r\nContent-Length: {cap}\r\n",
        )
    )  # fmt: skip
    block = os.urandom(_CHUNK)  # incompressible, should anything on the path compress
    written, started = 0, time.monotonic()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(duration):
            while written < cap:
                piece = block[: cap - written]
                writer.write(piece)
                written += len(piece)
                await writer.drain()
    acknowledged = written - _unsent(writer)
    elapsed = time.monotonic() - started
    if written >= cap:  # all sent within the time: the server's answer says it arrived
        async with asyncio.timeout(_CONNECT_SECONDS):
            status = await _status(reader)
        if not 200 <= status < 300:
            return _Leg(None, written, f"HTTP status {status}")
        acknowledged, elapsed = written, time.monotonic() - started
    if acknowledged <= 0:
        return _Leg(None, written, "the upload moved no data")
    return _Leg(acknowledged * 8 / elapsed, written, "")
