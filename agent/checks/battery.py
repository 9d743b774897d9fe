"""Battery health from what the UPS shows poll after poll: outages, recharges, state of health.

No UPS exporter computes these (peer-features.md section 8); the methods are those of
ups-modbus-maps.md section 5. Everything is kept per UPS, saved to a small JSON file under
`state_dir` (agent/persist.py) and reloaded at start, so a restart or crash loses nothing.

Outage ledger. An outage starts at the first poll at which mains is lost and ends at the first
poll at which it is back; mains lost is agent.checks.power.mains_lost (OB outside a self-test or a
runtime calibration), the same test that sets erozgar_ups_on_battery, so a UPS testing its
battery is neither an outage nor time on battery.
Each outage adds to a counter, a duration histogram (1 min .. 4 h buckets, for load-shedding
cuts), the seconds on battery, and records its depth of discharge (charge before minus the
lowest charge seen). The 90th percentile of the last 200 outage durations is the site's
"typical cut".

State of health (0..1, 1 = as rated). Four pieces of evidence:

1. Capacity from observed discharges (section 5.2, the main one). Between the first and last
   on-battery polls of an outage the charge falls by dQ % in dt seconds at an average load L %,
   so the battery would last T_meas = dt / (dQ/100) from full at that load. The battery's
   nameplate runtime at that load comes from NUT's runtime model (nutdrv_qx "runtimecal", two
   datasheet points T_h at L_h and T_l at L_l): n = ln(T_l/T_h)/ln(L_h/L_l) (a Peukert-like
   exponent), T(L) = T_h * (L/L_h)^-n. One discharge gives SOH_rt = T_meas / T(L). Discharges
   count only when the load was steady (max/min <= 1.3), above 5 %, the charge fell by >= 5 %
   and it lasted >= 60 s; a discharge weighs min(1, dQ/20 %), so a deep cut says more than a
   short one. Without a nameplate (config `battery_runtimecal`) the reference is the battery's
   own first three discharges, normalised to 50 % load with NUT's default exponent: health
   then says "compared with when the agent first saw it". This assumes the UPS reports charge
   against its rated capacity (voltage or coulomb based), as most do.
2. Battery age and heat (sections 5.6, 5.7). Life used = (time since the install date, from
   config `battery_installed` or the UPS's own battery date, each second weighted by the
   Arrhenius factor 2^((T - 25 C)/8.3 C) of the battery temperature seen, the mean of it for
   time before the agent watched) / design life (config, default 5 years), plus equivalent
   full cycles / 260 (CSB GP12400: more than 260 cycles at 100 % DoD). IEEE 450/1188 call a
   battery at 80 % of rated capacity worn out, so the age prior is 1 - 0.2 * life used.
3. The prior and the discharges are combined as a weighted mean: the prior weighs 0.5, each of
   the last 8 discharges its own weight. Measured evidence therefore wins after one or two
   deep cuts; with none, health rests on age and heat alone.
4. Voltage sag at the switch to battery (section 5.4): R = (V_before - V_after) / I with I =
   P / (0.9 * V_after), at the first on-battery poll. Its median over the last 5 outages
   against the median of the first 3 is the resistance rise; at +20 % (the IEEE 1188 / Fluke
   threshold) health is capped at 0.8, "replace soon", whatever the other evidence says.

`erozgar_ups_battery_health_discharges` says how many discharges the figure rests on.

Runtime adequacy: margin = runtime left - cut still expected - shutdown margin. Runtime left is
at the present load and charge (our estimate, health times the nameplate runtime, when there is
a nameplate; else the UPS's own figure). The cut still expected is the typical (p90) cut minus
the time this cut has already lasted, floored at 0 (on mains: the whole typical cut): a cut
that has outlasted the p90 is not expected to last another p90, so its end raises no false
alert. The shutdown margin is the per-UPS config `shutdown_margin_seconds` (default 0): the
time the site needs to shut its equipment down cleanly. Negative: the battery would not carry
the load through the rest of a typical cut and a clean shutdown. No margin before three
outages have given a p90.

Recharge: from the end of an outage to the first poll at >= 99 % charge. A cut that starts
before that is counted as "outage before recharged".

Self-test: the UPS's result in NUT words (`ups.test.result`: "Done and passed", ...) becomes a
code; its age is counted from when the agent first saw that result (the UPS gives no date).

Time. Every duration (outage length, time on battery, recharge, a discharge's seconds, the gap
between polls that heat and age integrate, self-test age) is a difference of monotonic stamps
(`clock`, time.monotonic: CLOCK_MONOTONIC, which NTP slews but never steps), so an NTP step of
an hour in a cut leaves one cut of the right length. The wall clock (`wall`) only dates what is
calendar based: when the agent first saw the battery, against its install date, and when a
capacity observation was made.

Monotonic stamps mean nothing in another boot, yet the state outlives the process. The file
therefore records, at each save, the kernel's boot id (/proc/sys/kernel/random/boot_id) and the
monotonic and wall clocks read together. At load:
- same boot id: CLOCK_MONOTONIC has run on since the save; the stamps are used as they are,
  whatever the wall clock did meanwhile (a restart or reload in the middle of a cut).
- another boot (or no boot id): only the wall clock can tell how long the agent was away. The
  stamps are shifted so that each is as old as it was at the save plus the wall time since the
  save; a gap longer than 15 min then closes an open outage at its last sighting, as always.
- another boot and the wall clock behind the save (a box without RTC battery that came up in
  the past, before NTP): the time away is unknown, so nothing is measured across it. An open
  outage is closed at its last sighting, and the recharge, self-test age and voltage before
  the cut are dropped rather than made up (those figures are absent until seen afresh).
State files of version 1 (wall-clock stamps, no boot id) are read as coming from another boot
whose monotonic clock was the wall clock, and saved again as version 2.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from collectors.readings import UpsReading

from ..persist import JsonStateFile, state_file
from .power import mains_lost

log = logging.getLogger(__name__)

STATE_VERSION = 2
BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")
OUTAGE_BUCKETS = (60.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0)
SELFTEST_RESULTS = ("passed", "warning", "failed", "aborted", "refused", "in_progress", "none")

_KEEP_DURATIONS = 200
_P90_MIN_OUTAGES = 3
_KEEP_CAPACITY = 8
_PRIOR_WEIGHT = 0.5
_FULL_WEIGHT_DROP_PCT = 20.0
_MIN_DROP_PCT, _MIN_DISCHARGE_S, _MIN_LOAD_PCT, _MAX_LOAD_SWING = 5.0, 60.0, 5.0, 1.3
_BASELINE_DISCHARGES = 3
_NUT_DEFAULT_EXPONENT = math.log(720 / 240) / math.log(100 / 50)  # runtimecal 240,100,720,50
_REF_LOAD_PCT = 50.0
_RESISTANCE_RISE_LIMIT, _RESISTANCE_CAP = 1.2, 0.8
_INVERTER_EFFICIENCY = 0.9
_ARRHENIUS_REF_C, _ARRHENIUS_HALVING_C = 25.0, 8.3
_CYCLES_AT_FULL_DOD = 260.0
_END_OF_LIFE_CAPACITY = 0.8
_FULL_PCT = 99.0
_YEAR_S = 365.25 * 86400
_MAX_GAP_S = 900.0  # longer without a poll: the agent was down, do not integrate across it
_SAVE_EVERY_S = 60.0
_WORN = 0.8


class RuntimeModel:
    """NUT's runtime model (nutdrv_qx runtimecal): full-charge runtime as a power law of load."""

    def __init__(self, t_high: float, load_high: float, t_low: float, load_low: float) -> None:
        self.exponent = math.log(t_low / t_high) / math.log(load_high / load_low)
        self.t_high, self.load_high = t_high, load_high

    def full_runtime(self, load_pct: float) -> float:
        return self.t_high * (load_pct / self.load_high) ** -self.exponent


