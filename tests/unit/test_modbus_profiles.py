"""Every packaged Modbus profile loads; broken profiles fail at load with the key named."""

from __future__ import annotations

import pytest

from collectors.modbus.decode import DecodePlan
from collectors.modbus.profile import (
    available_profiles,
    load_profile,
    parse_profile,
)
from collectors.packaged import ProfileError
from collectors.readings import READINGS

GOOD = """\
name: test-ups
source: a test
role: ups
blocks:
  - {name: dynamic, address: 128, count: 44}
fields:
  - {name: battery.charge, address: 130, type: u16, binary_point: 9, valid: [0, 100]}
bitfields:
  - {address: 150, bits: {5: BOOST}}
"""


def test_apc_profile_is_packaged() -> None:
    assert "apc-smart-ups" in available_profiles()


@pytest.mark.parametrize("name", available_profiles())
def test_every_packaged_profile_loads_and_compiles(name: str) -> None:
    profile = load_profile(name)
    assert profile.name == name
    plan = DecodePlan(profile)
    assert plan.fields, f"{name} defines no fields"
    if profile.role in ("ups", "genset"):
        assert profile.known_flags, f"{name} maps no status bits"
    else:  # an inverter says where its load's power comes from instead
        names = {spec.name for spec in profile.fields}
        assert names & {"load.source", "grid.present", "grid.voltage"}, f"{name}: no grid state"


def test_apc_profile_reads_the_documented_blocks() -> None:
    blocks = [(b.table, b.address, b.count) for b in load_profile("apc-smart-ups").blocks]
    assert blocks == [("holding", 0, 27), ("holding", 128, 44), ("holding", 516, 80)]


def test_good_profile_parses() -> None:
    profile = parse_profile(GOOD, "test-ups.yaml")
    assert profile.fields[0].name == "battery.charge"
    assert profile.known_flags == {"BOOST"}


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        # field outside every block
        (
            "address: 130,",
            "address: 200,",
            r"fields\[0\] \(battery\.charge\)\.address: holding 200\+1 is not inside one declared",
        ),
        # a u32 that straddles the end of its block
        (
            "address: 130, type: u16, binary_point: 9,",
            "address: 171, type: u32,",
            r"fields\[0\] \(battery\.charge\)\.address: holding 171\+2",
        ),
        # unknown key
        (
            "valid: [0, 100]}",
            "valid: [0, 100], colour: red}",
            r"fields\[0\] \(battery\.charge\)\.colour: Extra inputs are not permitted",
        ),
        (
            "name: test-ups",
            "name: test-ups\nvendor: APC",
            r"^test-ups\.yaml: vendor: Extra inputs",
        ),
        # the role: one of the known roles, and one whose reading a Modbus profile decodes
        ("role: ups\n", "", r"^test-ups\.yaml: role: required key is missing"),
        ("role: ups", "role: fridge", r"^test-ups\.yaml: role: Input should be 'ups', 'genset'"),
        (
            "role: ups",
            "role: ats",
            r"^test-ups\.yaml: role: .*ats is not read by this kind of profile yet",
        ),
        # bad byte order
        (
            "binary_point: 9,",
            "binary_point: 9, byte_order: LITTLE,",
            r"fields\[0\] \(battery\.charge\)\.byte_order: Input should be 'ABCD'",
        ),
        (
            "name: test-ups",
            "name: test-ups\nbyte_order: little",
            r"^test-ups\.yaml: byte_order: ",
        ),
        # inconsistent types and lengths
        (
            "type: u16, binary_point: 9,",
            "type: u16, binary_point: 9, scale: 0.1,",
            r"scale: give scale or binary_point, not both",
        ),
        (
            "type: u16, binary_point: 9, valid: [0, 100]",
            "type: string",
            r"length: a string needs its length",
        ),
        (
            "type: u16, binary_point: 9, valid: [0, 100]",
            "type: u16, length: 2",
            r"length: only strings have a length",
        ),
        (
            "type: u16, binary_point: 9, valid: [0, 100]",
            "type: date, valid: [0, 1]",
            r"valid: only numeric fields take valid",
        ),
        ("valid: [0, 100]", "valid: [100, 0]", r"valid: min 100\.0 is above max 0\.0"),
        ("valid: [0, 100]", "not_available: [70000]", r"not_available: 70000 does not fit in u16"),
        ("type: u16", "type: u64", r"fields\[0\] \(battery\.charge\)\.type: Input should be"),
        (
            "name: battery.charge",
            "name: Battery Charge",
            r"fields\[0\] \(Battery Charge\)\.name: String should match",
        ),
        # blocks
        (
            "count: 44}",
            "count: 126}",
            r"blocks\[0\]\.count: Input should be less than or equal to 125",
        ),
        (
            "count: 44}",
            "count: 44}\n  - {name: again, address: 150, count: 2}",
            r"blocks: 'again' overlaps 'dynamic'",
        ),
        # bitfields
        (
            "bits: {5: BOOST}",
            "bits: {16: BOOST}",
            r"bitfields\[0\]\.bits: bit 16 does not exist in a u16$",
        ),
        (
            "bits: {5: BOOST}",
            "bits: {5: BOOSTING}",
            r"bitfields\[0\]\.bits\[5\]: Input should be 'OL'",
        ),
        # a status word of another role: a UPS has no generator breaker
        (
            "bits: {5: BOOST}",
            "bits: {5: ON_LOAD}",
            r"bitfields\[0\]: ON_LOAD is not a ups status word",
        ),
        # bare OFF is YAML for false: the error points at the bit, not somewhere obscure
        (
            "bits: {5: BOOST}",
            "bits: {4: OFF}",
            r"bitfields\[0\]\.bits\[4\]: Input .*\(got a YAML boolean: quote words such as OFF",
        ),
        ("address: 150", "address: 300", r"bitfields\[0\]\.address: holding 300\+1 is not inside"),
        # a reason not to export something the profile does not decode
        (
            "bits: {5: BOOST}}",
            "bits: {5: BOOST}}\nnot_exported: {input.frequency: not read by this map}",
            r"not_exported: input\.frequency is not a field of this profile",
        ),
        (
            "name: battery.charge",
            "name: battery.charge, register: coil",
            r"\.register: Input should be 'holding' or 'input'",
        ),
    ],
)
def test_broken_profile_names_file_and_key(old: str, new: str, message: str) -> None:
    assert old in GOOD
    with pytest.raises(ProfileError, match=message) as caught:
        parse_profile(GOOD.replace(old, new, 1), "test-ups.yaml")
    text = str(caught.value)
    assert text.startswith("test-ups.yaml: ")
    assert "\n" not in text


