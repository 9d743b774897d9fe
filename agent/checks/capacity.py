"""ISP capacity: when a WAN link's capacity test may run, and what its results say against the
contract.

A capacity test fills the line for a few seconds each way (collectors/capacity.py), so it must be
polite: it runs only inside the site's local time window (the box's time zone: 02:00-05:00 by
default, when the freelancers sleep), at most `runs_per_day` times, spread evenly over the window,
and within `max_bytes_per_day` (a metered or shared line pays for every byte); it waits while the
link's router port carried more than `busy_threshold` of its contract in the last `busy_minutes`
(someone is working: the test would hurt them and measure the remainder, not the line), and
never runs while the centre is on battery (the UPS runtime is for the work, not for tests). `due`
is that decision, pure.

Each test's result is judged against the contract (the router port's capacity_down_mbps /
capacity_up_mbps, else the capacity_test block's): delivered below `contract_share` of it in
either direction is "below", a test that could not measure both directions is "error". The
day's budget, the counters and the latest results are kept in a state file, so a restart
neither resets the budget nor forgets the history.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import shutil
import statistics
import time
import zlib
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from collectors.capacity import CapacityReading, Endpoint, Progress, measure
from collectors.probe import ProbeTarget
from collectors.readings import PollError
from collectors.tcp import ConnectError, knock

from ..config import CapacityTestSettings, Config, LinkSettings
from ..kinds import KINDS
from ..persist import JsonStateFile, state_file
from ..state import AgentState
from ..verdict import Status
from .bandwidth import CONTRACT_MARGIN

log = logging.getLogger(__name__)

Verdict = Literal["pass", "below", "error"]
HISTORY = 60  # results kept (and saved): a month of two runs a day
TICK_SECONDS = 60.0  # how often the daemon asks `due`
_CONNECT_SECONDS = 3.0
_FORMAT = 1


@dataclass(frozen=True, slots=True)
class CapacityResult:
    """One capacity test of one link, as it finished (the durable ledger records these)."""

    link: str
    isp: str | None
    finished: float  # unix time
    method: str  # iperf3 | http | "" (nothing could run)
    download_bps: float | None  # bits per second
    upload_bps: float | None
    loaded_latency_seconds: float | None  # median RTT of the probes sent during the transfers
    contract_down_bps: float | None
    contract_up_bps: float | None
    bytes: int  # both directions, counted against the day's budget
    error: str  # "" when both directions were measured

    def ratio(self, direction: Literal["download", "upload"]) -> float | None:
        """Delivered / contracted, or None when either is unknown."""
        rate, contract = (
            (self.download_bps, self.contract_down_bps)
            if direction == "download"
            else (self.upload_bps, self.contract_up_bps)
        )
        return None if rate is None or not contract else rate / contract

    def verdict(self, share: float) -> Verdict:
        if self.error or self.download_bps is None or self.upload_bps is None:
            return "error"
        ratios = [r for r in (self.ratio("download"), self.ratio("upload")) if r is not None]
        return "below" if any(r < share for r in ratios) else "pass"


@dataclass(frozen=True, slots=True)
class Budget:
    """What the link's tests used on one local day (the day its window began)."""

    day: str  # ISO date
    runs: int = 0
    bytes: int = 0


@dataclass(frozen=True, slots=True)
class Due:
    run: bool
    why: str  # why not (for the log); "" when it runs


def window_day(test: CapacityTestSettings, now: datetime.datetime) -> datetime.date | None:
    """The local date the window that holds `now` began on, or None outside the window."""
    start, length = test.window_minutes
    into = (now.hour * 60 + now.minute - start) % 1440
    if into >= length:
        return None
    return (now - datetime.timedelta(minutes=into)).date()


