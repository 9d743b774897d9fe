"""Battery health through the real pipeline: simulator -> Modbus TCP -> collector -> UpsJudge.

A fake clock drives the simulated UPS and the battery monitor together, so days of load-shedding
pass in seconds; the estimate must find the simulator's true health.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from agent.checks.battery import BatteryMonitor, BatteryReport, Nameplate
from agent.poller import UpsJudge
from agent.state import DeviceState
from collectors.modbus.collector import ModbusCollector
from collectors.modbus.profile import load_profile
from collectors.readings import PollError
from simulators.scenarios import aged_battery, gateway_reboot, new_battery, ups_silent
from simulators.ups import SimulatedUps

pytestmark = pytest.mark.integration

PROFILE = load_profile("apc-smart-ups")
START = dt.datetime(2025, 6, 1, tzinfo=dt.UTC).timestamp()  # midnight; the first cut is at 08:00


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


async def live_days(
    ups: SimulatedUps, clock: FakeClock, judge: UpsJudge, days: int
) -> list[tuple[int, float | None]]:
    """Poll through `days` simulated days: every minute on battery, every 10 min on mains.

    Returns (outages so far, health) after each finished outage.
    """
    _, port = await ups.start()
    collector = ModbusCollector("127.0.0.1", port, 1, PROFILE, 2.0, 0)
    state = DeviceState("ups-rack", "modbus")
    after_outages: list[tuple[int, float | None]] = []
    end = clock.now + days * 86400
    try:
        while clock.now < end:
            reading = await collector.poll()
            on_battery_before = bool(state.battery and judge.battery.s["current"])
            judge.apply(reading, clock.now, state)
            assert state.battery is not None
            if on_battery_before and not judge.battery.s["current"]:
                after_outages.append((state.battery.outages, state.battery.health))
            soon_on_battery = "OB" in reading.flags or not ups.mains_on(clock.now + 600)
            clock.now += 60 if soon_on_battery else 600
    finally:
        await collector.close()
        await ups.stop()
    return after_outages


def judge_for(ups: SimulatedUps, clock: FakeClock, state_dir: Path | None = None) -> UpsJudge:
    nameplate = Nameplate(runtimecal=ups.runtimecal(), installed=dt.date(2025, 3, 1))
    monitor = BatteryMonitor("ups-rack", nameplate, state_dir, clock=clock, wall=clock)
    return UpsJudge("ups-rack", monitor)


def test_aged_battery_is_recognised_and_a_new_one_is_not(tmp_path: Path) -> None:
    async def go() -> tuple[list[tuple[int, float | None]], list[tuple[int, float | None]]]:
        aged_clock, new_clock = FakeClock(), FakeClock()
        aged = aged_battery(clock=aged_clock)
        new = new_battery(clock=new_clock)
        aged_history = await live_days(aged, aged_clock, judge_for(aged, aged_clock), days=2)
        new_history = await live_days(new, new_clock, judge_for(new, new_clock), days=2)
        return aged_history, new_history

    aged_history, new_history = asyncio.run(asyncio.wait_for(go(), 120))
    # Three cuts a day for two days.
    assert [n for n, _ in aged_history] == [1, 2, 3, 4, 5, 6]
    needed = next(
        n for n, health in aged_history if health is not None and abs(health - 0.6) <= 0.1
    )
    print(f"aged battery: estimate within 0.1 of 0.6 after {needed} outages: {aged_history}")
    assert needed <= 2
    # Once there, it stays there.
    assert all(abs(h - 0.6) <= 0.1 for n, h in aged_history if n >= needed and h is not None)
    print(f"new battery: {new_history}")
    assert all(h is not None and h >= 0.9 for _, h in new_history)


def test_health_and_ledger_survive_a_restart(tmp_path: Path) -> None:
    async def go() -> tuple[BatteryReport, BatteryReport]:
        clock = FakeClock()
        ups = aged_battery(clock=clock)
        first = judge_for(ups, clock, tmp_path)
        await live_days(ups, clock, first, days=1)
        before = first.battery.report(clock.now)
        # A new agent process: a fresh monitor that only has the state directory.
        second = judge_for(ups, clock, tmp_path)
        return before, second.battery.report(clock.now)

    before, after = asyncio.run(asyncio.wait_for(go(), 60))
    assert before.outages == after.outages == 3
    assert after.health == pytest.approx(before.health)
    assert after.health_discharges == before.health_discharges >= 2
    assert after.on_battery_seconds == before.on_battery_seconds > 3 * 3000


def test_gateway_reboot_and_silent_ups_fail_polls_then_recover() -> None:
    async def go() -> list[str]:
        clock = FakeClock()
        ups = new_battery(clock=clock)
        _, port = await ups.start()
        collector = ModbusCollector("127.0.0.1", port, 1, PROFILE, 0.3, 0)
        seen: list[str] = []

        async def poll() -> None:
            try:
                await collector.poll()
                seen.append("ok")
            except PollError as exc:
                seen.append(exc.reason)

        try:
            await poll()
            reboot = asyncio.create_task(gateway_reboot(ups, 0.5))
            await asyncio.sleep(0.1)
            await poll()  # nothing listens
            await reboot
            for _ in range(20):  # back on the same port, once the collector's back-off allows
                await poll()
                if seen[-1] == "ok":
                    break
                await asyncio.sleep(0.25)
            with ups_silent(ups):
                await poll()  # connected, but no answer
            await poll()
        finally:
            await collector.close()
            await ups.stop()
        return seen

    seen = asyncio.run(asyncio.wait_for(go(), 30))
    assert seen[0] == "ok"
    assert seen[1] in ("refused", "unreachable", "timeout")
    assert seen[-3] == "ok", seen  # recovered after the reboot
    assert seen[-2] == "timeout"  # silent UPS
    assert seen[-1] == "ok"
