"""Register words -> NUT values: pure functions, no I/O.

Byte orders name where the bytes of a 32-bit value ABCD (A most significant) arrive on the wire:
ABCD big-endian, MSW first (APC, SunSpec); CDAB word-swapped (Deye); BADC byte-swapped inside
each word; DCBA fully reversed. A 16-bit value only sees the byte swap (BADC, DCBA). We decode
with our own code because pymodbus's converters changed across 3.x and reverse whole register
lists for word_order="little" (pymodbus issue #2675).

`DecodePlan` is built once per profile; decoding an image is then a walk over prepared decoders:

    plan = DecodePlan(load_profile("apc-smart-ups"))
    plan.decode({("holding", 130): 44544, ...})  # -> UpsReading(values={"battery.charge": 87.0})
"""

from __future__ import annotations

import datetime as dt
import math
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from collectors.modbus.profile import Bitfield, ByteOrder, FieldSpec, ModbusProfile
from collectors.readings import GensetReading, UpsReading

# (register table, address) -> 16-bit word; the collector fills it from whole block reads.
RegisterImage = Mapping[tuple[str, int], int]

SUNSPEC_NOT_IMPLEMENTED = 0x8000  # a sunssf register that says "no scale factor"
EPOCH = dt.date(2000, 1, 1)  # APC dates count days from here (AN176; NUT apc_modbus.c)

# "Not available" raw bits when a profile gives none: SunSpec/Socomec/APC conventions.
DEFAULT_NOT_AVAILABLE: dict[str, tuple[int, ...]] = {
    "u16": (0xFFFF,),
    "s16": (0x7FFF, 0x8000),
    "u32": (0xFFFFFFFF,),
    "s32": (0x7FFFFFFF, 0x80000000),
    "f32": (),  # NaN is always "not available"; see _to_f32
    "date": (0xFFFF,),
    "string": (),
}


def words_to_raw(words: Sequence[int], byte_order: ByteOrder) -> int:
    """Unsigned integer from register words, undoing the wire byte order."""
    data = b"".join(word.to_bytes(2, "big") for word in words)
    return int.from_bytes(_reorder(data, byte_order), "big")


def raw_to_words(raw: int, width: int, byte_order: ByteOrder) -> list[int]:
    """Inverse of words_to_raw: `width` register words for an unsigned integer."""
    data = _reorder(raw.to_bytes(2 * width, "big"), byte_order)
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def _reorder(data: bytes, byte_order: ByteOrder) -> bytes:
    # Both swaps are their own inverse and commute, so this maps wire <-> ABCD both ways.
    if byte_order in ("BADC", "DCBA"):
        data = b"".join(data[i : i + 2][::-1] for i in range(0, len(data), 2))
    if byte_order in ("CDAB", "DCBA"):
        data = b"".join(data[i : i + 2] for i in range(len(data) - 2, -1, -2))
    return data


def _to_unsigned(raw: int, bits: int) -> float:
    return float(raw)


def _to_signed(raw: int, bits: int) -> float:
    return float(raw - (1 << bits) if raw >> (bits - 1) else raw)


def _to_f32(raw: int, bits: int) -> float:
    return struct.unpack(">f", raw.to_bytes(4, "big"))[0]


TO_NUMBER: dict[str, Callable[[int, int], float]] = {
    "u16": _to_unsigned,
    "u32": _to_unsigned,
    "s16": _to_signed,
    "s32": _to_signed,
    "f32": _to_f32,
}


def decode_number(words: Sequence[int], type_: str, byte_order: ByteOrder) -> float:
    """Unscaled number of a numeric type (u16, s16, u32, s32, f32) from its words."""
    return TO_NUMBER[type_](words_to_raw(words, byte_order), 16 * len(words))


def decode_string(words: Sequence[int], byte_order: ByteOrder = "ABCD") -> str:
    """Two characters per register, MSB first unless byte-swapped; NUL/space padding removed.

    Only the byte swap of BADC/DCBA applies: a string has no word order (Socomec sends LSB first).
    """
    data = b"".join(word.to_bytes(2, "big") for word in words)
    if byte_order in ("BADC", "DCBA"):
        data = _reorder(data, "BADC")
    # Devices pad with NULs or spaces at either end; non-printables would break labels.
    text = "".join(chr(b) if 0x20 <= b < 0x7F else " " for b in data.strip(b"\x00 "))
    return text.strip()


def decode_date(days: int) -> str:
    """Days since 2000-01-01 -> ISO date."""
    return (EPOCH + dt.timedelta(days=days)).isoformat()


def multiplier(spec: FieldSpec) -> float:
    """Factor from raw integer to the field's unit: decimal scale or APC binary point."""
    if spec.binary_point is not None:
        return 1.0 / (1 << spec.binary_point)
    return 1.0 if spec.scale is None else spec.scale


