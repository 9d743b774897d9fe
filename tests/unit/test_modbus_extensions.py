"""Decoder features the non-APC maps need: SunSpec scale-factor registers, enum texts and
enum flags, input registers, per-field byte order, the 0x8000 sentinel. Table-driven."""

from __future__ import annotations

from typing import Any

import pytest

from collectors.modbus.decode import DecodePlan, compile_field
from collectors.modbus.encode import encode_image
from collectors.modbus.profile import FieldSpec, parse_profile
from collectors.packaged import ProfileError


def field(**kw: Any) -> FieldSpec:
    return FieldSpec.model_validate({"name": "x.y", "address": 0, **kw})


@pytest.mark.parametrize(
    ("spec", "words", "expected"),
    [
        # SunSpec: raw * 10**SF; SF is signed, 0x8000 = not implemented
        ({"type": "u16", "scale_register": 5}, [5120, 0xFFFE], 51.2),
        ({"type": "u16", "scale_register": 5}, [512, 0x0001], 5120.0),
        ({"type": "s16", "scale_register": 5}, [0xFF9C, 0xFFFF], -10.0),  # -100 * 10**-1
        ({"type": "u16", "scale_register": 5}, [5120, 0x8000], None),
        ({"type": "s16", "scale_register": 5}, [0x8000, 0x0000], None),  # int16 n/a
        ({"type": "u32", "scale_register": 5}, [0x0001, 0x0000, 0xFFFD], 65.536),
        # Deye: LSW first (CDAB) on one field while the profile default stays ABCD
        ({"type": "u32", "byte_order": "CDAB", "scale": 0.1}, [0x86A0, 0x0001], 10000.0),
        # Deye temperature: raw * 0.1 - 100
        ({"type": "u16", "scale": 0.1, "offset": -100}, [1315], 31.5),
        # Enum texts by value, unlisted -> invalid
        (
            {"type": "u16", "map": {2: "Done and passed", 3: "Done and error"}},
            [2],
            "Done and passed",
        ),
        ({"type": "u16", "map": {2: "Done and passed"}}, [7], None),
        # Bit texts: lowest listed set bit; none set -> "" (nothing to report)
        (
            {"type": "u16", "map_bits": {2: "Done and passed", 1: "In progress"}},
            [0x0046],
            "In progress",
        ),
        ({"type": "u16", "map_bits": {2: "Done and passed"}}, [0x0000], ""),
    ],
)
def test_field_decoding(spec: dict[str, Any], words: list[int], expected: object) -> None:
    decoder = compile_field(field(**spec))
    result = decoder.convert(words)
    if isinstance(expected, float):
        assert result == pytest.approx(expected)
    else:
        assert result == expected


PROFILE = """\
name: t
source: a test
role: ups
blocks:
  - {name: in, register: input, address: 0, count: 4}
  - {name: hold, address: 100, count: 3}
fields:
  - {name: battery.charge, register: input, address: 0, type: u16, scale_register: 1}
  - {name: ups.test.result, address: 101, type: u16, map_bits: {2: Done and passed}}
bitfields:
  - {register: input, address: 2, map: {2: OB, 5: OL, 6: OL}}
  - {address: 100, bits: {0: LB}}
"""


@pytest.mark.parametrize(("status", "flags"), [(2, {"OB"}), (5, {"OL"}), (6, {"OL"}), (3, set())])
def test_enum_register_selects_a_flag(status: int, flags: set[str]) -> None:
    plan = DecodePlan(parse_profile(PROFILE, "t.yaml"))
    image = {("input", 0): 87, ("input", 1): 0, ("input", 2): status, ("input", 3): 0,
             ("holding", 100): 0, ("holding", 101): 4, ("holding", 102): 0}  # fmt: skip
    reading = plan.decode(image)
    assert reading.flags == flags
    assert reading.known_flags == {"OB", "OL", "LB"}
    assert reading.values == {"battery.charge": 87.0}
    assert reading.info == {"ups.test.result": "Done and passed"}


def test_encoder_round_trips_the_new_kinds() -> None:
    profile = parse_profile(PROFILE, "t.yaml")
    image = encode_image(
        profile, {"battery.charge": 55.0, "ups.test.result": "Done and passed"}, {"LB"}
    )
    reading = DecodePlan(profile).decode(image)
    assert reading.values == {"battery.charge": 55.0}
    assert reading.info == {"ups.test.result": "Done and passed"}
    assert reading.flags == {"LB"}


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("scale_register: 1}", "scale_register: 9}", r"scale_register: input 9 is not inside"),
        ("map_bits: {2: Done and passed}", "map_bits: {16: x}", r"map_bits: bits of a u16"),
        ("type: u16, map_bits", "type: s16, map_bits", r"map: only u16 codes map to words"),
        ("map: {2: OB, 5: OL, 6: OL}", "map: {}", r"bits: give bits or map"),
    ],
)
def test_bad_extensions_name_the_key(old: str, new: str, message: str) -> None:
    assert old in PROFILE
    with pytest.raises(ProfileError, match=message):
        parse_profile(PROFILE.replace(old, new), "t.yaml")