def due(
    test: CapacityTestSettings,
    now: datetime.datetime,
    budget: Budget,
    *,
    estimate_bytes: int,
    busy: float | None,
    on_battery: bool,
    spread: float = 0.0,
) -> Due:
    """Whether a test starts now. `now` is local time; `budget` the day's use so far (any day:
    a new day starts with nothing used); `estimate_bytes` what one test will likely move;
    `busy` the port's highest utilisation of its contract over the last busy_minutes (None:
    not known, no router port); `spread` (0..1) how far into the first half of its slot each
    run starts, so a fleet's centres do not all call one iperf3 server (one test at a time)
    at 02:00."""
    day = window_day(test, now)
    if day is None:
        return Due(False, f"outside the window {test.window}")
    if budget.day != day.isoformat():
        budget = Budget(day.isoformat())
    if budget.runs >= test.runs_per_day:
        return Due(False, f"{budget.runs} of {test.runs_per_day} runs done today")
    start, length = test.window_minutes
    into = (now.hour * 60 + now.minute - start) % 1440 + now.second / 60
    if into < (budget.runs + spread / 2) * length / test.runs_per_day:
        return Due(False, f"run {budget.runs + 1} is due later in the window")
    if budget.bytes + estimate_bytes > test.max_bytes_per_day:
        return Due(
            False,
            f"the day's budget: {budget.bytes} of {test.max_bytes_per_day} bytes used, a test "
            f"takes about {estimate_bytes}",
        )
    if on_battery:
        return Due(False, "the centre is on battery")
    if busy is not None and busy > test.busy_threshold:
        return Due(
            False,
            f"the line is busy ({busy:.0%} of its contract within {test.busy_minutes:g} min, "
            f"threshold {test.busy_threshold:.0%})",
        )
    return Due(True, "")


def spread_of(site: str, link: str) -> float:
    """A stable share in [0, 1) for this site's link: where in its slots its tests start."""
    return zlib.crc32(f"{site}/{link}".encode()) / 2**32


def estimate_bytes(
    test: CapacityTestSettings, contract: tuple[float | None, float | None], previous: int
) -> int:
    """What one test is likely to move: the contract at its margin (an ISP bursts above what
    it sells) for `duration` each way, else what the previous test moved."""
    down, up = contract
    if down and up:
        return int((down + up) / 8 * test.duration * CONTRACT_MARGIN)
    return previous


def contract_bps(config: Config, link: LinkSettings) -> tuple[float | None, float | None]:
    """(download, upload) bits per second the ISP sells: the router port's, else the test's."""
    port, test = config.link_port(link), link.capacity_test
    down = (port and port.capacity_down_mbps) or (test and test.capacity_down_mbps)
    up = (port and port.capacity_up_mbps) or (test and test.capacity_up_mbps)
    return (down * 1e6 if down else None, up * 1e6 if up else None)


def busiest(samples: deque[tuple[float, float]], now: float, minutes: float) -> float | None:
    """The highest utilisation seen within the last `minutes` (monotonic times)."""
    while samples and samples[0][0] < now - minutes * 60:
        samples.popleft()
    return max((u for _, u in samples), default=None)


def endpoint_of(test: CapacityTestSettings) -> Endpoint:
    password = test.password.get_secret_value() if test.password is not None else None
    return Endpoint(
        test.iperf3_host_port, test.download_url, test.upload_url,
        test.username, password, test.rsa_public_key_path,
    )  # fmt: skip


async def run_test(
    link: LinkSettings,
    contract: tuple[float | None, float | None],
    *,
    byte_cap: int,
    progress: Progress | None = None,
) -> CapacityResult:
    """One test of `link` now, whatever the window and the budget (the check decides those)."""
    test = link.capacity_test
    assert test is not None
    first = link.targets[0]
    reading = await measure(
        endpoint_of(test),
        duration=test.duration,
        byte_cap=byte_cap,
        bind=link.binding,
        probe_target=ProbeTarget(first.name, first.address, first.tcp_port),
        progress=progress,
    )
    return result_of(link, contract, reading, time.time())


def result_of(
    link: LinkSettings,
    contract: tuple[float | None, float | None],
    reading: CapacityReading,
    finished: float,
) -> CapacityResult:
    latency = statistics.median(reading.loaded_rtts) if reading.loaded_rtts else None
    error = f"link {link.name}: {reading.error}" if reading.error else ""
    return CapacityResult(
        link.name, link.isp, finished, reading.method, reading.download_bps,
        reading.upload_bps, latency, contract[0], contract[1], reading.bytes, error,
    )  # fmt: skip


