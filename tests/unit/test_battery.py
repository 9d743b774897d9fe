"""Battery checks from synthetic polls: outage ledger, recharge, self-test, health, restarts."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest

from agent.battery import BatteryMonitor, Nameplate, RuntimeModel, ageing_factor, selftest_code
from collectors.readings import UpsReading

T0 = dt.datetime(2025, 6, 1, tzinfo=dt.UTC).timestamp()


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def poll(
    flags: set[str],
    charge: float,
    load: float = 30.0,
    volts: float = 27.2,
    temp: float = 25.0,
    test: str | None = None,
) -> UpsReading:
    info = {} if test is None else {"ups.test.result": test}
    return UpsReading(
        values={
            "battery.charge": charge,
            "ups.load": load,
            "battery.voltage": volts,
            "battery.temperature": temp,
            "ups.realpower.nominal": 1000.0,
            "battery.runtime": 3000.0,
        },
        info=info,
        flags=frozenset(flags),
        known_flags=frozenset({"OL", "OB"}),
    )


def outage(m: BatteryMonitor, clock: Clock, minutes: int, drop_per_min: float, start: float = 100):
    """On line one minute, then `minutes` on battery losing `drop_per_min` % a minute."""
    m.update(poll({"OL"}, start))
    charge = start
    for _ in range(minutes):
        clock.now += 60
        m.update(poll({"OB"}, charge, volts=25.0))
        charge -= drop_per_min
    clock.now += 60
    return m.update(poll({"OL"}, charge))


def test_runtime_model_is_nuts_power_law() -> None:
    model = RuntimeModel(240, 100, 720, 50)
    assert model.exponent == pytest.approx(1.585, abs=1e-3)
    assert model.full_runtime(100) == pytest.approx(240)
    assert model.full_runtime(50) == pytest.approx(720)
    assert ageing_factor(33.3) == pytest.approx(2.0)


def test_outage_ledger_counts_durations_and_depth() -> None:
    clock = Clock()
    m = BatteryMonitor("ups", clock=clock)
    report = outage(m, clock, minutes=10, drop_per_min=1.0)
    assert report.outages == 1
    assert report.last_outage_seconds == 600  # first OB poll to first OL poll
    assert report.on_battery_seconds == 600
    assert report.last_depth_of_discharge == pytest.approx(0.09)
    buckets = dict(report.histogram)
    assert buckets[300.0] == 0 and buckets[600.0] == 1 and buckets[float("inf")] == 1
    assert report.typical_outage_seconds is None  # needs three outages


def test_recharge_time_and_cut_before_recharged() -> None:
    clock = Clock()
    m = BatteryMonitor("ups", clock=clock)
    outage(m, clock, minutes=10, drop_per_min=2.0)  # ends at 80 %
    clock.now += 1800
    m.update(poll({"OL"}, 95.0))
    clock.now += 60
    report = m.update(poll({"OB"}, 94.0))  # second cut on a half-recharged battery
    assert report.outages == 2 and report.outages_before_recharged == 1
    clock.now += 60
    m.update(poll({"OL"}, 93.0))
    clock.now += 3600
    report = m.update(poll({"OL"}, 99.5))
    assert report.last_recharge_seconds == 3600
    assert report.outages_before_recharged == 1


def test_self_test_is_not_an_outage_and_its_result_is_a_code() -> None:
    clock = Clock()
    m = BatteryMonitor("ups", clock=clock)
    m.update(poll({"OL"}, 100, test="No test initiated"))
    clock.now += 10
    m.update(poll({"OB", "TEST"}, 100, test="In progress"))
    clock.now += 20
    report = m.update(poll({"OL"}, 100, test="Done and passed"))
    assert report.outages == 0 and report.selftest_result == "passed"
    clock.now += 3600
    report = m.update(poll({"OL"}, 100, test="Done and passed"))
    assert report.selftest_age_seconds == 3600
    assert selftest_code("Done and error") == "failed"


def test_health_from_discharges_against_the_nameplate(caplog) -> None:
    clock = Clock()
    # New battery: 100 % -> 0 in 100 min at 30 % load, i.e. 1 % a minute.
    model = RuntimeModel(6000 * (30 / 100) ** 1.3, 100, 6000 * (30 / 50) ** 1.3, 50)
    cal = (model.full_runtime(100), 100.0, model.full_runtime(50), 50.0)
    plate = Nameplate(runtimecal=cal, installed=dt.date(2025, 5, 1))
    new = BatteryMonitor("new", plate, clock=clock)
    report = outage(new, clock, 30, 1.0)
    assert report.health_discharges == 1 and report.capacity_ratio == pytest.approx(1.0, abs=0.02)
    old = BatteryMonitor("old", plate, clock=clock)
    with caplog.at_level(logging.WARNING, logger="agent.battery"):
        for _ in range(2):
            report = outage(old, clock, 30, 2.0)  # charge falls twice as fast: half the capacity
            clock.now += 6 * 3600
    assert report.capacity_ratio == pytest.approx(0.5, abs=0.02)
    assert report.health == pytest.approx(0.6, abs=0.05)  # the age prior still pulls a little
    assert report.health_discharges == 2
    assert "old: battery health" in caplog.text and "plan a replacement" in caplog.text


def test_age_and_heat_without_discharges() -> None:
    clock = Clock()
    installed = dt.date(2023, 6, 1)  # two years before T0
    cool = BatteryMonitor("cool", Nameplate(installed=installed), clock=clock)
    hot = BatteryMonitor("hot", Nameplate(installed=installed), clock=clock)
    for _ in range(3):
        cool.update(poll({"OL"}, 100, temp=25.0))
        hot.update(poll({"OL"}, 100, temp=41.6))  # two halvings: ages four times as fast
        clock.now += 60
    assert cool.report(clock.now).life_used_ratio == pytest.approx(2 / 5, abs=0.01)
    assert hot.report(clock.now).life_used_ratio == pytest.approx(4 * 2 / 5, abs=0.02)
    assert cool.report(clock.now).health == pytest.approx(1 - 0.2 * 0.4, abs=0.01)
    assert hot.report(clock.now).health == pytest.approx(1 - 0.2 * 1.6, abs=0.01)


def test_runtime_margin_against_the_typical_cut() -> None:
    clock = Clock()
    m = BatteryMonitor("ups", clock=clock)
    for minutes in (10, 20, 30):
        outage(m, clock, minutes, 0.5)
        clock.now += 8 * 3600
    report = m.update(poll({"OL"}, 100))  # UPS says 3000 s left
    # p90 of 600, 1200, 1800 s (inclusive quantiles): 1200 + 0.8 * 600
    assert report.typical_outage_seconds == pytest.approx(1680)
    assert report.runtime_margin_seconds == pytest.approx(3000 - report.typical_outage_seconds)


def test_rising_resistance_caps_health() -> None:
    clock = Clock()
    m = BatteryMonitor("ups", Nameplate(installed=dt.date(2025, 5, 1)), clock=clock)
    for i in range(8):
        m.update(poll({"OL"}, 100, volts=27.2))
        clock.now += 60
        volts = 26.0 if i < 4 else 25.5  # bigger step when mains is lost: resistance up ~40 %
        m.update(poll({"OB"}, 99, volts=volts))
        clock.now += 60
        report = m.update(poll({"OL"}, 99))
        clock.now += 3600
    assert report.resistance_rise_ratio is not None and report.resistance_rise_ratio > 1.2
    assert report.health == 0.8


def test_restart_mid_outage_closes_it_at_the_last_sighting(tmp_path: Path) -> None:
    clock = Clock()
    m = BatteryMonitor("ups", state_dir=tmp_path, clock=clock)
    m.update(poll({"OL"}, 100))
    clock.now += 60
    m.update(poll({"OB"}, 99))
    clock.now += 60
    m.update(poll({"OB"}, 98))  # saved at the start event; this one may be rate-limited
    m.flush()
    clock.now += 3 * 3600  # agent down for three hours
    again = BatteryMonitor("ups", state_dir=tmp_path, clock=clock)
    report = again.update(poll({"OL"}, 100))
    assert report.outages == 1
    assert report.last_outage_seconds == 60  # what was seen, not the three hours away
