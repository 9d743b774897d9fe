"""NutCollector: a UPS that NUT's `upsd` serves (the many small UPS with only USB).

    reading = await NutCollector("127.0.0.1", 3493, "rack").poll()
    reading.values  -> {"battery.charge": 87.0, "battery.runtime": 1800.0, ...}
    reading.flags   -> frozenset({"OB"})
    reading.info    -> {"device.model": "Back-UPS 650", "ups.firmware": "...", ...}

NUT already speaks the vocabulary UpsReading uses (docs/nut-names.txt), so variables map
straight across: numbers to `values`, identity strings to `info`, `ups.status` tokens to
`flags`. One short TCP session per poll (network protocol, docs/net-protocol.txt):
`USERNAME`/`PASSWORD`/`LOGIN` only when credentials are configured (upsd checks a password only
at LOGIN), then `LIST VAR <ups>` and `LOGOUT`. A new session per poll survives upsd restarts
without any reconnect logic. The password never appears in a message.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re

from collectors.readings import PollError, UpsReading
from collectors.tcp import ConnectError, open_tcp

log = logging.getLogger(__name__)

DEFAULT_PORT = 3493
# NUT ups.status tokens (docs/new-drivers.txt) plus TEST, which drivers set while the UPS tests
# its battery (apc_modbus from UPSStatus bit 7, powerpanel, ...): without it "OB TEST" would
# read as a mains cut.
# upsd's own WAIT and ALARM are not UPS states.
NUT_FLAGS = frozenset(
    {"OL", "OB", "LB", "HB", "RB", "CHRG", "DISCHRG", "BYPASS", "CAL", "OFF", "OVER", "TRIM",
     "BOOST", "FSD", "TEST"}
)  # fmt: skip
INFO_VARIABLES = (
    "device.mfr", "device.model", "device.serial", "device.part", "ups.firmware",
    "ups.mfr.date", "battery.date", "battery.mfr.date", "battery.type", "ups.test.result",
)  # fmt: skip
# Older drivers still use the ups.* identity names; used only when device.* is missing.
_INFO_FALLBACK = {
    "device.mfr": "ups.mfr",
    "device.model": "ups.model",
    "device.serial": "ups.serial",
}
# Measurement namespaces; driver.* and server.* are about NUT itself, not the UPS.
_NUMERIC_PREFIXES = ("battery.", "input.", "output.", "ups.", "ambient.", "outlet.")
# Values a driver passes on from a register that has no reading: 16-bit all-ones (an APC
# Smart-UPS 2200 on battery reports battery.runtime 65535 through usbhid-ups, NUT's
# device-dump library) and -1. Dropped and counted, as the Modbus and SNMP profiles'
# `unknown` values are.
_NOT_AVAILABLE: dict[str, frozenset[float]] = {
    "battery.runtime": frozenset({65535.0, -1.0}),
    "battery.charge": frozenset({255.0, 65535.0, -1.0}),
    "battery.temperature": frozenset({65535.0, -1.0}),
}
# Variables that must be numbers: anything else in them ("unknown", "") is dropped and counted.
_MUST_BE_NUMERIC = frozenset(
    {"battery.charge", "battery.runtime", "battery.voltage", "battery.temperature", "ups.load",
     "input.voltage", "input.frequency", "output.voltage", "output.frequency", "output.current",
     "ups.realpower.nominal", "ups.power.nominal", "ups.temperature"}
)  # fmt: skip
_VAR_LINE = re.compile(r'^VAR (\S+) (\S+) "((?:[^"\\]|\\.)*)"$')
_UNESCAPE = re.compile(r"\\(.)")
_CONNECT_HINTS = {  # by collectors.tcp reason
    "refused": "check that upsd runs and LISTENs on this address (upsd.conf)",
    "timeout": "check the address and firewall",
}
_MAX_LINES = 2000  # a LIST VAR of a big UPS is ~150 lines; stop a runaway peer here


class NutCollector:
    """One UPS on one upsd."""

    def __init__(
        self,
        host: str,
        port: int,
        ups: str,
        *,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 2.0,
    ) -> None:
        self.host = host
        self.port = port
        self.ups = ups
        self._username = username
        self._password = password
        self.timeout = timeout
        host_part = f"[{host}]" if ":" in host else host
        self._where = f"{ups}@{host_part}:{port}"

    def __repr__(self) -> str:
        return f"NutCollector({self._where!r})"

    async def poll(self) -> UpsReading:
        reader, writer = await self._open()
        session = _Session(reader, writer, self.timeout, self._where)
        try:
            if self._username is not None:
                await session.command(f"USERNAME {_quote(self._username)}")
                await session.command(f"PASSWORD {_quote(self._password or '')}")
                answer = await session.command(f"LOGIN {_quote(self.ups)}", check=False)
                if answer != "OK":
                    raise self._error(answer, session)
            lines = await session.list_var(self.ups)
            if lines is None:  # an ERR line
                raise self._error(session.last_error, session)
            await session.command("LOGOUT", check=False)
        finally:
            writer.close()
        return self._reading(lines, session.requests)

    async def close(self) -> None:
        """Nothing kept between polls."""

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            return await open_tcp(self.host, self.port, self.timeout)
        except ConnectError as exc:
            raise exc.poll_error(self._where, _CONNECT_HINTS.get(exc.reason, "")) from None

    def _error(self, answer: str, session: _Session) -> PollError:
        """upsd's `ERR <CODE>` as a reason and a hint (docs/net-protocol.txt, error list)."""
        code = answer.removeprefix("ERR ").split(" ")[0]
        where = self._where
        if code in ("ACCESS-DENIED", "USERNAME-REQUIRED", "PASSWORD-REQUIRED"):
            return PollError(
                "auth",
                f"{where}: upsd denied access ({code}); check username and password against "
                "upsd.users (the user needs 'upsmon secondary' to LOGIN)",
            )
        if code == "UNKNOWN-UPS":
            known = f"; upsd serves: {', '.join(session.known_ups)}" if session.known_ups else ""
            return PollError("config", f"{where}: upsd has no UPS named {self.ups!r}{known}")
        if code in ("DATA-STALE", "DRIVER-NOT-CONNECTED"):
            return PollError(
                "stale",
                f"{where}: upsd has no fresh data from the UPS ({code}); check the USB cable "
                "and that the NUT driver runs",
            )
        return PollError("protocol", f"{where}: upsd answered {answer!r}")

    def _reading(self, lines: list[tuple[str, str]], requests: int) -> UpsReading:
        values: dict[str, float] = {}
        info: dict[str, str] = {}
        invalid: list[str] = []
        flags: frozenset[str] = frozenset()
        raw = dict(lines)
        for name, text in lines:
            if name == "ups.status":
                flags = frozenset(t for t in text.split() if t in NUT_FLAGS)
            elif name in INFO_VARIABLES:
                if text.strip():
                    info[name] = text.strip()
            elif name.startswith(_NUMERIC_PREFIXES):
                number = _number(text)
                if number is not None and number not in _NOT_AVAILABLE.get(name, ()):
                    values[name] = number
                elif name in _MUST_BE_NUMERIC:
                    invalid.append(name)
        for wanted, older in _INFO_FALLBACK.items():
            if wanted not in info and raw.get(older, "").strip():
                info[wanted] = raw[older].strip()
        if "ups.status" not in raw:
            invalid.append("ups.status")
        log.debug("%s: %d variables, %d requests", self._where, len(lines), requests)
        return UpsReading(
            values=values,
            info=info,
            flags=flags,
            known_flags=NUT_FLAGS,
            invalid=tuple(invalid),
            requests=requests,
        )