def test_duplicate_field_names_are_refused() -> None:
    twice = "  - {name: battery.charge, address: 131, type: u16}\nbitfields:"
    with pytest.raises(ProfileError, match=r"fields\[1\] \(battery\.charge\)\.name: .* twice"):
        parse_profile(GOOD.replace("bitfields:", twice), "test-ups.yaml")


def test_several_errors_are_counted_on_one_line() -> None:
    broken = GOOD.replace("type: u16", "type: u64").replace("count: 44", "count: 0")
    with pytest.raises(ProfileError, match=r"\(and \d+ more\)$"):
        parse_profile(broken, "test-ups.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: [unclosed", r"^x\.yaml: not valid YAML: "),
        ("- just a list", r"^x\.yaml: expected a mapping"),
        ("name: x\nsource: s\nrole: ups\nblocks: []", r"^x\.yaml: blocks: .* at least 1 item"),
    ],
)
def test_not_a_profile(text: str, message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        parse_profile(text, "x.yaml")


@pytest.mark.parametrize("name", ["no-such-ups", "../readings", "APC"])
def test_unknown_profile_lists_the_available_ones(name: str) -> None:
    with pytest.raises(ProfileError, match=r"no such Modbus profile \(available: .*apc-smart-ups"):
        load_profile(name)


@pytest.mark.parametrize("name", available_profiles())
def test_every_packaged_profile_declares_its_role(name: str) -> None:
    """UPS profiles, generator controllers and solar inverters; each decodes into its role's
    reading (an inverter's collector builds its InverterReading from the flat one)."""
    profile = load_profile(name)
    inverters = {"growatt-spf", "deye-sunsynk-1p"}  # solar hybrid inverters, not UPSes
    role = "genset" if name == "dse-gencomm" else "inverter" if name in inverters else "ups"
    assert profile.role == role
    image = {(b.table, a): 0 for b in profile.blocks for a in range(b.address, b.end)}
    flat = READINGS["genset"] if role == "genset" else READINGS["ups"]
    assert type(DecodePlan(profile).decode(image)) is flat


@pytest.mark.parametrize(
    ("field", "message"),
    [
        (
            "{name: ups.load, address: 0, type: u16}",
            r"fields\[0\]\.name: ups\.load is not an inverter",
        ),
        ("{name: pv1.power, address: 9, type: u16}", r"not inside one declared block"),
    ],
)
def test_inverter_profile_speaks_the_inverter_vocabulary(field: str, message: str) -> None:
    text = (
        "name: test-inv\nsource: s\nrole: inverter\n"
        "blocks: [{name: b, address: 0, count: 4}]\n"
        f"fields: [{field}]\n"
    )
    with pytest.raises(ProfileError, match=message):
        parse_profile(text, "test-inv.yaml")


def test_inverter_profile_has_no_ups_status_bits() -> None:
    text = (
        "name: test-inv\nsource: s\nrole: inverter\n"
        "blocks: [{name: b, address: 0, count: 4}]\n"
        "bitfields: [{address: 0, bits: {0: OB}}]\n"
    )
    with pytest.raises(ProfileError, match=r"bitfields: an inverter says its mode"):
        parse_profile(text, "test-inv.yaml")
