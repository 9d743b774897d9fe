"""A read of a profile's registers, answered as a device's Modbus card does: one block at a
time, exception 2 outside every block. The UPS, genset and inverter simulators share it; each
says only what its device shows now (`truth`)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from collectors.modbus.encode import encode_image
from collectors.modbus.profile import ModbusProfile
from simulators.modbus_server import ILLEGAL_DATA_ADDRESS, READ_HOLDING, READ_INPUT

Truth = tuple[Mapping[str, float | str], Collection[str]]  # values, status flags


def profile_read(
    profile: ModbusProfile, function: int, address: int, count: int, truth: Callable[[], Truth]
) -> list[int] | int:
    table = {READ_HOLDING: "holding", READ_INPUT: "input"}[function]
    if profile.block_for(table, address, count) is None:
        return ILLEGAL_DATA_ADDRESS
    values, flags = truth()
    image = encode_image(profile, values, flags)
    return [image[(table, a)] for a in range(address, address + count)]
