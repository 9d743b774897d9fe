"""The registry of device kinds: the one place that lists them (agent/kinds/base.py says what
each declares). The order is the order devices are built, checked and listed in."""

from __future__ import annotations

from ..config import Config, DeviceSettings
from . import genset, inverter, modbus, nut, snmp
from .base import DeviceKind, Pools

KINDS: dict[str, DeviceKind] = {
    kind.name: kind for kind in (snmp.KIND, modbus.KIND, nut.KIND, genset.KIND, inverter.KIND)
}

_BY_SETTINGS = {kind.config: kind for kind in KINDS.values()}


def kind_of(device: DeviceSettings) -> DeviceKind:
    return _BY_SETTINGS[type(device)]


def configured(config: Config) -> list[DeviceSettings]:
    """Every device of the config, kind by kind."""
    return [device for kind in KINDS.values() for device in getattr(config, kind.name)]


__all__ = ["KINDS", "DeviceKind", "Pools", "configured", "kind_of"]
