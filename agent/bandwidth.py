"""Bandwidth check: raw SNMP octet counters in, monotonic byte totals and bit rates out.

Device counters wrap (a 32-bit ifInOctets wraps every 34 s at 1 Gb/s) and restart from zero
when the device reboots (every power cut). This check keeps, per interface, a running byte total
that only grows, so Prometheus sees a clean counter and Grafana no spikes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

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

    def update(self, reading: SnmpReading, now: float) -> tuple[InterfaceStatus, ...]:
        """Fold a new reading in; `now` is a monotonic time taken when the reading arrived."""
        restarted = self._last_uptime is not None and reading.sys_uptime_ticks < self._last_uptime
        if restarted:
            self.restarts += 1
        elapsed = None if self._last_time is None else now - self._last_time
        uptime_seconds = reading.sys_uptime_ticks / 100
        statuses = tuple(
            self._judge(sample, elapsed, restarted, uptime_seconds) for sample in reading.interfaces
        )
        self._last_uptime = reading.sys_uptime_ticks
        self._last_time = now
        return statuses

    def _judge(
        self, sample: InterfaceSample, elapsed: float | None, restarted: bool, uptime: float
    ) -> InterfaceStatus:
        setting = self.settings.get(sample.name)
        rx = self._advance(sample, "receive", sample.in_octets, elapsed, restarted, uptime)
        tx = self._advance(sample, "transmit", sample.out_octets, elapsed, restarted, uptime)
        down = setting.capacity_down_mbps if setting else None
        up = setting.capacity_up_mbps if setting else None
        return InterfaceStatus(
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
        )

    def _advance(
        self,
        sample: InterfaceSample,
        direction: str,
        raw: int | None,
        elapsed: float | None,
        restarted: bool,
        uptime: float,
    ) -> _Track | None:
        key = (sample.name, direction)
        track = self._tracks.get(key)
        if raw is None:
            return track
        if track is None:
            track = self._tracks[key] = _Track(raw=raw, total=raw)
            return track
        delta, seconds = self._delta(sample, track.raw, raw, elapsed, restarted, uptime)
        track.raw = raw
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
