"""Inverter-role Modbus profiles: their field names, and the InverterReading they decode into.

An inverter profile names its fields in this vocabulary (as a UPS profile names NUT variables),
so one decoder serves every model; no per-model Python:

    pv.power, pv<N>.power         W, all strings / string N
    pv<N>.energy                  kWh string N has produced (a lifetime counter)
    battery.charge                %
    battery.voltage, .current     V, A (current > 0 while discharging)
    battery.temperature           C
    battery.power                 W (> 0 while discharging, < 0 charging)
    grid.power                    W (> 0 importing, < 0 exporting)
    grid.voltage                  V
    grid.present                  1 grid connected, 0 not (the map's own register)
    load.power                    W
    load.source                   a `map` field: the mode register's codes as grid, battery or
                                  solar (codes it does not list leave the source to the check)
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from collectors.readings import InverterReading, UpsReading

NUMBERS = {
    "pv.power": "pv_watts",
    "battery.charge": "battery_charge",
    "battery.voltage": "battery_volts",
    "battery.current": "battery_amperes",
    "battery.temperature": "battery_celsius",
    "battery.power": "battery_watts",
    "grid.power": "grid_watts",
    "grid.voltage": "grid_volts",
    "load.power": "load_watts",
}
SOURCES = ("grid", "battery", "solar")
PV_STRING = re.compile(r"^pv(\d+)\.power$")
PV_ENERGY = re.compile(r"^pv(\d+)\.energy$")


def vocabulary_error(name: str) -> str | None:
    """Why `name` is not an inverter field, or None when it is one."""
    if name in NUMBERS or name in ("grid.present", "load.source"):
        return None
    if PV_STRING.match(name) or PV_ENERGY.match(name):
        return None
    known = ", ".join([*NUMBERS, "pv<N>.power", "pv<N>.energy", "grid.present", "load.source"])
    return f"{name} is not an inverter field (known: {known})"


def inverter_reading(decoded: UpsReading) -> InverterReading:
    """The decoder's values and info under the inverter vocabulary, as an InverterReading."""
    values, info = decoded.values, dict(decoded.info)
    strings = _per_string(PV_STRING, values)
    present = values.get("grid.present")
    source = info.pop("load.source", None)
    numbers = {attr: values.get(name) for name, attr in NUMBERS.items()}
    if numbers["pv_watts"] is None and strings:  # the map has only the strings
        numbers["pv_watts"] = sum(strings.values())
    return InverterReading(
        **numbers,
        pv_string_watts=strings,
        pv_string_kwh=_per_string(PV_ENERGY, values),
        grid_present=None if present is None else present >= 1,
        load_source=source if source in SOURCES else None,
        info=info,
        invalid=decoded.invalid,
        requests=decoded.requests,
    )


def _per_string(pattern: re.Pattern[str], values: Mapping[str, float]) -> dict[str, float]:
    """{string number: value} of the fields `pattern` matches (pv1.power -> "1")."""
    return {match[1]: value for name, value in values.items() if (match := pattern.match(name))}
