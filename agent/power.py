"""Power check: a UPS reading in, the judged power state out (on battery, low, replace).

The UPS reports in NUT's vocabulary; this check derives the flags NUT derives (DISCHRG while
on battery, CHRG while on mains below full charge) and notes mains loss and return once, when
they happen, so the log tells the story of a load-shedding day.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import MappingProxyType

from collectors.readings import UpsReading

log = logging.getLogger(__name__)

# The flags every UPS status exports, 0 or 1, even when a profile cannot report some of them:
# dashboards and alerts can rely on the series existing.
NUT_FLAGS = ("OL", "OB", "LB", "RB", "CHRG", "DISCHRG", "BYPASS", "OVER", "OFF", "TRIM", "BOOST")
_FULL_CHARGE_PERCENT = 99.0


@dataclass(frozen=True, slots=True)
class UpsStatus:
    """Judged state of one UPS. Values keep NUT names and units; the exporter converts."""

    on_battery: bool
    low_battery: bool
    replace_battery: bool
    flags: MappingProxyType[str, int]  # NUT flag -> 0/1, for the flags this UPS can report
    values: MappingProxyType[str, float]
    info: MappingProxyType[str, str]
    invalid_fields: tuple[str, ...]


class PowerCheck:
    """Per-UPS state: whether mains was present at the last poll, to log changes once."""

    def __init__(self, device: str) -> None:
        self.device = device
        self._on_battery: bool | None = None

    def update(self, reading: UpsReading) -> UpsStatus:
        flags = set(reading.flags)
        on_battery = "OB" in flags
        charge = reading.values.get("battery.charge")
        if on_battery:
            flags.add("DISCHRG")
        elif "OL" in flags and charge is not None and charge < _FULL_CHARGE_PERCENT:
            flags.add("CHRG")
        known = set(reading.known_flags) | {"CHRG", "DISCHRG"}
        exported = {flag: int(flag in flags) for flag in NUT_FLAGS if flag in known}
        exported.update({flag: 1 for flag in flags if flag not in exported})
        self._note_transition(on_battery, reading)
        return UpsStatus(
            on_battery=on_battery,
            low_battery="LB" in flags,
            replace_battery="RB" in flags,
            flags=MappingProxyType(exported),
            values=MappingProxyType(dict(reading.values)),
            info=MappingProxyType(dict(reading.info)),
            invalid_fields=reading.invalid,
        )

    def _note_transition(self, on_battery: bool, reading: UpsReading) -> None:
        previous, self._on_battery = self._on_battery, on_battery
        if previous is None or previous == on_battery:
            return
        charge = reading.values.get("battery.charge")
        runtime = reading.values.get("battery.runtime")
        detail = []
        if charge is not None:
            detail.append(f"charge {charge:.0f}%")
        if runtime is not None:
            detail.append(f"runtime {runtime / 60:.0f} min")
        suffix = f" ({', '.join(detail)})" if detail else ""
        if on_battery:
            log.warning("%s: mains power lost, UPS on battery%s", self.device, suffix)
        else:
            log.info("%s: mains power back, UPS on line%s", self.device, suffix)
