"""Bandwidth check: raw SNMP octet counters in, monotonic byte totals and bit rates out.

Device counters wrap (a 32-bit ifInOctets wraps every 34 s at 1 Gb/s) and restart from zero
when the device reboots (every power cut). This check keeps, per interface, a running byte total
that only grows, so Prometheus sees a clean counter and Grafana no spikes. It also adds up the
seconds a port ran at or above its saturation threshold, and the share of packets that arrived
with errors or were discarded.

A delta is believed only when it is physically possible: every port direction has a ceiling
(`ceiling`), and no rate above it is ever exported. The ceiling is the contract from the config
x CONTRACT_MARGIN (ISPs burst above what they sell; the contract also overrides the
"bandwidth" figure some routers report as ifSpeed on a dialer or tunnel); else the port's own
speed x SPEED_TOLERANCE (polls are timed by the agent, not the device) when the port is physical
(an Ethernet ifType, or no ifType read); else the faster of that speed and the device's fastest
physical port (a PPPoE session, VLAN, tunnel or LTE modem reports ifSpeed 0 and ifHighSpeed 0,
or a made-up figure, and carries no more than the port under it); else DEFAULT_CAPACITY_BPS.

What a counter did decides, not sysUpTime alone:
- forward by no more than the ceiling allows: a normal delta, also when sysUpTime fell (the SNMP
  agent restarted, the interface counters did not) and when it rolled over after 497 days
  (TimeTicks are 32 bits; recognised by landing where the poll gap says);
- back, a 64-bit counter: a reset, never a wrap (`counter_reset`);
- back, a 32-bit counter: a wrap only if the wrapped delta passes the ceiling, else a counter
  cleared (`counter_reset`: PPPoE reconnect, `clear counters`);
- back, or forward beyond the ceiling, after a restart of its own: the counter started again,
  and its value is the bytes since then, added only if the ceiling allows them over that time
  (else `restart_implausible`). The restarts: sysUpTime fell (the device rebooted: the rate
  is the bytes over its uptime), ifCounterDiscontinuityTime moved (`port_discontinuity`: over
  the time since), or the port came back under a new ifIndex or after missing from a poll
  (`port_reappeared`: the start is unknown, so the bytes are bounded by the poll gap and no
  rate is given that poll).
A 32-bit counter read after a gap in which it could have wrapped more than once at the port's
capacity is refused (`wrap_ambiguous`), and any other delta above the ceiling too
(`above_ceiling`). Every refused delta is counted by reason, never added, and logged once per
port and reason until that port gives a believable delta again.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from collectors.readings import InterfaceSample, SnmpReading

from ..config import InterfaceSettings
from .ports import is_physical, port_roles

log = logging.getLogger(__name__)

# A delta may exceed what the port speed allows by this factor before it is rejected: polls
# are timed by the agent, not the device, so a little jitter is normal.
SPEED_TOLERANCE = 1.5
# ... and exceed the contract by this one: an ISP may deliver more than it sells.
CONTRACT_MARGIN = 2.0
# The capacity of a port when neither the config nor any port of the device gives a speed.
DEFAULT_CAPACITY_BPS = 1e9
_UPTIME_WRAP = 1 << 32  # sysUpTime is TimeTicks: 32 bits of 1/100 s, 497.1 days
_REFUSED = frozenset({"wrap_ambiguous", "counter_reset", "above_ceiling", "restart_implausible"})


@dataclass(frozen=True, slots=True)
class InterfaceStatus:
    """The judged state of one port, ready to export."""

    name: str
    role: str
    oper_up: bool | None
    admin_up: bool | None
    speed_bps: float | None
    counter_bits: int
    receive_bytes_total: int | None
    transmit_bytes_total: int | None
    receive_bps: float | None
    transmit_bps: float | None
    # the contract (config), else a physical port's speed; none for a tunnel, VLAN or PPPoE
    # session without a contract: their ifSpeed is 0 or made up, so utilisation would be too
    receive_capacity_bps: float | None
    transmit_capacity_bps: float | None
    in_errors: int | None
    out_errors: int | None
    in_discards: int | None
    out_discards: int | None
    receive_saturated_seconds: float = 0.0  # total time at or above saturation_threshold
    transmit_saturated_seconds: float = 0.0
    # errors (discards) / (unicast packets + errors (discards)) between the latest two polls
    in_error_ratio: float | None = None
    out_error_ratio: float | None = None
    in_discard_ratio: float | None = None
    out_discard_ratio: float | None = None

    def utilization(self, direction: str) -> float | None:
        if direction == "receive":
            return _utilization(self.receive_bps, self.receive_capacity_bps)
        return _utilization(self.transmit_bps, self.transmit_capacity_bps)


def _utilization(rate: float | None, capacity: float | None) -> float | None:
    if rate is None or not capacity:
        return None
    return rate / capacity


@dataclass(frozen=True, slots=True)
class Ceiling:
    """The most one direction of one port can carry, in bytes per second."""

    capacity: float  # contract, port speed, fastest physical port or the default (bytes/s)
    limit: float  # capacity x its margin: no believable rate is above this


def fastest_physical_bps(samples: Iterable[InterfaceSample]) -> float | None:
    """The speed of the device's fastest physical port (of any port with a speed when no
    ifType was read), or None when no such port reports one."""
    speeds = [s.speed_bps for s in samples if s.speed_bps and is_physical(s)]
    return max(speeds, default=None)


def ceiling(
    sample: InterfaceSample, contract_mbps: float | None, fastest_bps: float | None
) -> Ceiling:
    """The ceiling of one direction of `sample` (see the module docstring for the order)."""
    if contract_mbps:
        capacity, margin = contract_mbps * 1e6, CONTRACT_MARGIN
    elif sample.speed_bps and is_physical(sample):
        capacity, margin = sample.speed_bps, SPEED_TOLERANCE
    else:
        known = max(sample.speed_bps or 0.0, fastest_bps or 0.0)
        capacity, margin = known or DEFAULT_CAPACITY_BPS, SPEED_TOLERANCE
    return Ceiling(capacity / 8, capacity * margin / 8)


def uptime_wrapped(before: int, after: int, elapsed: float | None) -> bool:
    """sysUpTime rolled over (2^32 ticks, 497 days) rather than restarting: the new value is
    where the old one plus the poll gap lands past the wrap, give or take 5 s or a tenth."""
    if elapsed is None or after >= before:
        return False
    expected = before + elapsed * 100 - _UPTIME_WRAP
    return expected >= 0 and abs(after - expected) <= max(500, elapsed * 10)


def counter_delta(previous: int, current: int, bits: int) -> int | None:
    """Bytes between two raw readings, allowing one wrap of a 32-bit counter.

    A 64-bit counter going backwards is a reset, not a wrap (it would take decades to wrap):
    None says "no trustworthy delta". Whether a 32-bit wrap is believable is the ceiling's
    call (BandwidthCheck).
    """
    if current >= previous:
        return current - previous
    if bits == 32:
        return current + (1 << 32) - previous
    return None


@dataclass(frozen=True, slots=True)
class _Restart:
    """A hint that a port's counters may have started again: since when, and why."""

    seconds: float | None  # how long they have been counting; None: unknown (bound: poll gap)
    reason: str | None  # counted under this reason when taken; None: a device restart


