"""The outage ledger: a calendar record, on the site, of every loss of service and capacity test.

One JSON object per line in `<state_dir>/ledger.jsonl`, appended with flush and fsync, so a
crash or a power cut loses at most the line being written: a torn last line does not parse and
is skipped (and counted) when read, every line before it stands. Two record types:

- "outage": start and end in Unix time (wall clock: a calendar record), `seconds` measured on
  the monotonic clock while the agent ran (end = start + seconds, so an NTP step cannot make an
  outage negative or huge), the cause (power, isp, lan, agent), and the link (with its ISP),
  device and interface it struck. `id` is the start and the loss's key: an outage written twice
  (closed at restart after a crash that came just after it was written) is read once.
- "capacity": one capacity test, the capacity check's CapacityResult as it finished, for the
  monthly report.

Bounded: `compact` rewrites the file (atomically, as agent/persist.py does) without the records
that ended more than KEEP_SECONDS ago; the agent compacts at start and once a day. Reading is
never fatal: an unreadable file reads as empty and is logged.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from .checks.capacity import CapacityResult
from .persist import replace_atomically

log = logging.getLogger(__name__)

LEDGER_FILE = "ledger.jsonl"
KEEP_SECONDS = 400 * 86400.0  # a year and a month: last year's same month is still there
LedgerCause = Literal["power", "isp", "lan", "agent"]
LEDGER_CAUSES: tuple[LedgerCause, ...] = ("power", "isp", "lan", "agent")


@dataclass(frozen=True, slots=True)
class OutageRecord:
    start: float  # Unix time
    seconds: float  # measured on the monotonic clock (a gap while the agent was off: wall)
    cause: str
    kind: str  # wan | device | site (the agent was not running: every link)
    link: str = ""
    isp: str = ""
    device: str = ""
    interface: str = ""

    @property
    def end(self) -> float:
        return self.start + self.seconds

    @property
    def id(self) -> str:
        where = (self.cause, self.kind, self.link, self.device, self.interface)
        return "|".join((f"{self.start:.3f}", *where))

    def strikes(self, link: str) -> bool:
        """The record makes `link` unavailable: a loss of that link, or the agent's gap."""
        return self.link == link or self.kind == "site"


Record = OutageRecord | CapacityResult
_TYPES: dict[str, type[OutageRecord] | type[CapacityResult]] = {
    "outage": OutageRecord,
    "capacity": CapacityResult,
}


def _line(record: Record) -> str:
    kind = "outage" if isinstance(record, OutageRecord) else "capacity"
    return json.dumps({"type": kind, **asdict(record)}, separators=(",", ":")) + "\n"


def _parse(line: str) -> Record | None:
    try:
        data = json.loads(line)
        record = _TYPES[data.pop("type")](**data)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    times = (
        (record.start, record.seconds) if isinstance(record, OutageRecord) else (record.finished,)
    )
    return record if all(isinstance(t, int | float) for t in times) else None


class Ledger:
    """Append records, read them back, keep the file bounded; errors logged and counted."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.errors: Counter[str] = Counter()  # torn | read | write

    def append(self, record: Record) -> bool:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(_line(record))
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            self.errors["write"] += 1
            log.error("ledger %s cannot be written (%s): %s", self.path, exc.strerror, record)
            return False
        return True

    def records(self) -> Iterator[Record]:
        """Every record, oldest first, each outage once."""
        return self._parsed(self._lines())

    def _lines(self) -> list[str]:
        try:
            with open(self.path, encoding="utf-8") as handle:
                return handle.readlines()
        except FileNotFoundError:
            return []
        except OSError as exc:
            self.errors["read"] += 1
            log.error("ledger %s cannot be read (%s)", self.path, exc.strerror)
            return []

    def _parsed(self, lines: list[str]) -> Iterator[Record]:
        seen: set[str] = set()
        for line in lines:
            record = _parse(line)
            if record is None:
                self.errors["torn"] += 1  # a crash mid-write: the line is lost, not the file
                continue
            if isinstance(record, OutageRecord):
                if record.id in seen:
                    continue
                seen.add(record.id)
            yield record

    def between(self, start: float, end: float) -> tuple[list[OutageRecord], list[CapacityResult]]:
        """Outages that overlap [start, end) and capacity tests finished in it."""
        outages: list[OutageRecord] = []
        tests: list[CapacityResult] = []
        for record in self.records():
            if isinstance(record, OutageRecord):
                if record.start < end and record.end > start:
                    outages.append(record)
            elif start <= record.finished < end:
                tests.append(record)
        return outages, tests

    def compact(self, now: float, keep_seconds: float = KEEP_SECONDS) -> None:
        """Drop records that ended more than `keep_seconds` before `now`."""
        lines = self._lines()
        horizon = now - keep_seconds
        kept = [r for r in self._parsed(lines) if _ended(r) >= horizon]
        if len(lines) == len(kept):
            return  # nothing to drop (nor a file): no rewrite (a flash card's writes are finite)
        try:
            replace_atomically(self.path, "".join(_line(r) for r in kept))
        except OSError as exc:
            self.errors["write"] += 1
            log.error("ledger %s cannot be compacted (%s)", self.path, exc.strerror)


def _ended(record: Record) -> float:
    return record.end if isinstance(record, OutageRecord) else record.finished