@dataclass(frozen=True, slots=True)
class Nameplate:
    """What the site knows about the battery (config keys battery_*)."""

    runtimecal: tuple[float, float, float, float] | None = None  # T_h s, L_h %, T_l s, L_l %
    installed: dt.date | None = None
    design_life_years: float = 5.0


@dataclass(frozen=True, slots=True)
class BatteryReport:
    """Immutable snapshot for the exporter; None where there is no evidence yet."""

    outages: int
    on_battery_seconds: float
    histogram: tuple[tuple[float, int], ...]  # (upper bound, cumulative count), +Inf last
    duration_sum: float
    last_outage_seconds: float | None
    last_depth_of_discharge: float | None
    typical_outage_seconds: float | None
    predicted_runtime_seconds: float | None
    runtime_margin_seconds: float | None
    health: float | None
    health_discharges: int
    capacity_ratio: float | None
    life_used_ratio: float | None
    resistance_ohms: float | None
    resistance_rise_ratio: float | None
    last_recharge_seconds: float | None
    outages_before_recharged: int
    selftest_result: str | None
    selftest_age_seconds: float | None
    state_errors: Mapping[str, int] = field(default_factory=dict)
    expected_cut_left_seconds: float | None = None  # typical cut minus this cut so far, >= 0


def selftest_code(text: str) -> str:
    """NUT ups.test.result words -> one of SELFTEST_RESULTS."""
    words = text.lower()
    for needle, code in (
        ("progress", "in_progress"),
        ("pass", "passed"),
        ("warn", "warning"),
        ("error", "failed"),
        ("fail", "failed"),
        ("abort", "aborted"),
        ("refus", "refused"),
        ("no test", "none"),
        ("idle", "none"),
        ("scheduled", "none"),
    ):
        if needle in words:
            return code
    return "none"