@dataclass(frozen=True, slots=True)
class _Verdict:
    """What one counter reading adds: bytes over seconds, or a reason it adds nothing."""

    bytes: int | None = None
    seconds: float | None = None  # None: no rate this poll
    reason: str | None = None  # refused (_REFUSED) or a restart taken (counted, not refused)
    detail: str = ""  # for the log line: the implied rate against the ceiling


@dataclass(slots=True)
class _Track:
    """Running state of one counter direction of one port."""

    raw: int
    total: int
    at: float  # monotonic time of the raw reading
    rate_bps: float | None = None


def judge_counter(
    previous: int,
    current: int,
    bits: int,
    elapsed: float,
    limit: Ceiling,
    restart: _Restart | None,
) -> _Verdict:
    """The bytes one counter moved by between two reads `elapsed` seconds apart, if possible."""
    went_back = current < previous
    if restart is not None and (went_back or current - previous > limit.limit * elapsed):
        # The counter started again: its value is what it counted since.
        span = restart.seconds if restart.seconds is not None else elapsed
        if current > limit.limit * max(span, 1.0):
            why = f"{current} bytes in {span:.0f} s since the restart is {_bits(current, span)}"
            return _Verdict(reason="restart_implausible", detail=_against(why, limit))
        seconds = restart.seconds if restart.seconds and restart.seconds >= 1 else None
        return _Verdict(current, seconds, restart.reason)
    if bits == 32 and limit.capacity * elapsed > 1 << 32:
        why = f"{elapsed:.0f} s between reads: a 32-bit counter may have wrapped more than once"
        return _Verdict(reason="wrap_ambiguous", detail=_against(why, limit, "capacity"))
    delta = counter_delta(previous, current, bits)
    if delta is None:
        return _Verdict(reason="counter_reset", detail=f"went back from {previous} to {current}")
    if delta > limit.limit * elapsed:
        what = "a wrap" if went_back else "the delta"
        why = f"{what} would be {delta} bytes in {elapsed:.1f} s, {_bits(delta, elapsed)}"
        reason = "counter_reset" if went_back else "above_ceiling"
        return _Verdict(reason=reason, detail=_against(why, limit))
    return _Verdict(delta, elapsed)


