"""Inverter check: a solar hybrid inverter's reading in, its judged status out.

Which source feeds the load (one of LOAD_SOURCES):

- The inverter's own mode register, when its profile maps one to grid, battery or solar
  (Growatt SPF status 6-11 -> grid, 2 -> battery): the inverter knows which relay and which
  converter carry the load; the flows only show it afterwards, and blur at low load.
- Otherwise (no mode register, as on Deye; or a mode that names no single source, as Growatt's
  "PV charge + discharge"), the largest share of the load among the sources: grid import (or,
  with no grid meter, the part of the load PV and battery do not cover while the grid is
  there), battery discharge, PV power. Why the largest: the inverter mixes its sources on one
  bus, so no register says "the" source, but an operator asking "are we on battery?" means
  "is the battery carrying most of it?". PV that only charges the battery still counts as
  solar: the sun is then what runs the site. A charging battery and an exporting grid give
  nothing. Below IDLE_WATTS every flow is noise, and the source is "unknown".

Grid present: the map's grid-connected register; else grid voltage of at least
GRID_PRESENT_VOLTS (half of 230 V: a brownout is still grid, a cut reads about 0); else a mode
that puts the grid on the load.

Battery state: discharging above IDLE_WATTS (or IDLE_AMPERES when the map has only current),
charging below minus that, idle between.
"""

from __future__ import annotations

from dataclasses import dataclass

from collectors.readings import InverterReading

LOAD_SOURCES = ("grid", "battery", "solar", "unknown")
BATTERY_STATES = ("charging", "discharging", "idle")
IDLE_WATTS = 20.0
IDLE_AMPERES = 0.5
GRID_PRESENT_VOLTS = 115.0


@dataclass(frozen=True, slots=True)
class InverterStatus:
    """One poll of an inverter, judged. Powers in watts, charge in percent as read."""

    load_source: str  # one of LOAD_SOURCES
    grid_present: bool | None
    battery_state: str | None  # one of BATTERY_STATES; None: no battery flow in the map
    reading: InverterReading  # the values as read, for the metrics and the card


def judge(reading: InverterReading) -> InverterStatus:
    """The status of one reading (the module docstring gives the rules)."""
    grid_present = _grid_present(reading)
    return InverterStatus(
        load_source=_load_source(reading, grid_present),
        grid_present=grid_present,
        battery_state=_battery_state(reading),
        reading=reading,
    )


def _grid_present(reading: InverterReading) -> bool | None:
    if reading.grid_present is not None:
        return reading.grid_present
    if reading.grid_volts is not None:
        return reading.grid_volts >= GRID_PRESENT_VOLTS
    return True if reading.load_source == "grid" else None


def _battery_state(reading: InverterReading) -> str | None:
    if reading.battery_watts is not None:
        flow, idle = reading.battery_watts, IDLE_WATTS
    elif reading.battery_amperes is not None:
        flow, idle = reading.battery_amperes, IDLE_AMPERES
    else:
        return None
    if flow > idle:
        return "discharging"
    return "charging" if flow < -idle else "idle"


def _load_source(reading: InverterReading, grid_present: bool | None) -> str:
    if reading.load_source is not None:
        return reading.load_source
    battery = max(reading.battery_watts or 0.0, 0.0)
    solar = max(reading.pv_watts or 0.0, 0.0)
    if reading.grid_watts is not None:
        grid = max(reading.grid_watts, 0.0)
    elif grid_present and reading.load_watts is not None:
        grid = max(reading.load_watts - battery - solar, 0.0)  # no grid meter: the remainder
    else:
        grid = 0.0
    if grid_present is False:
        grid = 0.0
    shares = {"grid": grid, "battery": battery, "solar": solar}
    source = max(shares, key=lambda name: shares[name])  # ties: the order above
    return source if shares[source] >= IDLE_WATTS else "unknown"
