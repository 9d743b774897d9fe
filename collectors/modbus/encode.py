"""The inverse of decode.py: NUT values -> register words, for simulators and round-trip tests.

Encoding goes through the same profile as decoding, so a simulator built on it serves exactly
the map the collector reads. Golden fixtures are written by hand instead, so that a mistake shared
by both directions cannot hide.
"""

from __future__ import annotations

import datetime as dt
import math
import struct
from collections.abc import Collection, Mapping

from collectors.modbus.decode import EPOCH, multiplier, not_available, raw_to_words
from collectors.modbus.profile import ByteOrder, FieldSpec, ModbusProfile

# Integer range of each type's raw value, before it is stored as unsigned bits.
_RANGE: dict[str, tuple[int, int]] = {
    "u16": (0, 0xFFFF),
    "s16": (-0x8000, 0x7FFF),
    "u32": (0, 0xFFFFFFFF),
    "s32": (-0x80000000, 0x7FFFFFFF),
    "date": (0, 0xFFFF),
}


def encode_string(text: str, length: int, byte_order: ByteOrder = "ABCD") -> list[int]:
    """`length` registers holding `text`, two ASCII characters each, NUL padded."""
    data = text.encode("ascii")
    if len(data) > 2 * length:
        raise ValueError(f"{text!r} does not fit in {length} registers")
    data = data.ljust(2 * length, b"\x00")
    words = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
    if byte_order in ("BADC", "DCBA"):  # strings only take the byte swap, see decode_string
        words = [(word >> 8) | (word & 0xFF) << 8 for word in words]
    return words


def encode_field(spec: FieldSpec, value: float | str | None, default_order: ByteOrder) -> list[int]:
    """Register words for one field; None encodes the field's "not available" sentinel."""
    order = spec.byte_order or default_order
    if spec.type == "string":
        return encode_string("" if value is None else str(value), spec.width, order)
    if spec.map_bits is not None:
        bits = [bit for bit, text in spec.map_bits.items() if text == value]
        return raw_to_words(1 << bits[0] if bits else 0, 1, order)
    if spec.map is not None and value is not None:
        codes = [raw for raw, text in spec.map.items() if text == value]
        if not codes:
            raise ValueError(f"{spec.name}: {value!r} is not one of its texts")
        return raw_to_words(codes[0], 1, order)
    if value is None:
        sentinels = not_available(spec)
        if sentinels:
            return raw_to_words(sentinels[0], spec.width, order)
        if spec.type == "f32":
            return raw_to_words(_f32_bits(math.nan), 2, order)
        raise ValueError(f"{spec.name}: {spec.type} has no 'not available' value to encode")
    if spec.type == "date":
        raw = (dt.date.fromisoformat(str(value)) - EPOCH).days
    elif spec.type == "f32":
        return raw_to_words(_f32_bits((float(value) - spec.offset) / multiplier(spec)), 2, order)
    else:
        raw = round((float(value) - spec.offset) / multiplier(spec))
    low, high = _RANGE[spec.type]
    if not low <= raw <= high:
        raise ValueError(f"{spec.name}: {value} is outside what a {spec.type} can hold")
    return raw_to_words(raw & ((1 << (16 * spec.width)) - 1), spec.width, order)


def _f32_bits(value: float) -> int:
    return int.from_bytes(struct.pack(">f", value), "big")


def encode_image(
    profile: ModbusProfile,
    values: Mapping[str, float | str],
    flags: Collection[str],
) -> dict[tuple[str, int], int]:
    """Every register of every block; fields missing from `values` get their sentinel."""
    image = {
        (block.table, address): 0
        for block in profile.blocks
        for address in range(block.address, block.end)
    }
    for spec in profile.fields:
        words = encode_field(spec, values.get(spec.name), profile.byte_order)
        for i, word in enumerate(words):
            image[(spec.table, spec.address + i)] = word
        if spec.scale_register is not None:
            image[(spec.table, spec.scale_register)] = 0  # SunSpec SF 0: raw is the value
    for bitfield in profile.bitfields:
        raw = sum(1 << bit for bit, token in bitfield.bits.items() if token in flags)
        words = raw_to_words(raw, bitfield.width, bitfield.byte_order or profile.byte_order)
        for i, word in enumerate(words):
            # OR, so that two bitfields sharing a register do not erase each other.
            image[(bitfield.table, bitfield.address + i)] |= word
    return image