@dataclass
class BandwidthCheck:
    """Per-device state: one instance per router or switch, fed every poll."""

    device: str
    settings: dict[str, InterfaceSettings] = field(default_factory=dict)
    auto_uplinks: bool = True  # agent/checks/access.py port_roles
    _tracks: dict[tuple[str, str], _Track] = field(default_factory=dict)
    _last_uptime: int | None = None
    _last_time: float | None = None
    rejected: Counter[str] = field(default_factory=Counter)  # reason -> count
    restarts: int = 0
    _previous: dict[str, InterfaceSample] = field(default_factory=dict)
    _saturated: Counter[tuple[str, str]] = field(default_factory=Counter)  # seconds
    _conditions: dict[str, frozenset[str]] = field(default_factory=dict)  # port -> logged

    def update(self, reading: SnmpReading, now: float) -> tuple[InterfaceStatus, ...]:
        """Fold a new reading in; `now` is a monotonic time taken when the reading arrived,
        used unless the reading says when its counters were answered (`read_at`)."""
        if reading.read_at is not None:
            now = reading.read_at
        elapsed = None if self._last_time is None else now - self._last_time
        ticks, last = reading.sys_uptime_ticks, self._last_uptime
        wrapped = last is not None and uptime_wrapped(last, ticks, elapsed)
        restarted = last is not None and ticks < last and not wrapped
        if wrapped:
            log.info("%s: sysUpTime rolled over after 497 days; not a restart", self.device)
        elif restarted:
            self.restarts += 1
            log.info(
                "%s: sysUpTime went back from %.0f s to %.0f s: the device or its SNMP agent "
                "restarted; each counter says which",
                self.device, (last or 0) / 100, ticks / 100,
            )  # fmt: skip
        fastest = reading.fastest_port_bps
        if fastest is None:
            fastest = fastest_physical_bps(reading.interfaces)
        conditions: dict[str, frozenset[str]] = {}
        roles = port_roles(reading.interfaces, self.settings, self.auto_uplinks)
        statuses = tuple(
            self._judge(sample, roles[sample.name], now, elapsed, restarted, ticks, fastest,
                        conditions)
            for sample in reading.interfaces
        )  # fmt: skip
        self._conditions = conditions
        self._last_uptime = ticks
        self._last_time = now
        self._previous = {sample.name: sample for sample in reading.interfaces}
        return statuses

    def _judge(
        self,
        sample: InterfaceSample,
        role: str,
        now: float,
        elapsed: float | None,
        restarted: bool,
        uptime_ticks: int,
        fastest: float | None,
        conditions: dict[str, frozenset[str]],
    ) -> InterfaceStatus:
        setting = self.settings.get(sample.name)
        previous = self._previous.get(sample.name)
        down = setting.capacity_down_mbps if setting else None
        up = setting.capacity_up_mbps if setting else None
        restart = self._restart_hint(sample, previous, restarted, uptime_ticks)
        # The row's own answer time when the table spanned several answers; else the poll's.
        at = sample.read_at if sample.read_at is not None else now
        verdicts: dict[str, _Verdict] = {}
        rx = self._advance(sample, "receive", sample.in_octets, at,
                           ceiling(sample, down, fastest), restart, verdicts)  # fmt: skip
        tx = self._advance(sample, "transmit", sample.out_octets, at,
                           ceiling(sample, up, fastest), restart, verdicts)  # fmt: skip
        self._note(sample.name, verdicts, conditions)
        same_run = previous is not None and restart is None
        line_rate = sample.speed_bps if sample.speed_bps and is_physical(sample) else None
        receive_bps, transmit_bps = (rx.rate_bps if rx else None), (tx.rate_bps if tx else None)
        receive_capacity = down * 1e6 if down else line_rate
        transmit_capacity = up * 1e6 if up else line_rate
        threshold = setting.saturation_threshold if setting else 0.9
        saturated = self._saturated
        # judged before the status is built: one frozen instance per port, not two (replace)
        rates = (("receive", receive_bps, receive_capacity),
                 ("transmit", transmit_bps, transmit_capacity))  # fmt: skip
        for direction, rate, capacity in rates:
            utilization = _utilization(rate, capacity)
            if utilization is not None and elapsed and utilization >= threshold:
                saturated[(sample.name, direction)] += elapsed
        return InterfaceStatus(
            name=sample.name,
            role=role,
            oper_up=sample.oper_up,
            admin_up=sample.admin_up,
            speed_bps=sample.speed_bps,
            counter_bits=sample.counter_bits,
            receive_bytes_total=rx.total if rx else None,
            transmit_bytes_total=tx.total if tx else None,
            receive_bps=receive_bps,
            transmit_bps=transmit_bps,
            receive_capacity_bps=receive_capacity,
            transmit_capacity_bps=transmit_capacity,
            in_errors=sample.in_errors,
            out_errors=sample.out_errors,
            in_discards=sample.in_discards,
            out_discards=sample.out_discards,
            receive_saturated_seconds=saturated[(sample.name, "receive")],
            transmit_saturated_seconds=saturated[(sample.name, "transmit")],
            in_error_ratio=_share(previous, sample, "in_errors", "in_packets", same_run),
            out_error_ratio=_share(previous, sample, "out_errors", "out_packets", same_run),
            in_discard_ratio=_share(previous, sample, "in_discards", "in_packets", same_run),
            out_discard_ratio=_share(previous, sample, "out_discards", "out_packets", same_run),
        )

    def _restart_hint(
        self,
        sample: InterfaceSample,
        previous: InterfaceSample | None,
        restarted: bool,
        uptime_ticks: int,
    ) -> _Restart | None:
        """Why this port's counters may have started again since the last poll, if they may."""
        if restarted:
            return _Restart(uptime_ticks / 100, None)
        if previous is None:
            known = any((sample.name, d) in self._tracks for d in ("receive", "transmit"))
            return _Restart(None, "port_reappeared") if known else None
        if previous.index != sample.index:
            return _Restart(None, "port_reappeared")
        moved = sample.discontinuity_ticks
        if (
            moved is not None
            and previous.discontinuity_ticks is not None
            and moved != previous.discontinuity_ticks
            and moved <= uptime_ticks
        ):
            # This port's counters restarted at ifCounterDiscontinuityTime: count from there.
            return _Restart((uptime_ticks - moved) / 100, "port_discontinuity")
        return None

    def _advance(
        self,
        sample: InterfaceSample,
        direction: str,
        raw: int | None,
        at: float,
        limit: Ceiling,
        restart: _Restart | None,
        verdicts: dict[str, _Verdict],
    ) -> _Track | None:
        key = (sample.name, direction)
        track = self._tracks.get(key)
        if raw is None:
            if track is not None:
                track.rate_bps = None  # no reading, no rate: the last one is not now's
            return track
        if track is None:
            track = self._tracks[key] = _Track(raw=raw, total=raw, at=at)
            return track
        previous, elapsed = track.raw, at - track.at
        track.raw, track.at, track.rate_bps = raw, at, None
        if elapsed <= 0:
            return track
        verdict = judge_counter(previous, raw, sample.counter_bits, elapsed, limit, restart)
        verdicts[direction] = verdict
        if verdict.bytes is not None:
            track.total += verdict.bytes
            if verdict.seconds:
                track.rate_bps = verdict.bytes * 8 / verdict.seconds
        return track

    def _note(
        self, port: str, verdicts: dict[str, _Verdict], conditions: dict[str, frozenset[str]]
    ) -> None:
        """Count each verdict's reason; log a reason once until the port is believable again."""
        reasons = frozenset(v.reason for v in verdicts.values() if v.reason is not None)
        logged = self._conditions.get(port, frozenset())
        for direction, verdict in verdicts.items():
            reason = verdict.reason
            if reason is None:
                continue
            self.rejected[reason] += 1
            if reason in logged:
                continue
            logged |= {reason}
            if reason in _REFUSED:
                log.warning(
                    "%s: %s %s: delta refused (%s): %s; not counted as traffic",
                    self.device, port, direction, reason, verdict.detail,
                )  # fmt: skip
            else:
                log.info(
                    "%s: %s %s: counters started again (%s): %d bytes since added%s",
                    self.device, port, direction, reason, verdict.bytes,
                    "" if verdict.seconds else ", no rate this poll",
                )  # fmt: skip
        if reasons:
            conditions[port] = reasons