def ageing_factor(celsius: float) -> float:
    """Arrhenius rule of thumb: life halves every 8.3 C above 25 C (APC, Eaton)."""
    return float(2.0 ** ((celsius - _ARRHENIUS_REF_C) / _ARRHENIUS_HALVING_C))


def read_boot_id() -> str | None:
    """The kernel's id of this boot; None where /proc does not say (then every load is a new
    boot, and gaps are measured with the wall clock)."""
    try:
        return BOOT_ID_FILE.read_text(encoding="ascii").strip() or None
    except OSError:
        return None


def _fresh() -> dict[str, Any]:
    return {
        "version": STATE_VERSION,
        "outages": 0,
        "on_battery_seconds": 0.0,
        "buckets": [0] * (len(OUTAGE_BUCKETS) + 1),
        "duration_sum": 0.0,
        "durations": [],
        "last_outage_seconds": None,
        "last_dod": None,
        "current": None,
        "recharge_from": None,
        "last_recharge_seconds": None,
        "before_recharged": 0,
        "capacity": [],  # [wall time, ratio, weight]
        "baseline_runtimes": [],  # no nameplate: first T_full at 50 % load
        "resistance": [],  # ohms, every outage
        "efc": 0.0,
        "heat_seconds": 0.0,  # temperature-weighted seconds watched
        "watched_seconds": 0.0,
        "temp_seconds": 0.0,  # sum of temperature * dt, for the mean
        "first_seen": None,  # wall clock: calendar maths against the install date
        "last_update": None,
        "last_on_line": None,  # [time, volts] of the latest on-line poll
        "selftest": None,
        "selftest_since": None,
        "worn_logged": False,
        "clock": None,  # {"boot_id", "mono", "wall"} read together at the last save
    }


# Monotonic stamps in the state (everything else that is a time is the wall clock's).
_MONO_KEYS = ("recharge_from", "last_update", "selftest_since")
_MONO_CURRENT_KEYS = ("start", "last_seen", "t_last")