async def endpoint_step(link: LinkSettings) -> tuple[Status, str, str]:
    """(PASS|WARN|FAIL, what was seen, hint) for `check`: does the link's test endpoint answer a
    TCP connect through the link? Only that: a test moves megabytes, `speedtest` runs one."""
    test = link.capacity_test
    assert test is not None
    fallback = test.download_url or test.upload_url
    if test.iperf3_host_port is not None:
        if shutil.which("iperf3") is None:
            return "FAIL", "iperf3 is not installed", "apt-get install iperf3"
        host, port = test.iperf3_host_port
        seen = await _answers(link, host, port)
        where = f"iperf3 server {host}:{port}"
        if not seen:
            return "PASS", f"{where} answers", ""
        if fallback:
            return "WARN", f"{where}: {seen}; tests will use HTTP", "start it, or fix iperf3:"
        return (
            "FAIL",
            f"{where}: {seen}",
            (
                "check iperf3: (PSEB's erozgar-iperf3 service, host:port) and that the link "
                "reaches it"
            ),
        )
    parts = urlsplit(fallback or "")
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    seen = await _answers(link, host, port)
    if seen:
        return "FAIL", f"speed-test server {host}:{port}: {seen}", "check download_url/upload_url"
    return "PASS", f"speed-test server {host}:{port} answers", ""


async def _answers(link: LinkSettings, host: str, port: int) -> str:
    """Why a TCP connect to host:port through the link fails; empty when it succeeds."""
    try:
        sock = link.binding.socket(host, "tcp")  # of the host's family (a name: IPv4)
    except PollError as exc:
        return str(exc)
    try:
        await knock(host, port, _CONNECT_SECONDS, sock)
    except ConnectError as exc:
        return str(exc)
    finally:
        sock.close()
    return ""


def _mbps(bps: float | None) -> str:
    return "-" if bps is None else f"{bps / 1e6:.1f}"


def describe(result: CapacityResult, share: float) -> str:
    """One line: the rates against the contract, latency under load, bytes, method, verdict."""
    if result.method == "" or (result.download_bps is None and result.upload_bps is None):
        return f"{result.error} (FAIL)"
    parts = []
    for direction, rate, contract in (
        ("download", result.download_bps, result.contract_down_bps),
        ("upload", result.upload_bps, result.contract_up_bps),
    ):
        ratio = result.ratio(direction)  # type: ignore[arg-type]
        of = f" of {_mbps(contract)} ({ratio:.0%})" if ratio is not None else ""
        parts.append(f"{direction} {_mbps(rate)}{of} Mb/s")
    latency = result.loaded_latency_seconds
    if latency is not None:
        parts.append(f"latency under load {latency * 1000:.1f} ms")
    parts.append(f"{result.bytes / 1e6:.1f} MB by {result.method}")
    verdict = result.verdict(share)
    word = {"pass": "PASS", "below": f"BELOW {share:.0%} OF THE CONTRACT", "error": "FAIL"}
    line = f"link {result.link}: {', '.join(parts)}: {word[verdict]}"
    return f"{line} ({result.error})" if result.error else line


@dataclass(frozen=True, slots=True)
class CapacityStatus:
    """The latest capacity results of one link, ready to export."""

    link: str
    latest: CapacityResult | None
    last_success: CapacityResult | None  # the latest that measured both directions
    tests: tuple[tuple[str, str, int], ...]  # (method, verdict, tests), sorted
    bytes_total: int


class CapacityCheck:
    """One link's budget, counters and history, kept in its state file across restarts."""

    def __init__(self, link: LinkSettings, store: JsonStateFile | None = None) -> None:
        self.link = link
        self.store = store
        self.budget = Budget("")
        self.history: deque[CapacityResult] = deque(maxlen=HISTORY)
        self.tests: Counter[tuple[str, str]] = Counter()
        self.bytes_total = 0
        if store is not None:
            self._load(store.load())

    @property
    def share(self) -> float:
        assert self.link.capacity_test is not None
        return self.link.capacity_test.contract_share

    def record(self, result: CapacityResult, day: datetime.date) -> CapacityResult:
        """Count a finished test against `day` (its window's local date) and keep it."""
        if self.budget.day != day.isoformat():
            self.budget = Budget(day.isoformat())
        self.budget = Budget(
            self.budget.day, self.budget.runs + 1, self.budget.bytes + result.bytes
        )
        self.history.append(result)
        self.tests[(result.method or "none", result.verdict(self.share))] += 1
        self.bytes_total += result.bytes
        if self.store is not None:
            self.store.save(self._saved())
        return result

    def status(self) -> CapacityStatus:
        good = (r for r in reversed(self.history) if r.verdict(self.share) != "error")
        return CapacityStatus(
            self.link.name,
            self.history[-1] if self.history else None,
            next(good, None),
            tuple(sorted((m, v, n) for (m, v), n in self.tests.items())),
            self.bytes_total,
        )

    def _saved(self) -> dict[str, Any]:
        return {
            "version": _FORMAT,
            "budget": asdict(self.budget),
            "tests": [[m, v, n] for (m, v), n in sorted(self.tests.items())],
            "bytes_total": self.bytes_total,
            "results": [asdict(r) for r in self.history],
        }

    def _load(self, data: dict[str, Any]) -> None:
        if not data:
            return
        try:
            if data.get("version") != _FORMAT:
                raise ValueError(f"format {data.get('version')!r}")
            budget = Budget(**data["budget"])
            tests = Counter({(str(m), str(v)): int(n) for m, v, n in data["tests"]})
            names = {f.name for f in fields(CapacityResult)}
            results = [CapacityResult(**{k: r[k] for k in names}) for r in data["results"]]
            bytes_total = int(data["bytes_total"])
        except (KeyError, TypeError, ValueError) as exc:
            assert self.store is not None
            self.store.set_aside(f"not a capacity state ({exc})")
            return
        self.budget, self.tests, self.bytes_total = budget, tests, bytes_total
        self.history.extend(results)