def _bits(octets: float, seconds: float) -> str:
    """A byte count over a time as a readable bit rate: "1.2 Tb/s"."""
    rate = octets * 8 / max(seconds, 1e-9)
    for unit, scale in (("Pb/s", 1e15), ("Tb/s", 1e12), ("Gb/s", 1e9), ("Mb/s", 1e6)):
        if rate >= scale:
            return f"{rate / scale:.3g} {unit}"
    return f"{rate / 1e3:.3g} kb/s"


def _against(why: str, limit: Ceiling, which: str = "ceiling") -> str:
    value = limit.limit if which == "ceiling" else limit.capacity
    return f"{why}, above the port's {which} of {_bits(value, 1)}"


def _share(
    previous: InterfaceSample | None, sample: InterfaceSample, bad: str, good: str, same_run: bool
) -> float | None:
    """bad / (good + bad) packets between two polls; None without two comparable readings.

    Error and discard counters are Counter32 on every device; unicast packet counters may be
    either width, so a packet delta going back is allowed one 32-bit wrap (64-bit never wraps).
    """
    if previous is None or not same_run:
        return None
    (bad_before, bad_now), (good_before, good_now) = (
        (getattr(previous, name), getattr(sample, name)) for name in (bad, good)
    )
    if None in (bad_before, bad_now, good_before, good_now):
        return None
    bad_delta = counter_delta(bad_before, bad_now, 32)
    good_delta = counter_delta(good_before, good_now, 32)
    if bad_delta is None or good_delta is None or bad_delta + good_delta == 0:
        return None
    return bad_delta / (bad_delta + good_delta)
