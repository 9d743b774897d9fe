"""The check's value diagnosis: implausible values found, and the word order that fixes them."""

from __future__ import annotations

from agent.commission.modbus import implausible, other_orders, plausible
from collectors.modbus.decode import DecodePlan
from collectors.modbus.encode import encode_image
from collectors.modbus.profile import load_profile

ON_MAINS = {
    "battery.charge": 90.0,
    "battery.runtime": 5400.0,
    "battery.voltage": 27.2,
    "input.voltage": 230.0,
    "output.voltage": 230.0,
    "ups.load": 30.0,
}


def test_a_word_swapped_unit_is_implausible_and_cdab_fixes_it():
    apc = load_profile("apc-smart-ups")
    image = encode_image(apc.model_copy(update={"byte_order": "CDAB"}), ON_MAINS, ["OL"])
    problems = implausible(apc, image, DecodePlan(apc).decode(image))
    assert any(p.startswith("battery.runtime ") and "outside 0..86400" in p for p in problems)
    assert other_orders(apc, image) == ["CDAB"]


def test_a_correct_image_is_plausible_and_needs_no_other_order():
    apc = load_profile("apc-smart-ups")
    image = encode_image(apc, ON_MAINS, ["OL"])
    assert implausible(apc, image, DecodePlan(apc).decode(image)) == []
    assert plausible(apc, image)


def test_mains_out_of_range_while_on_mains_is_named():
    apc = load_profile("apc-smart-ups")
    image = encode_image(apc, {**ON_MAINS, "input.voltage": 23.0}, ["OL"])
    problems = implausible(apc, image, DecodePlan(apc).decode(image))
    assert problems == ["input.voltage 23 V on mains (expected 180-260 V)"]


def test_not_available_fields_are_not_problems():
    apc = load_profile("apc-smart-ups")
    values = {k: v for k, v in ON_MAINS.items() if k != "output.voltage"}
    image = encode_image(apc, values, ["OL"])
    reading = DecodePlan(apc).decode(image)
    assert "output.voltage" in reading.invalid
    assert implausible(apc, image, reading) == []
