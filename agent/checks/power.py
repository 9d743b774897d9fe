"""Power check: a UPS reading in, the judged power state out (on battery, low, replace).

The UPS reports in NUT's vocabulary; this check derives the flags NUT derives (DISCHRG while
on battery, CHRG while on mains below full charge) and notes each change of state once, when
it happens, so the log tells the story of a load-shedding day.

Every path (NUT, Modbus profiles, SNMP UPS) speaks the same NUT status words, and this is the
one place that reads them. Two questions get two answers:

- Is mains lost? `mains_lost(flags)`: OB outside a self-test (TEST) or runtime calibration
  (CAL). A UPS testing its battery runs the load from it (APC shows OB and TEST) although mains
  is there, so OB alone would log a cut, fire ErozgarUpsOnBattery and blame the power company
  for a test. `UpsStatus.on_battery` and the outage ledger (agent/checks/battery.py) both use it.
- What is the UPS doing? `power_state(flags)`, one of POWER_STATES, first match wins: off
  (OFF: the output is off, the load has no power), bypass (BYPASS: the load runs on raw mains,
  unprotected), calibration (CAL), self_test (TEST), on_battery (mains lost), online (OL),
  unknown (the UPS said none of these). Overload (OVER) is not a state but a flag beside it:
  a UPS is overloaded on mains or on battery. A UPS whose output went off in a cut is "off"
  and still on_battery, since mains is still lost.
"""

from __future__ import annotations

import logging
from collections.abc import Set
from dataclasses import dataclass
from types import MappingProxyType

from collectors.readings import UpsReading

log = logging.getLogger(__name__)

# The flags every UPS status exports, 0 or 1, even when a profile cannot report some of them:
# dashboards and alerts can rely on the series existing.
NUT_FLAGS = (
    "OL", "OB", "LB", "RB", "CHRG", "DISCHRG", "BYPASS", "OVER", "OFF", "TRIM", "BOOST", "TEST",
    "CAL",
)  # fmt: skip
POWER_STATES = ("online", "on_battery", "self_test", "calibration", "bypass", "off", "unknown")
_NOT_A_CUT = frozenset({"TEST", "CAL"})
_FULL_CHARGE_PERCENT = 99.0
# What the log says when the UPS enters a state that is neither mains nor a cut.
_ENTERED = {
    "self_test": "battery self-test running (the UPS carries the load on its battery)",
    "calibration": "runtime calibration running (the UPS discharges its battery on purpose)",
    "bypass": "UPS on bypass: the load runs on raw mains, unprotected",
    "off": "UPS output is off: the load has no power",
}


def mains_lost(flags: Set[str]) -> bool:
    """On battery because mains is gone: OB, but not for a self-test or calibration."""
    return "OB" in flags and not flags & _NOT_A_CUT


def power_state(flags: Set[str]) -> str:
    """What the UPS is doing, one of POWER_STATES (the module docstring gives the order)."""
    if "OFF" in flags:
        return "off"
    if "BYPASS" in flags:
        return "bypass"
    if "CAL" in flags:
        return "calibration"
    if "TEST" in flags:
        return "self_test"
    if "OB" in flags:
        return "on_battery"
    if "OL" in flags:
        return "online"
    return "unknown"


@dataclass(frozen=True, slots=True)
class UpsStatus:
    """Judged state of one UPS. Values keep NUT names and units; the exporter converts."""

    on_battery: bool  # mains lost (mains_lost): a self-test or calibration is not
    low_battery: bool
    replace_battery: bool
    flags: MappingProxyType[str, int]  # NUT flag -> 0/1, for the flags this UPS can report
    values: MappingProxyType[str, float]
    info: MappingProxyType[str, str]
    invalid_fields: tuple[str, ...]
    state: str = "unknown"  # one of POWER_STATES


class PowerCheck:
    """Per-UPS state: mains and power state at the last poll, to log changes once."""

    def __init__(self, device: str) -> None:
        self.device = device
        self._on_battery: bool | None = None
        self._state: str | None = None

    def update(self, reading: UpsReading) -> UpsStatus:
        flags = set(reading.flags)
        on_battery = mains_lost(flags)
        charge = reading.values.get("battery.charge")
        if "OB" in flags:  # NUT's DISCHRG: the battery carries the load, whatever the reason
            flags.add("DISCHRG")
        elif "OL" in flags and charge is not None and charge < _FULL_CHARGE_PERCENT:
            flags.add("CHRG")
        known = set(reading.known_flags) | {"CHRG", "DISCHRG"}
        exported = {flag: int(flag in flags) for flag in NUT_FLAGS if flag in known}
        exported.update({flag: 1 for flag in flags if flag not in exported})
        state = power_state(flags)
        self._note_transition(on_battery, state, reading)
        return UpsStatus(
            on_battery=on_battery,
            low_battery="LB" in flags,
            replace_battery="RB" in flags,
            flags=MappingProxyType(exported),
            values=MappingProxyType(dict(reading.values)),
            info=MappingProxyType(dict(reading.info)),
            invalid_fields=reading.invalid,
            state=state,
        )

    def _note_transition(self, on_battery: bool, state: str, reading: UpsReading) -> None:
        was_on_battery, self._on_battery = self._on_battery, on_battery
        was, self._state = self._state, state
        if was is None or (was == state and was_on_battery == on_battery):
            return
        if was_on_battery != on_battery:
            if on_battery:
                log.warning("%s: mains power lost, UPS on battery%s", self.device, _detail(reading))
            else:
                log.info("%s: mains power back, UPS on line%s", self.device, _detail(reading))
            if state in ("on_battery", "online"):
                return
        if state in _ENTERED:
            level = logging.INFO if state in ("self_test", "calibration") else logging.WARNING
            log.log(level, "%s: %s", self.device, _ENTERED[state])
        elif was in _ENTERED:
            where = {"online": "on mains", "on_battery": "on battery"}.get(state, f"({state})")
            log.info("%s: back to normal operation %s", self.device, where)


def _detail(reading: UpsReading) -> str:
    charge = reading.values.get("battery.charge")
    runtime = reading.values.get("battery.runtime")
    detail = []
    if charge is not None:
        detail.append(f"charge {charge:.0f}%")
    if runtime is not None:
        detail.append(f"runtime {runtime / 60:.0f} min")
    return f" ({', '.join(detail)})" if detail else ""
