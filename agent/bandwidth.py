"""Bandwidth check: raw SNMP octet counters in, monotonic byte totals and bit rates out.

Device counters wrap (a 32-bit ifInOctets wraps every 34 s at 1 Gb/s) and restart from zero
when the device reboots (every power cut). This check keeps, per interface, a running byte total
that only grows, so Prometheus sees a clean counter and Grafana no spikes. A port whose
ifCounterDiscontinuityTime moved (a line card reset, a counter cleared) is treated like a
restart of that port alone. It also adds up the seconds a port ran at or above its saturation
threshold, and the share of packets that arrived with errors or were discarded.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

from collectors.readings import InterfaceSample, SnmpReading

from .config import InterfaceSettings

# A delta may exceed what the port speed allows by this factor before it is rejected: polls
# are timed by the agent, not the device, so a little jitter is normal.
_SPEED_TOLERANCE = 1.5


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
    receive_capacity_bps: float | None  # the contract (config) or the port speed
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
        rate, capacity = (
            (self.receive_bps, self.receive_capacity_bps)
            if direction == "receive"
            else (self.transmit_bps, self.transmit_capacity_bps)
        )
        if rate is None or not capacity:
            return None
        return rate / capacity


@dataclass(slots=True)
class _Track:
    """Running state of one counter direction of one port."""

    raw: int
    total: int
    at: float  # monotonic time of the raw reading
    rate_bps: float | None = None


def counter_delta(previous: int, current: int, bits: int) -> int | None:
    """Bytes between two raw readings, allowing one wrap of a 32-bit counter.

    A 64-bit counter going backwards is a reset, not a wrap (it would take decades to wrap):
    None says "no trustworthy delta".
    """
    if current >= previous:
        return current - previous
    if bits == 32:
        return current + (1 << 32) - previous
    return None


@dataclass
class BandwidthCheck:
    """Per-device state: one instance per router or switch, fed every poll."""

    device: str
    settings: dict[str, InterfaceSettings] = field(default_factory=dict)
    _tracks: dict[tuple[str, str], _Track] = field(default_factory=dict)
    _last_uptime: int | None = None
    _last_time: float | None = None
    rejected: Counter[str] = field(default_factory=Counter)  # reason -> count
    restarts: int = 0
    _previous: dict[str, InterfaceSample] = field(default_factory=dict)
    _saturated: Counter[tuple[str, str]] = field(default_factory=Counter)  # seconds

    def update(self, reading: SnmpReading, now: float) -> tuple[InterfaceStatus, ...]:
        """Fold a new reading in; `now` is a monotonic time taken when the reading arrived,
        used unless the reading says when its counters were answered (`read_at`)."""
        if reading.read_at is not None:
            now = reading.read_at
        restarted = self._last_uptime is not None and reading.sys_uptime_ticks < self._last_uptime
        if restarted:
            self.restarts += 1
        elapsed = None if self._last_time is None else now - self._last_time
        statuses = tuple(
            self._judge(sample, now, elapsed, restarted, reading.sys_uptime_ticks)
            for sample in reading.interfaces
        )
        self._last_uptime = reading.sys_uptime_ticks
        self._last_time = now
        self._previous = {sample.name: sample for sample in reading.interfaces}
        return statuses

    def _judge(
        self,
        sample: InterfaceSample,
        now: float,
        elapsed: float | None,
        restarted: bool,
        uptime_ticks: int,
    ) -> InterfaceStatus:
        setting = self.settings.get(sample.name)
        previous = self._previous.get(sample.name)
        uptime = uptime_ticks / 100
        if (
            not restarted
            and previous is not None
            and sample.discontinuity_ticks is not None
            and previous.discontinuity_ticks is not None
            and sample.discontinuity_ticks != previous.discontinuity_ticks
            and sample.discontinuity_ticks <= uptime_ticks
        ):
            # This port's counters restarted at ifCounterDiscontinuityTime: count from there.
            restarted, uptime = True, (uptime_ticks - sample.discontinuity_ticks) / 100
            self.rejected["port_discontinuity"] += 1
        # The row's own answer time when the table spanned several answers; else the poll's.
        at = sample.read_at if sample.read_at is not None else now
        rx = self._advance(sample, "receive", sample.in_octets, at, restarted, uptime)
        tx = self._advance(sample, "transmit", sample.out_octets, at, restarted, uptime)
        down = setting.capacity_down_mbps if setting else None
        up = setting.capacity_up_mbps if setting else None
        same_run = previous is not None and not restarted
        status = InterfaceStatus(
            name=sample.name,
            role=setting.role if setting else "lan",
            oper_up=sample.oper_up,
            admin_up=sample.admin_up,
            speed_bps=sample.speed_bps,
            counter_bits=sample.counter_bits,
            receive_bytes_total=rx.total if rx else None,
            transmit_bytes_total=tx.total if tx else None,
            receive_bps=rx.rate_bps if rx else None,
            transmit_bps=tx.rate_bps if tx else None,
            receive_capacity_bps=down * 1e6 if down else sample.speed_bps or None,
            transmit_capacity_bps=up * 1e6 if up else sample.speed_bps or None,
            in_errors=sample.in_errors,
            out_errors=sample.out_errors,
            in_discards=sample.in_discards,
            out_discards=sample.out_discards,
            in_error_ratio=_share(previous, sample, "in_errors", "in_packets", same_run),
            out_error_ratio=_share(previous, sample, "out_errors", "out_packets", same_run),
            in_discard_ratio=_share(previous, sample, "in_discards", "in_packets", same_run),
            out_discard_ratio=_share(previous, sample, "out_discards", "out_packets", same_run),
        )
        threshold = setting.saturation_threshold if setting else 0.9
        for direction in ("receive", "transmit"):
            utilization = status.utilization(direction)
            if utilization is not None and elapsed and utilization >= threshold:
                self._saturated[(sample.name, direction)] += elapsed
        return replace(
            status,
            receive_saturated_seconds=self._saturated[(sample.name, "receive")],
            transmit_saturated_seconds=self._saturated[(sample.name, "transmit")],
        )

    def _advance(
        self,
        sample: InterfaceSample,
        direction: str,
        raw: int | None,
        at: float,
        restarted: bool,
        uptime: float,
    ) -> _Track | None:
        key = (sample.name, direction)
        track = self._tracks.get(key)
        if raw is None:
            return track
        if track is None:
            track = self._tracks[key] = _Track(raw=raw, total=raw, at=at)
            return track
        delta, seconds = self._delta(sample, track.raw, raw, at - track.at, restarted, uptime)
        track.raw, track.at = raw, at
        if delta is None or not seconds:
            track.rate_bps = None
            return track
        track.total += delta
        track.rate_bps = delta * 8 / seconds
        return track

    def _delta(
        self,
        sample: InterfaceSample,
        previous: int,
        current: int,
        elapsed: float | None,
        restarted: bool,
        uptime: float,
    ) -> tuple[int | None, float | None]:
        """The bytes to add and the seconds they span, or (None, None) when unknowable."""
        limit = sample.speed_bps / 8 * _SPEED_TOLERANCE if sample.speed_bps else None
        if restarted:
            # The device counted from zero since it booted: those bytes are real traffic.
            if limit is not None and current > limit * max(uptime, 1.0):
                self.rejected["restart_implausible"] += 1
                return None, None
            return current, uptime or None
        if elapsed is None or elapsed <= 0:
            return None, None
        if (
            sample.counter_bits == 32
            and sample.speed_bps
            and elapsed * sample.speed_bps / 8 > (1 << 32)
        ):
            # At this speed the counter may have wrapped more than once since the last poll.
            self.rejected["wrap_ambiguous"] += 1
            return None, None
        delta = counter_delta(previous, current, sample.counter_bits)
        if delta is None:
            self.rejected["counter_reset"] += 1
            return None, None
        if limit is not None and delta > limit * elapsed:
            self.rejected["above_speed"] += 1
            return None, None
        return delta, elapsed


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