class _Session:
    """Line-oriented request/answer over one upsd connection."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        timeout: float,
        where: str,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.timeout = timeout
        self.where = where
        self.requests = 0
        self.last_error = ""
        self.known_ups: list[str] = []

    async def command(self, line: str, *, check: bool = True) -> str:
        self.requests += 1
        self.writer.write(f"{line}\n".encode())
        answer = await self._line()
        if check and answer != "OK":
            verb = line.split(" ")[0]  # never echo the argument: it may be the password
            raise PollError("protocol", f"{self.where}: upsd answered {answer!r} to {verb}")
        return answer

    async def list_var(self, ups: str) -> list[tuple[str, str]] | None:
        """(name, value) pairs, or None after `ERR ...` (kept in last_error)."""
        self.requests += 1
        self.writer.write(f"LIST VAR {_quote(ups)}\n".encode())
        first = await self._line()
        if first.startswith("ERR "):
            self.last_error = first
            if first.startswith("ERR UNKNOWN-UPS"):
                self.known_ups = await self._ups_names()
            return None
        if not first.startswith("BEGIN LIST VAR"):
            raise PollError("protocol", f"{self.where}: unexpected answer {first[:60]!r}")
        pairs = []
        for _ in range(_MAX_LINES):
            line = await self._line()
            if line.startswith("END LIST VAR"):
                return pairs
            match = _VAR_LINE.match(line)
            if match is None:
                raise PollError("protocol", f"{self.where}: unexpected line {line[:60]!r}")
            pairs.append((match.group(2), _UNESCAPE.sub(r"\1", match.group(3))))
        raise PollError("protocol", f"{self.where}: LIST VAR did not end")

    async def _ups_names(self) -> list[str]:
        """Best effort, for the hint: the UPS names upsd does serve."""
        self.requests += 1
        self.writer.write(b"LIST UPS\n")
        names = []
        for _ in range(_MAX_LINES):
            line = await self._line()
            if not line.startswith(("BEGIN", "UPS ")):
                break
            if line.startswith("UPS "):
                names.append(line.split(" ")[1])
        return names

    async def _line(self) -> str:
        try:
            raw = await asyncio.wait_for(self.reader.readline(), self.timeout)
        except TimeoutError:
            raise PollError(
                "timeout", f"{self.where}: upsd sent no answer within {self.timeout:g} s"
            ) from None
        except ConnectionError as exc:
            raise PollError(
                "protocol", f"{self.where}: upsd closed the connection ({exc})"
            ) from None
        if not raw.endswith(b"\n"):
            raise PollError("protocol", f"{self.where}: upsd closed the connection")
        return raw.decode("utf-8", "replace").rstrip("\r\n")


def _quote(text: str) -> str:
    """A protocol argument; quoted and escaped when it holds spaces or quotes."""
    if text and not re.search(r'[\s"\\]', text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
