"""Battery checks from synthetic polls: outage ledger, recharge, self-test, health, restarts."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import pytest

from agent.checks.battery import (
    BatteryMonitor,
    Nameplate,
    RuntimeModel,
    ageing_factor,
    selftest_code,
)
from collectors.readings import UpsReading

T0 = dt.datetime(2025, 6, 1, tzinfo=dt.UTC).timestamp()


class Clock:
    """The monitor's two clocks: `now` is the monotonic one, `wall()` the calendar, which NTP
    may step on its own (`step_wall`). Advancing `now` moves both, as real time does."""

    def __init__(self, boot: str = "boot-1") -> None:
        self.now = 5000.0  # seconds since boot
        self.offset = T0 - self.now
        self.boot = boot

    def __call__(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.now + self.offset

    def step_wall(self, seconds: float) -> None:
        self.offset += seconds

    def boot_id(self) -> str:
        return self.boot

    def reboot(self, uptime: float = 30.0) -> None:
        """A new boot: the monotonic clock starts again, the wall clock runs on."""
        wall = self.wall()
        self.boot += "+"
        self.now = uptime
        self.offset = wall - uptime


def monitor(name: str, clock: Clock, nameplate: Nameplate | None = None, **kw) -> BatteryMonitor:
    return BatteryMonitor(
        name, nameplate, clock=clock, wall=clock.wall, boot_id=clock.boot_id, **kw
    )


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
    m = monitor("ups", clock)
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
    m = monitor("ups", clock)
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
    m = monitor("ups", clock)
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
    new = monitor("new", clock, plate)
    report = outage(new, clock, 30, 1.0)
    assert report.health_discharges == 1 and report.capacity_ratio == pytest.approx(1.0, abs=0.02)
    old = monitor("old", clock, plate)
    with caplog.at_level(logging.WARNING, logger="agent.checks.battery"):
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
    cool = monitor("cool", clock, Nameplate(installed=installed))
    hot = monitor("hot", clock, Nameplate(installed=installed))
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
    m = monitor("ups", clock)
    for minutes in (10, 20, 30):
        outage(m, clock, minutes, 0.5)
        clock.now += 8 * 3600
    report = m.update(poll({"OL"}, 100))  # UPS says 3000 s left
    # p90 of 600, 1200, 1800 s (inclusive quantiles): 1200 + 0.8 * 600
    assert report.typical_outage_seconds == pytest.approx(1680)
    assert report.runtime_margin_seconds == pytest.approx(3000 - report.typical_outage_seconds)


def test_rising_resistance_caps_health() -> None:
    clock = Clock()
    m = monitor("ups", clock, Nameplate(installed=dt.date(2025, 5, 1)))
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
    m = monitor("ups", clock, state_dir=tmp_path)
    m.update(poll({"OL"}, 100))
    clock.now += 60
    m.update(poll({"OB"}, 99))
    clock.now += 60
    m.update(poll({"OB"}, 98))  # saved at the start event; this one may be rate-limited
    m.flush()
    clock.now += 3 * 3600  # agent down for three hours
    again = monitor("ups", clock, state_dir=tmp_path)
    report = again.update(poll({"OL"}, 100))
    assert report.outages == 1
    assert report.last_outage_seconds == 60  # what was seen, not the three hours away


def cut(m: BatteryMonitor, clock: Clock, minutes: int, step_wall_at: int | None = None) -> None:
    """Mains lost for `minutes`, polled every 30 s; the wall clock stepped +1 h at a minute."""
    m.update(poll({"OL"}, 100))
    charge = 100.0
    for second in range(30, minutes * 60 + 1, 30):
        clock.now += 30
        if step_wall_at is not None and second == step_wall_at * 60:
            clock.step_wall(3600)  # NTP corrects a box that booted an hour behind
        charge -= 0.25
        m.update(poll({"OB"}, charge, volts=25.0))
    clock.now += 30
    m.update(poll({"OL"}, charge))


def test_wall_clock_step_mid_cut_leaves_one_outage_of_the_right_length(caplog) -> None:
    clock = Clock()
    m = monitor("ups", clock)
    with caplog.at_level(logging.WARNING, logger="agent.checks.battery"):
        cut(m, clock, minutes=20, step_wall_at=5)
    report = m.report()
    assert report.outages == 1
    assert report.last_outage_seconds == 20 * 60 + 30 - 30  # first OB poll to first OL poll
    assert report.on_battery_seconds == 20 * 60
    assert report.outages_before_recharged == 0
    assert "lost again" not in caplog.text
    clock.step_wall(-7200)  # and back, two hours: recharge and self-test ages do not care
    clock.now += 600
    report = m.update(poll({"OL"}, 100, test="Done and passed"))
    assert report.last_recharge_seconds == 600


def test_restart_on_the_same_boot_keeps_monotonic_stamps(tmp_path: Path) -> None:
    clock = Clock()
    m = monitor("ups", clock, state_dir=tmp_path)
    m.update(poll({"OL"}, 100))
    clock.now += 60
    m.update(poll({"OB"}, 99))
    m.flush()
    clock.now += 20  # a quick restart (upgrade, reload) in the middle of the cut...
    clock.step_wall(-3600)  # ...while NTP stepped the wall clock back an hour
    again = monitor("ups", clock, state_dir=tmp_path)
    again.update(poll({"OB"}, 98))
    clock.now += 100
    report = again.update(poll({"OL"}, 97))
    assert report.outages == 1 and report.last_outage_seconds == 120
    assert report.on_battery_seconds == 120


def test_restart_after_a_reboot_measures_the_gap_with_the_wall_clock(tmp_path: Path) -> None:
    clock = Clock()
    m = monitor("ups", clock, state_dir=tmp_path)
    m.update(poll({"OL"}, 100))
    clock.now += 60
    m.update(poll({"OB"}, 99))
    m.flush()
    clock.now += 40
    clock.reboot(uptime=50)  # the box rebooted; the monotonic clock began again at 0
    again = monitor("ups", clock, state_dir=tmp_path)
    report = again.update(poll({"OB"}, 97))  # 40 s of wall time after the first OB poll
    clock.now += 60
    report = again.update(poll({"OL"}, 96))
    assert report.outages == 1 and report.last_outage_seconds == pytest.approx(100)


def test_reboot_with_a_wall_clock_behind_the_save_is_time_away_unknown(tmp_path: Path) -> None:
    clock = Clock()
    m = monitor("ups", clock, state_dir=tmp_path)
    cut(m, clock, minutes=5)  # recharge pending from here
    clock.now += 60
    m.update(poll({"OB"}, 97, volts=25.0))
    m.flush()
    clock.reboot(uptime=40)
    clock.step_wall(-30 * 86400)  # no RTC battery: the box came up a month in the past
    again = monitor("ups", clock, state_dir=tmp_path)
    clock.now += 30
    report = again.update(poll({"OL"}, 99.5))
    assert report.outages == 2
    assert report.last_outage_seconds == 0  # seen on battery once; the rest is unknown
    assert report.last_recharge_seconds is None  # not a made-up duration


def test_version_1_state_with_wall_clock_stamps_is_migrated(tmp_path: Path) -> None:
    clock = Clock()
    wall = clock.wall()
    old = {
        "version": 1, "outages": 5, "on_battery_seconds": 7200.0,
        "buckets": [0, 0, 0, 0, 2, 2, 0, 0, 0], "duration_sum": 7200.0,
        "durations": [1200.0, 1200.0, 2400.0, 2400.0], "last_outage_seconds": 2400.0,
        "last_dod": 0.4, "recharge_from": wall - 1800, "last_recharge_seconds": None,
        "before_recharged": 1, "capacity": [], "baseline_runtimes": [], "resistance": [],
        "efc": 1.6, "heat_seconds": 1e5, "watched_seconds": 1e5, "temp_seconds": 2.5e6,
        "first_seen": wall - 86400, "last_update": wall - 60,
        "last_on_line": [wall - 60, 27.2], "selftest": "passed", "selftest_since": wall - 600,
        "worn_logged": False,
        "current": {
            "start": wall - 120, "last_seen": wall - 60, "test": False, "charge_first": 100.0,
            "charge_min": 99.0, "t_last": wall - 60, "charge_last": 99.0, "load_sum": 60.0,
            "load_n": 2, "load_min": 30.0, "load_max": 30.0,
        },
    }  # fmt: skip
    (tmp_path / "ups-ups.json").write_text(json.dumps(old))
    m = monitor("ups", clock, state_dir=tmp_path)
    report = m.update(poll({"OL"}, 99))
    assert report.state_errors == {}  # migrated, not set aside
    assert report.outages == 5 and report.last_outage_seconds == pytest.approx(120)
    assert report.selftest_age_seconds == pytest.approx(600)
    m.flush()
    assert json.loads((tmp_path / "ups-ups.json").read_text())["version"] == 2


def test_runtime_margin_counts_only_the_cut_still_expected() -> None:
    """Deep into a long cut the p90 is behind us: what is left must last a shutdown margin, not
    a whole typical cut, or every long cut ends in a false critical alert."""
    clock = Clock()
    m = monitor("ups", clock, shutdown_margin_seconds=300)
    for minutes in (10, 20, 30):
        outage(m, clock, minutes, 0.5)
        clock.now += 8 * 3600
    on_mains = m.update(poll({"OL"}, 100))  # the UPS says 3000 s left
    typical = on_mains.typical_outage_seconds
    assert typical == pytest.approx(1680)
    assert on_mains.runtime_margin_seconds == pytest.approx(3000 - 1680 - 300)
    m.update(poll({"OB"}, 99))
    for _ in range(2):
        clock.now += 500
        mid = m.update(poll({"OB"}, 90))
    assert mid.runtime_margin_seconds == pytest.approx(3000 - (1680 - 1000) - 300)
    for _ in range(4):  # well past the typical cut: only the shutdown margin is still needed
        clock.now += 500
        late = m.update(poll({"OB"}, 60))
    assert late.runtime_margin_seconds == pytest.approx(3000 - 300)
    test = monitor("t", clock)
    for minutes in (10, 20, 30):
        outage(test, clock, minutes, 0.5)
    assert test.update(poll({"OL"}, 100)).runtime_margin_seconds == pytest.approx(3000 - 1680)


def test_self_test_discharge_is_not_on_battery_time() -> None:
    clock = Clock()
    m = monitor("ups", clock)
    m.update(poll({"OL"}, 100))
    for _ in range(4):
        clock.now += 30
        report = m.update(poll({"OB", "TEST"}, 99, test="In progress"))
    clock.now += 30
    report = m.update(poll({"OL"}, 99, test="Done and passed"))
    assert report.outages == 0 and report.on_battery_seconds == 0
    assert report.last_recharge_seconds is None and report.outages_before_recharged == 0