def utilisation(state: AgentState, link: LinkSettings) -> float | None:
    """The link's router port's latest utilisation of its contract, the busier direction."""
    device = state.devices.get(link.device or "")
    if device is None or not device.up:
        return None
    router = KINDS[device.kind].router(device.status)
    if router is None:
        return None
    port = next((p for p in router.interfaces if p.name == link.interface), None)
    if port is None:
        return None
    shares = [u for d in ("receive", "transmit") if (u := port.utilization(d)) is not None]
    return max(shares, default=None)


class CapacityTester:
    """The daemon's job for one link: every TICK_SECONDS, run a test when `due`."""

    def __init__(
        self,
        link: LinkSettings,
        config: Config,
        state: AgentState,
        record: Callable[[CapacityResult], object] = lambda result: None,
    ) -> None:
        """`record` keeps each finished test for the monthly report (the outage ledger)."""
        assert link.capacity_test is not None
        self.record = record
        self.link, self.test = link, link.capacity_test
        self.contract = contract_bps(config, link)
        self.state = state
        path: Path = state_file(config.state_dir, "capacity", link.name)
        self.check = CapacityCheck(link, JsonStateFile(path))
        self._samples: deque[tuple[float, float]] = deque()
        self._last_why = ""
        state.capacity[link.name] = self.check.status()

    async def run(self) -> CapacityResult | None:
        mono = time.monotonic()
        used = utilisation(self.state, self.link)
        if used is not None:
            self._samples.append((mono, used))
        now = datetime.datetime.now().astimezone()
        power = self.state.power
        previous = self.check.history[-1].bytes if self.check.history else 0
        decision = due(
            self.test, now, self.check.budget,
            estimate_bytes=estimate_bytes(self.test, self.contract, previous),
            busy=busiest(self._samples, mono, self.test.busy_minutes),
            on_battery=power is not None and power.source == "battery",
            spread=spread_of(self.state.site_id, self.link.name),
        )  # fmt: skip
        if not decision.run:
            why = decision.why.split(" (")[0]  # not again for each new busy figure
            if why != self._last_why and window_day(self.test, now) is not None:
                log.info("link %s: capacity test waits: %s", self.link.name, decision.why)
            self._last_why = why
            return None
        self._last_why = ""
        day = window_day(self.test, now)
        assert day is not None
        budget = self.check.budget
        used_today = budget.bytes if budget.day == day.isoformat() else 0
        cap = max(0, self.test.max_bytes_per_day - used_today)
        budget_seconds = 2 * (self.test.duration + 20)
        try:
            async with asyncio.timeout(budget_seconds):
                result = await run_test(self.link, self.contract, byte_cap=cap)
        except TimeoutError:
            late = f"link {self.link.name}: the test took over {budget_seconds:g} s"
            result = CapacityResult(
                self.link.name, self.link.isp, time.time(), "", None, None, None,
                *self.contract, 0, late,
            )  # fmt: skip
        self.check.record(result, day)
        self.record(result)
        self._samples.clear()  # the test's own traffic is in the port's next rates
        self.state.capacity[self.link.name] = self.check.status()
        line = describe(result, self.check.share)
        if result.verdict(self.check.share) == "pass":
            log.info("capacity test: %s", line)
        else:
            log.warning("capacity test: %s", line)
        return result