def not_available(spec: FieldSpec) -> tuple[int, ...]:
    return DEFAULT_NOT_AVAILABLE[spec.type] if spec.not_available is None else spec.not_available


@dataclass(frozen=True, slots=True)
class FieldDecoder:
    """One field, ready to cut from an image.

    `convert` gives a float (values), a str (info), or None (n/a or implausible).
    """

    name: str
    keys: tuple[tuple[str, int], ...]
    convert: Callable[[Sequence[int]], float | str | None]


def compile_field(spec: FieldSpec, default_order: ByteOrder = "ABCD") -> FieldDecoder:
    """Choose the decoder for one field once, at profile load."""
    order = spec.byte_order or default_order
    keys = tuple((spec.table, spec.address + i) for i in range(spec.width))
    sentinels = frozenset(not_available(spec))

    if spec.type == "string":

        def convert_string(words: Sequence[int]) -> str | None:
            return decode_string(words, order) or None

        return FieldDecoder(spec.name, keys, convert_string)

    if spec.map is not None or spec.map_bits is not None:
        by_value, by_bit = spec.map, spec.map_bits

        def convert_text(words: Sequence[int]) -> str | None:
            raw = words_to_raw(words, order)
            if by_value is not None:
                return by_value.get(raw)
            assert by_bit is not None
            # "" = a valid "nothing set", which decode() leaves out without counting it invalid.
            return next((by_bit[bit] for bit in sorted(by_bit) if raw >> bit & 1), "")

        return FieldDecoder(spec.name, keys, convert_text)

    if spec.type == "date":

        def convert_date(words: Sequence[int]) -> str | None:
            raw = words_to_raw(words, order)
            return None if raw in sentinels else decode_date(raw)

        return FieldDecoder(spec.name, keys, convert_date)

    to_number = TO_NUMBER[spec.type]
    bits = 16 * spec.width
    factor, offset = multiplier(spec), spec.offset
    low, high = spec.valid if spec.valid is not None else (-math.inf, math.inf)
    width = spec.width
    if spec.scale_register is not None:
        keys += ((spec.table, spec.scale_register),)  # the SF word comes last

    def convert_number(words: Sequence[int]) -> float | None:
        raw = words_to_raw(words[:width], order)
        if raw in sentinels:
            return None
        value = to_number(raw, bits)
        if math.isnan(value):
            return None
        if len(words) > width:
            sf = words[width]
            if sf == SUNSPEC_NOT_IMPLEMENTED:
                return None
            value *= 10.0 ** (sf - 0x10000 if sf & 0x8000 else sf)
        value = value * factor + offset
        return value if low <= value <= high else None

    return FieldDecoder(spec.name, keys, convert_number)


def decode_flags(bitfield: Bitfield, words: Sequence[int], default_order: ByteOrder) -> set[str]:
    """NUT status tokens whose bits are set."""
    raw = words_to_raw(words, bitfield.byte_order or default_order)
    flags = {token for bit, token in bitfield.bits.items() if raw >> bit & 1}
    if raw in bitfield.map:
        flags.add(bitfield.map[raw])
    return flags


class DecodePlan:
    """A profile turned into prepared decoders: image in, a flat reading out (GensetReading for a
    genset, else UpsReading: the same fields, so one decoder serves every role; an inverter's
    collector turns the flat reading into an InverterReading)."""

    def __init__(self, profile: ModbusProfile) -> None:
        self.profile = profile
        self.fields = tuple(compile_field(spec, profile.byte_order) for spec in profile.fields)
        self.bitfields = tuple(
            (tuple((bf.table, bf.address + i) for i in range(bf.width)), bf)
            for bf in profile.bitfields
        )
        self.known_flags = profile.known_flags

    def decode(self, image: RegisterImage, requests: int = 0) -> UpsReading | GensetReading:
        values: dict[str, float] = {}
        info: dict[str, str] = dict(self.profile.info)
        invalid: list[str] = []
        for field in self.fields:
            result = field.convert([image[key] for key in field.keys])
            if result is None:
                invalid.append(field.name)
            elif isinstance(result, str):
                if result:
                    info[field.name] = result
            else:
                values[field.name] = result
        flags: set[str] = set()
        for keys, bitfield in self.bitfields:
            words = [image[key] for key in keys]
            flags |= decode_flags(bitfield, words, self.profile.byte_order)
        # A genset's reading has the UPS's fields; an inverter's is built from this flat one
        # by its collector (collectors/modbus/inverter.py).
        reading = GensetReading if self.profile.role == "genset" else UpsReading
        return reading(
            values=values,
            info=info,
            flags=frozenset(flags),
            known_flags=self.known_flags,
            invalid=tuple(invalid),
            requests=requests,
        )
