"""Table-driven tests of collectors/modbus/decode.py and its inverse, encode.py.

Expected numbers are worked out by hand from the byte layouts, not computed with the code.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from collectors.modbus.decode import (
    DecodePlan,
    compile_field,
    decode_flags,
    decode_number,
    decode_string,
    words_to_raw,
)
from collectors.modbus.encode import encode_field, encode_image, encode_string
from collectors.modbus.profile import Bitfield, FieldSpec, load_profile

ORDERS = ("ABCD", "CDAB", "BADC", "DCBA")


def field(**kwargs: Any) -> FieldSpec:
    return FieldSpec.model_validate({"name": "test.value", "address": 0, **kwargs})


# Bytes 01 02 03 04 on the wire, read under each byte order.
@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("ABCD", 0x01020304),
        ("CDAB", 0x03040102),
        ("BADC", 0x02010403),
        ("DCBA", 0x04030201),
    ],
)
def test_u32_byte_orders(order: str, expected: int) -> None:
    assert decode_number([0x0102, 0x0304], "u32", order) == expected


@pytest.mark.parametrize(
    ("type_", "words", "order", "expected"),
    [
        ("u16", [0x0102], "ABCD", 258),
        ("u16", [0x0102], "CDAB", 258),  # one word has no word order
        ("u16", [0x0102], "BADC", 513),
        ("u16", [0x0102], "DCBA", 513),
        ("s16", [0xFF38], "ABCD", -200),
        ("s16", [0xFF38], "CDAB", -200),
        ("s16", [0x38FF], "BADC", -200),
        ("s16", [0x38FF], "DCBA", -200),
        ("s16", [0x7FFE], "ABCD", 32766),
        # -200 = 0xFFFFFF38 laid out four ways
        ("s32", [0xFFFF, 0xFF38], "ABCD", -200),
        ("s32", [0xFF38, 0xFFFF], "CDAB", -200),
        ("s32", [0xFFFF, 0x38FF], "BADC", -200),
        ("s32", [0x38FF, 0xFFFF], "DCBA", -200),
        ("s32", [0x0001, 0x0000], "ABCD", 65536),
        ("u32", [0xFFFF, 0xFFFE], "ABCD", 4294967294),
        # 230.5 = 0x43668000 laid out four ways
        ("f32", [0x4366, 0x8000], "ABCD", 230.5),
        ("f32", [0x8000, 0x4366], "CDAB", 230.5),
        ("f32", [0x6643, 0x0080], "BADC", 230.5),
        ("f32", [0x0080, 0x6643], "DCBA", 230.5),
        ("f32", [0xC2C8, 0x0000], "ABCD", -100.0),
    ],
)
def test_every_type_and_byte_order(
    type_: str, words: list[int], order: str, expected: float
) -> None:
    assert decode_number(words, type_, order) == expected


@pytest.mark.parametrize(
    ("spec", "words", "expected"),
    [
        # APC binary points (AN176): raw / 2**n
        ({"type": "u16", "binary_point": 9}, [44544], 87.0),  # battery.charge
        ({"type": "s16", "binary_point": 5}, [872], 27.25),  # battery.voltage
        ({"type": "s16", "binary_point": 7}, [0xFD80], -5.0),  # battery.temperature, -640
        ({"type": "u16", "binary_point": 6}, [14720], 230.0),  # input.voltage
        # decimal scale and offset
        ({"type": "u16", "scale": 0.1}, [2301], 230.1),
        ({"type": "s16", "scale": 0.01}, [0xFF9C], -1.0),
        ({"type": "u16", "scale": 0.1, "offset": -100}, [1255], 25.5),  # Deye-style temperature
        ({"type": "u32", "byte_order": "CDAB", "scale": 0.1}, [0x86A0, 0x0001], 10000.0),
        ({"type": "u32"}, [0x0000, 0x0960], 2400.0),
    ],
)
def test_scaling(spec: dict[str, Any], words: list[int], expected: float) -> None:
    assert compile_field(field(**spec)).convert(words) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"type": "u16"}, [0xFFFF]),
        ({"type": "u16", "binary_point": 6}, [0xFFFF]),  # APC input.voltage n/a
        ({"type": "s16"}, [0x7FFF]),
        ({"type": "s16"}, [0x8000]),
        ({"type": "u32"}, [0xFFFF, 0xFFFF]),
        ({"type": "s32"}, [0x8000, 0x0000]),
        ({"type": "f32"}, [0x7FC0, 0x0000]),  # NaN
        ({"type": "u16", "not_available": [0]}, [0]),  # profile override
        ({"type": "date"}, [0xFFFF]),
    ],
)
def test_not_available_sentinels_are_dropped(spec: dict[str, Any], words: list[int]) -> None:
    assert compile_field(field(**spec)).convert(words) is None


def test_profile_override_replaces_the_default_sentinel() -> None:
    decoder = compile_field(field(type="u16", not_available=[0]))
    assert decoder.convert([0xFFFF]) == 65535.0


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ([100 * 512], 100.0),  # upper bound is plausible
        ([0], 0.0),
        ([101 * 512], None),  # 101 % charge
        ([0xFFFE], None),
    ],
)
def test_implausible_values_are_dropped(words: list[int], expected: float | None) -> None:
    decoder = compile_field(field(type="u16", binary_point=9, valid=[0, 100]))
    assert decoder.convert(words) == expected


@pytest.mark.parametrize(
    ("words", "order", "expected"),
    [
        ([0x536D, 0x6172, 0x742D, 0x5550, 0x5300, 0x0000], "ABCD", "Smart-UPS"),
        ([0x0000, 0x4142], "ABCD", "AB"),  # leading NULs
        ([0x2041, 0x4220, 0x2020], "ABCD", "AB"),  # space padding both ends
        ([0x4101, 0x42FF], "ABCD", "A B"),  # non-printables become spaces
        ([0x4D53, 0x3154], "BADC", "SMT1"),  # LSB first (Socomec)
        ([0x4D53, 0x3154], "DCBA", "SMT1"),
        ([0x534D, 0x5431], "CDAB", "SMT1"),  # strings have no word order
        ([0x0000, 0x0000], "ABCD", ""),
    ],
)
def test_strings(words: list[int], order: str, expected: str) -> None:
    assert decode_string(words, order) == expected


def test_empty_string_field_is_not_available() -> None:
    assert compile_field(field(type="string", length=2)).convert([0x0000, 0x2020]) is None


def test_dates_count_days_from_2000() -> None:
    decoder = compile_field(field(type="date"))
    assert decoder.convert([0]) == "2000-01-01"
    assert decoder.convert([8706]) == "2023-11-02"
    assert decoder.convert([0x22CA]) == "2024-05-20"


@pytest.mark.parametrize(
    ("bitfield", "words", "expected"),
    [
        ({"type": "u32", "bits": {1: "OL", 2: "OB", 21: "OVER"}}, [0x0020, 0x0002], {"OL", "OVER"}),
        ({"type": "u32", "bits": {1: "OL", 2: "OB"}, "byte_order": "CDAB"}, [0x0004, 0], {"OB"}),
        ({"bits": {1: "LB"}}, [0x0002], {"LB"}),
        ({"bits": {1: "LB"}}, [0xFFFD], set()),
        ({"bits": {5: "BOOST", 6: "TRIM"}}, [0x0061], {"BOOST", "TRIM"}),
        ({"bits": {0: "OL"}, "byte_order": "BADC"}, [0x0100], {"OL"}),
    ],
)
def test_bitfields(bitfield: dict[str, Any], words: list[int], expected: set[str]) -> None:
    spec = Bitfield.model_validate({"address": 0, **bitfield})
    assert decode_flags(spec, words, "ABCD") == expected


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize(
    ("spec", "value"),
    [
        ({"type": "u16"}, 4321.0),
        ({"type": "s16", "binary_point": 7}, -12.5),
        ({"type": "u32"}, 3_000_000_000.0),
        ({"type": "s32", "scale": 0.01}, -123456.78),
        ({"type": "f32"}, 49.75),
        ({"type": "u16", "scale": 0.1, "offset": -100}, 31.4),
        ({"type": "string", "length": 4}, "SMX750"),
        ({"type": "date"}, "2025-02-28"),
    ],
)
def test_encoder_round_trip(spec: dict[str, Any], value: float | str, order: str) -> None:
    fs = field(byte_order=order, **spec)
    words = encode_field(fs, value, "ABCD")
    assert len(words) == fs.width
    decoded = compile_field(fs).convert(words)
    assert decoded == (pytest.approx(value) if isinstance(value, float) else value)


def test_encoder_writes_sentinel_for_missing_values() -> None:
    fs = field(type="u16", binary_point=6)
    assert encode_field(fs, None, "ABCD") == [0xFFFF]
    assert math.isnan(decode_number(encode_field(field(type="f32"), None, "ABCD"), "f32", "ABCD"))


@pytest.mark.parametrize(
    ("spec", "value"),
    [({"type": "u16"}, 70000.0), ({"type": "u16"}, -1.0), ({"type": "s16"}, 40000.0)],
)
def test_encoder_refuses_values_the_type_cannot_hold(spec: dict[str, Any], value: float) -> None:
    with pytest.raises(ValueError, match="outside what"):
        encode_field(field(**spec), value, "ABCD")


def test_encode_string_is_msb_first_and_nul_padded() -> None:
    assert encode_string("SMT", 3) == [0x534D, 0x5400, 0x0000]
    assert words_to_raw(encode_string("AB", 1, "BADC"), "ABCD") == 0x4241


def test_plan_round_trip_through_the_apc_profile() -> None:
    profile = load_profile("apc-smart-ups")
    values = {"battery.charge": 55.5, "battery.runtime": 1200.0, "device.model": "Smart-UPS X"}
    reading = DecodePlan(profile).decode(encode_image(profile, values, {"OB", "LB"}), requests=3)
    assert reading.values == {"battery.charge": 55.5, "battery.runtime": 1200.0}
    assert reading.info == {"device.mfr": "APC", "device.model": "Smart-UPS X"}
    assert reading.flags == {"OB", "LB"}
    assert "OL" in reading.known_flags
    # Everything not given was encoded as "not available" and is reported, in profile order.
    assert reading.invalid[:3] == (
        "battery.voltage",
        "battery.date.maintenance",
        "battery.temperature",
    )
    assert "battery.charge" not in reading.invalid
    assert reading.requests == 3
