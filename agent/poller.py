"""One poll of one device: collector -> check -> state, bounded in time, never raising.

A failed poll marks only its own device down with a reason; the log says so once per change of
state (down with a new reason, or back up), not on every poll. Each device kind's module
(agent/kinds/) builds its poller: its collector, its judge and poll_budget.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any, Protocol

from collectors.readings import PollError, SnmpReading, UpsReading

from .checks.access import AccessCheck
from .checks.bandwidth import BandwidthCheck
from .checks.battery import BatteryMonitor
from .checks.power import PowerCheck, UpsStatus
from .checks.wan import WanCheck
from .config import SnmpDevice
from .state import DeviceState, RouterStatus

log = logging.getLogger(__name__)

# Share of the interval a poll may take before it is cut off; the rest is slack for the loop.
_BUDGET_SHARE = 0.9


class Collector(Protocol):
    async def poll(self) -> Any: ...

    async def close(self) -> None: ...


class Judge(Protocol):
    """Turns a reading into the device's status, keeping whatever the check needs between polls."""

    def apply(self, reading: Any, now: float, state: DeviceState) -> None: ...

    def flush(self) -> None: ...


class RouterJudge:
    """Turns SNMP readings into router status, keeping the counter state between polls."""

    def __init__(self, device: SnmpDevice, ups: UpsJudge | None = None) -> None:
        self.bandwidth = BandwidthCheck(
            device.name, {i.name: i for i in device.interfaces}, device.ports.auto_uplinks
        )
        self.access = AccessCheck(device.name)
        self.wan = WanCheck(device.name)
        # A UPS network card (reading.ups set) is judged like any UPS, beside its ports.
        self.ups = ups or UpsJudge(device.name)

    def apply(self, reading: SnmpReading, now: float, state: DeviceState) -> None:
        interfaces = self.bandwidth.update(reading, now)
        state.counter_rejections = Counter(self.bandwidth.rejected)
        state.restarts = self.bandwidth.restarts
        state.status = RouterStatus(
            sys_name=reading.sys_name,
            sys_descr=reading.sys_descr,
            sys_object_id=reading.sys_object_id,
            uptime_seconds=reading.sys_uptime_ticks / 100,
            interfaces=interfaces,
            requests=reading.requests,
            varbinds=reading.varbinds,
            wan=self.wan.update(interfaces),
            retries=reading.retries,
            health=reading.health,
            profile=reading.profile,
            counter_rejections=tuple(sorted(self.bandwidth.rejected.items())),
            ups=self.ups.judge(reading.ups, state) if reading.ups is not None else None,
            access=self.access.update(reading.interfaces, interfaces),
        )

    def flush(self) -> None:
        self.ups.flush()


class UpsJudge:
    """Turns UPS readings into power status."""

    def __init__(self, device_name: str, battery: BatteryMonitor | None = None) -> None:
        self.power = PowerCheck(device_name)
        # Outage ledger and battery health; in memory only unless given one with a state_dir.
        self.battery = battery or BatteryMonitor(device_name)

    def apply(self, reading: UpsReading, now: float, state: DeviceState) -> None:
        if not isinstance(reading, UpsReading):  # a generator's profile under modbus:
            raise PollError("config", "the profile is not a UPS's: list a genset under genset:")
        state.status = self.judge(reading, state)

    def judge(self, reading: UpsReading, state: DeviceState) -> UpsStatus:
        """The power status of one reading; updates the battery report and invalid counts."""
        state.invalid_samples.update(reading.invalid)
        state.battery = self.battery.update(reading)
        return self.power.update(reading)

    def flush(self) -> None:
        """Save the battery state changed since the last rate-limited save."""
        self.battery.flush()


class DevicePoller:
    """Polls one device when the scheduler says so; at most one poll at a time."""

    def __init__(
        self,
        state: DeviceState,
        collector: Collector,
        judge: Judge,
        budget_seconds: float,
    ) -> None:
        self.state = state
        self.collector = collector
        self.judge = judge
        self.budget_seconds = budget_seconds
        self._lock = asyncio.Lock()

    async def poll(self) -> None:
        if self._lock.locked():  # the scheduler already prevents this; a manual call may not
            return
        async with self._lock:
            started = time.monotonic()
            try:
                async with asyncio.timeout(self.budget_seconds):  # in this task: see community.py
                    reading = await self.collector.poll()
                self.judge.apply(reading, time.monotonic(), self.state)
            except PollError as exc:
                self._failed(exc.reason, str(exc))
            except TimeoutError:
                self._failed(
                    "timeout",
                    f"no complete answer within {self.budget_seconds:g} s; the device is slow "
                    "or unreachable",
                )
            except Exception as exc:  # a bug or an answer nobody foresaw: keep the daemon alive
                log.debug("%s: poll failed", self.state.name, exc_info=True)
                self._failed("error", f"unexpected {type(exc).__name__} while polling: {exc}")
            else:
                self._succeeded()
            finally:
                self.state.poll_duration = time.monotonic() - started

    def _succeeded(self) -> None:
        state = self.state
        if state.up is False:
            log.info("%s: answering again after %s", state.name, state.reason)
        elif state.up is None:
            log.info("%s: first poll ok", state.name)
        state.up, state.reason, state.message = True, "ok", ""
        state.last_success = time.time()

    def _failed(self, reason: str, message: str) -> None:
        state = self.state
        state.errors[reason] += 1
        if state.up is not False or state.reason != reason:
            log.warning("%s: down (%s): %s", state.name, reason, message)
        state.up, state.reason, state.message = False, reason, message

    async def close(self) -> None:
        self.judge.flush()
        try:
            await self.collector.close()
        except Exception:  # closing a dead connection must not stop a shutdown
            log.debug("%s: close failed", self.state.name, exc_info=True)


def poll_budget(interval: float, timeout: float, retries: int) -> float:
    """Time one poll may take: most of the interval, but at least one request's full retry."""
    return max(interval * _BUDGET_SHARE, timeout * (retries + 1))