class BatteryMonitor:
    """Stateful battery checks for one UPS; `update` per poll, `report` for the exporter."""

    def __init__(
        self,
        device: str,
        nameplate: Nameplate | None = None,
        state_dir: str | Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        boot_id: Callable[[], str | None] = read_boot_id,
        shutdown_margin_seconds: float = 0.0,
    ) -> None:
        self.device = device
        self.nameplate = nameplate or Nameplate()
        self.clock = clock
        self.wall = wall
        self.boot_id = boot_id()
        self.shutdown_margin = shutdown_margin_seconds
        cal = self.nameplate.runtimecal
        self.model = RuntimeModel(*cal) if cal else None
        self.store = JsonStateFile(state_file(state_dir, "ups", device)) if state_dir else None
        self.s = self._load()
        self._last_save: float | None = None
        self._dirty = False

    # --- persistence -----------------------------------------------------------------------

    def _load(self) -> dict[str, Any]:
        fresh = _fresh()
        if self.store is None:
            return fresh
        data = self.store.load()
        if not data:
            return fresh
        if data.get("version") == 1 and set(fresh) - {"clock"} <= set(data):
            data = _from_version_1(data)
        if data.get("version") != STATE_VERSION or not set(fresh) <= set(data):
            self.store.set_aside(f"unexpected layout (version {data.get('version')!r})")
            return fresh
        if len(data["buckets"]) != len(fresh["buckets"]):
            self.store.set_aside("histogram buckets changed")
            return fresh
        self._rebase(data)
        return data

    def _rebase(self, data: dict[str, Any]) -> None:
        """Bring the saved monotonic stamps onto this process's clock (module docstring)."""
        saved = data["clock"]
        if not saved:
            return
        if self.boot_id is not None and saved.get("boot_id") == self.boot_id:
            return  # same boot: CLOCK_MONOTONIC ran on
        now, wall = self.clock(), self.wall()
        away = wall - saved["wall"]
        if away < 0:  # the wall clock cannot tell: measure nothing across the gap
            data["last_update"] = None  # the next update closes an open outage
            data["recharge_from"] = data["selftest_since"] = data["last_on_line"] = None
            return
        shift = now - away - saved["mono"]
        for key in _MONO_KEYS:
            if data[key] is not None:
                data[key] += shift
        if data["last_on_line"] is not None:
            data["last_on_line"][0] += shift
        if data["current"] is not None:
            for key in _MONO_CURRENT_KEYS:
                data["current"][key] += shift

    def _save(self, now: float, event: bool) -> None:
        if self.store is None:
            return
        self._dirty = True
        if not event and self._last_save is not None and now - self._last_save < _SAVE_EVERY_S:
            return
        self._stamp(now)
        if self.store.save(self.s):
            self._dirty = False
        self._last_save = now  # a failing disk is retried at the same pace, not every poll

    def flush(self) -> None:
        """Save now if anything changed since the last save (at shutdown)."""
        if self.store is not None and self._dirty:
            self._stamp(self.clock())
            self.store.save(self.s)
            self._dirty = False

    def _stamp(self, now: float) -> None:
        self.s["clock"] = {"boot_id": self.boot_id, "mono": now, "wall": self.wall()}

    # --- the per-poll update ---------------------------------------------------------------

    def update(self, reading: UpsReading, now: float | None = None) -> BatteryReport:
        now = self.clock() if now is None else now
        s = self.s
        values = reading.values
        on_battery = mains_lost(reading.flags)
        charge = values.get("battery.charge")
        if s["first_seen"] is None:
            s["first_seen"] = self.wall()
        gap = None if s["last_update"] is None else now - s["last_update"]
        usable_gap = gap is not None and 0 < gap <= _MAX_GAP_S
        temperature = values.get("battery.temperature")
        if usable_gap and temperature is not None:
            s["heat_seconds"] += gap * ageing_factor(temperature)
            s["watched_seconds"] += gap
            s["temp_seconds"] += gap * temperature
        event = False
        current = s["current"]
        if current is not None and not usable_gap:
            # The agent was away; the outage ended at some unknown time after we last saw it.
            self._end_outage(current["last_seen"])
            if gap is None:  # away for a time nobody can tell: no recharge to time from
                s["recharge_from"] = None
            current = None
            event = True
        if on_battery:
            if current is None:
                self._start_outage(now, reading)
                event = True
            else:
                s["on_battery_seconds"] += gap if usable_gap else 0.0
                self._sample_outage(current, now, reading)
        else:
            if current is not None:
                if usable_gap:
                    s["on_battery_seconds"] += gap
                self._end_outage(now)
                event = True
            volts = values.get("battery.voltage")
            s["last_on_line"] = [now, volts] if volts is not None else None
            if s["recharge_from"] is not None and charge is not None and charge >= _FULL_PCT:
                s["last_recharge_seconds"] = now - s["recharge_from"]
                s["recharge_from"] = None
                event = True
        event |= self._note_selftest(now, reading)
        s["last_update"] = now
        report = self.report(now, reading)
        self._note_health(report)
        self._save(now, event)
        return report

    def _start_outage(self, now: float, reading: UpsReading) -> None:
        s = self.s
        values = reading.values
        charge = values.get("battery.charge")
        s["current"] = {
            "start": now,
            "last_seen": now,
            "charge_first": charge,
            "charge_min": charge,
            "t_last": now,
            "charge_last": charge,
            "load_sum": 0.0,
            "load_n": 0,
            "load_min": None,
            "load_max": None,
        }
        self._sample_outage(s["current"], now, reading)
        s["outages"] += 1
        if s["recharge_from"] is not None:
            s["before_recharged"] += 1
            log.warning(
                "%s: mains lost again before the battery recharged (charge %s)",
                self.device,
                "unknown" if charge is None else f"{charge:.0f}%",
            )
        s["recharge_from"] = None
        self._note_sag(now, reading)

    def _sample_outage(self, cur: dict[str, Any], now: float, reading: UpsReading) -> None:
        values = reading.values
        cur["last_seen"] = now
        charge = values.get("battery.charge")
        if charge is not None:
            cur["charge_min"] = (
                charge if cur["charge_min"] is None else min(cur["charge_min"], charge)
            )
            # Beyond a flat battery time still passes but charge cannot fall: stop measuring.
            if "OFF" not in reading.flags and charge > 1.0:
                cur["t_last"], cur["charge_last"] = now, charge
                load = values.get("ups.load")
                if load is not None:
                    cur["load_sum"] += load
                    cur["load_n"] += 1
                    cur["load_min"] = (
                        load if cur["load_min"] is None else min(cur["load_min"], load)
                    )
                    cur["load_max"] = (
                        load if cur["load_max"] is None else max(cur["load_max"], load)
                    )

    def _end_outage(self, end: float) -> None:
        s = self.s
        cur, s["current"] = s["current"], None
        duration = max(0.0, end - cur["start"])
        s["durations"] = (s["durations"] + [duration])[-_KEEP_DURATIONS:]
        s["duration_sum"] += duration
        index = next((i for i, le in enumerate(OUTAGE_BUCKETS) if duration <= le), -1)
        s["buckets"][index] += 1
        s["last_outage_seconds"] = duration
        dod = None
        if cur["charge_first"] is not None and cur["charge_min"] is not None:
            dod = max(0.0, cur["charge_first"] - cur["charge_min"]) / 100.0
            s["efc"] += dod
        s["last_dod"] = dod
        s["recharge_from"] = end
        self._note_discharge(cur)
        log.info(
            "%s: outage of %.0f min%s",
            self.device,
            duration / 60,
            "" if dod is None else f", battery discharged by {100 * dod:.0f}%",
        )

    def _note_discharge(self, cur: dict[str, Any]) -> None:
        """One capacity observation from a steady discharge (section 5.2)."""
        s = self.s
        drop = (cur["charge_first"] or 0.0) - (cur["charge_last"] or 0.0)
        seconds = cur["t_last"] - cur["start"]
        if drop < _MIN_DROP_PCT or seconds < _MIN_DISCHARGE_S or not cur["load_n"]:
            return
        load = cur["load_sum"] / cur["load_n"]
        if load < _MIN_LOAD_PCT or cur["load_max"] > _MAX_LOAD_SWING * cur["load_min"]:
            return
        measured = seconds / (drop / 100.0)
        if self.model is not None:
            ratio = measured / self.model.full_runtime(load)
        else:
            at_ref = measured * (load / _REF_LOAD_PCT) ** _NUT_DEFAULT_EXPONENT
            baseline = s["baseline_runtimes"]
            if len(baseline) < _BASELINE_DISCHARGES:
                baseline.append(at_ref)
                return
            ratio = at_ref / statistics.median(baseline)
        weight = min(1.0, drop / _FULL_WEIGHT_DROP_PCT)
        s["capacity"] = (s["capacity"] + [[self.wall(), ratio, weight]])[-_KEEP_CAPACITY:]

    def _note_sag(self, now: float, reading: UpsReading) -> None:
        """Internal resistance from the voltage step at the switch to battery (section 5.4)."""
        s = self.s
        before = s["last_on_line"]
        after = reading.values.get("battery.voltage")
        load = reading.values.get("ups.load")
        watts_nominal = reading.values.get("ups.realpower.nominal")
        if before is None or after is None or load is None or not watts_nominal or after <= 0:
            return
        if now - before[0] > _MAX_GAP_S or before[1] is None or before[1] <= after:
            return
        amps = load / 100.0 * watts_nominal / (_INVERTER_EFFICIENCY * after)
        if amps <= 0:
            return
        s["resistance"] = (s["resistance"] + [(before[1] - after) / amps])[-50:]

    def _note_selftest(self, now: float, reading: UpsReading) -> bool:
        text = reading.info.get("ups.test.result")
        if text is None:
            return False
        code = selftest_code(text)
        if code == self.s["selftest"]:
            return False
        self.s["selftest"] = code
        self.s["selftest_since"] = now
        if code == "failed":
            log.warning("%s: battery self-test failed (%s)", self.device, text)
        return True

    # --- judgement -------------------------------------------------------------------------

    def _install_date(self, reading: UpsReading | None) -> dt.date | None:
        if self.nameplate.installed is not None:
            return self.nameplate.installed
        text = None if reading is None else reading.info.get("battery.date")
        try:
            return dt.date.fromisoformat(text) if text else None
        except ValueError:
            return None

    def life_used(self, wall: float, reading: UpsReading | None) -> float | None:
        """Design life used, 0..1+, from age, heat and cycles; None without an install date.

        Calendar maths: `wall` and the first sighting are wall-clock times."""
        s = self.s
        installed = self._install_date(reading)
        heat = s["heat_seconds"]
        mean_factor = heat / s["watched_seconds"] if s["watched_seconds"] else 1.0
        if installed is not None:
            since = dt.datetime.combine(installed, dt.time(), dt.UTC).timestamp()
            unwatched = max(0.0, (s["first_seen"] or wall) - since)
            heat += unwatched * mean_factor
        elif not s["efc"]:
            return None
        years = self.nameplate.design_life_years
        return heat / (years * _YEAR_S) + s["efc"] / _CYCLES_AT_FULL_DOD

    def report(self, now: float | None = None, reading: UpsReading | None = None) -> BatteryReport:
        now = self.clock() if now is None else now
        s = self.s
        life = self.life_used(self.wall(), reading)
        prior = None if life is None else max(0.0, min(1.0, 1 - (1 - _END_OF_LIFE_CAPACITY) * life))
        obs = s["capacity"]
        capacity = None
        if obs:
            total = sum(w for _, _, w in obs)
            capacity = sum(r * w for _, r, w in obs) / total
        health: float | None
        if obs:
            weight = sum(w for _, _, w in obs)
            base = prior if prior is not None else capacity
            health = (_PRIOR_WEIGHT * base + sum(r * w for _, r, w in obs)) / (
                _PRIOR_WEIGHT + weight
            )
        else:
            health = prior
        resistance = s["resistance"]
        rise = None
        latest_r = statistics.median(resistance[-5:]) if resistance else None
        if len(resistance) > _BASELINE_DISCHARGES:
            rise = latest_r / statistics.median(resistance[:_BASELINE_DISCHARGES])
            if health is not None and rise >= _RESISTANCE_RISE_LIMIT:
                health = min(health, _RESISTANCE_CAP)
        if health is not None:
            health = max(0.0, min(1.0, health))
        durations = s["durations"]
        typical = None
        if len(durations) >= _P90_MIN_OUTAGES:
            typical = statistics.quantiles(durations, n=10, method="inclusive")[-1]
        predicted = self._predicted_runtime(reading, health)
        expected = None
        if typical is not None:
            so_far = 0.0 if s["current"] is None else max(0.0, now - s["current"]["start"])
            expected = max(0.0, typical - so_far)
        margin = None
        if predicted is not None and expected is not None:
            margin = predicted - expected - self.shutdown_margin
        cumulative, running = [], 0
        for le, count in zip((*OUTAGE_BUCKETS, math.inf), s["buckets"], strict=True):
            running += count
            cumulative.append((le, running))
        since = s["selftest_since"]
        return BatteryReport(
            outages=s["outages"],
            on_battery_seconds=s["on_battery_seconds"],
            histogram=tuple(cumulative),
            duration_sum=s["duration_sum"],
            last_outage_seconds=s["last_outage_seconds"],
            last_depth_of_discharge=s["last_dod"],
            typical_outage_seconds=typical,
            predicted_runtime_seconds=predicted,
            expected_cut_left_seconds=expected,
            runtime_margin_seconds=margin,
            health=health,
            health_discharges=len(obs),
            capacity_ratio=capacity,
            life_used_ratio=life,
            resistance_ohms=latest_r,
            resistance_rise_ratio=rise,
            last_recharge_seconds=s["last_recharge_seconds"],
            outages_before_recharged=s["before_recharged"],
            selftest_result=s["selftest"],
            # "none" (no test run) has no age: the UPS saying so says nothing about a test
            selftest_age_seconds=(
                None if since is None or s["selftest"] == "none" else max(0.0, now - since)
            ),
            state_errors=MappingProxyType(dict(self.store.errors) if self.store else {}),
        )

    def _predicted_runtime(self, reading: UpsReading | None, health: float | None) -> float | None:
        if reading is None:
            return None
        values = reading.values
        load, charge = values.get("ups.load"), values.get("battery.charge")
        if self.model is not None and load and load > 0 and charge is not None:
            return (
                (health if health is not None else 1.0)
                * self.model.full_runtime(load)
                * (charge / 100.0)
            )
        return values.get("battery.runtime")

    def _note_health(self, report: BatteryReport) -> None:
        worn = report.health is not None and report.health < _WORN and report.health_discharges > 0
        if worn and not self.s["worn_logged"]:
            log.warning(
                "%s: battery health %.0f%% of rated capacity (from %d discharges); "
                "plan a replacement",
                self.device,
                100 * (report.health or 0.0),
                report.health_discharges,
            )
        self.s["worn_logged"] = worn


def monitor_for(device: str, keys: Any, state_dir: str | Path | None) -> BatteryMonitor:
    """A monitor from a device's config (agent.config.BatteryKeys fields), saving to state_dir."""
    nameplate = Nameplate(
        runtimecal=keys.battery_runtimecal,
        installed=keys.battery_installed,
        design_life_years=keys.battery_design_life_years,
    )
    return BatteryMonitor(
        device, nameplate, state_dir, shutdown_margin_seconds=keys.shutdown_margin_seconds
    )


def _from_version_1(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 kept wall-clock stamps: read them as another boot whose monotonic clock was the
    wall clock, so _rebase moves each to the same age on this process's monotonic clock."""
    data = dict(data)
    current = data["current"]
    if current is not None:
        current = {k: v for k, v in current.items() if k != "test"}
        # A self-test used to open a (never counted) outage; it is no outage at all now.
        data["current"] = None if data["current"].get("test") else current
    at = data["last_update"]
    data["clock"] = None if at is None else {"boot_id": None, "mono": at, "wall": at}
    data["version"] = STATE_VERSION
    return data
