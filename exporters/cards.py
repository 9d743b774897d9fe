"""Status-page cards of devices, from their judged state (exporters/status_page.py shows them)."""

from __future__ import annotations

from typing import Any

from agent.checks.inverter import InverterStatus
from agent.checks.power import UpsStatus
from agent.state import DeviceState


def ups_card(device: DeviceState, status: UpsStatus | None) -> dict[str, Any]:
    """The status page's card of a UPS, from its power status (None: not known yet)."""
    if not device.up:  # what a silent UPS last said is not true now (as on /metrics)
        status = None
    values = status.values if status else {}
    battery = device.battery
    return {
        "name": device.name,
        "up": device.up,
        "model": status.info.get("device.model") if status else None,
        "on_battery": status.on_battery if status else None,
        "power_state": status.state if status else None,
        "low_battery": status.low_battery if status else None,
        "replace_battery": status.replace_battery if status else None,
        "charge_percent": values.get("battery.charge"),
        "runtime_seconds": values.get("battery.runtime"),
        "input_volts": values.get("input.voltage"),
        "load_percent": values.get("ups.load"),
        "battery_health_ratio": battery.health if battery else None,
        "outages": battery.outages if battery else None,
        "last_outage_seconds": battery.last_outage_seconds if battery else None,
    }


def inverter_card(device: DeviceState) -> dict[str, Any]:
    """The status page's card of an inverter: which source feeds the load, and the flows."""
    status = device.status if device.up else None  # a silent inverter's last word is not now
    if not isinstance(status, InverterStatus):
        status = None
    reading = status.reading if status else None
    return {
        "card": "inverter",
        "name": device.name,
        "up": device.up,
        "load_source": status.load_source if status else None,
        "grid_present": status.grid_present if status else None,
        "battery_state": status.battery_state if status else None,
        "charge_percent": reading.battery_charge if reading else None,
        "pv_watts": reading.pv_watts if reading else None,
        "load_watts": reading.load_watts if reading else None,
        "grid_watts": reading.grid_watts if reading else None,
    }
