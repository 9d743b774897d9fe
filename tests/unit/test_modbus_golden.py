"""Golden tests: a hand-written register image per device decodes to a hand-written reading.

Every folder under tests/fixtures/modbus/ is a case: registers.yaml (profile name and a register
image) and expected.yaml (values, info, flags, known_flags, invalid). A new UPS model is a
profile plus a folder; no Python changes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from collectors.modbus.decode import DecodePlan
from collectors.modbus.profile import load_profile

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "modbus"
CASES = sorted(path for path in FIXTURES.iterdir() if path.is_dir())


def test_there_are_golden_cases() -> None:
    assert CASES, f"no fixture folders under {FIXTURES}"


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_register_image_decodes_to_expected_reading(case: Path) -> None:
    registers = yaml.safe_load((case / "registers.yaml").read_text(encoding="utf-8"))
    expected = yaml.safe_load((case / "expected.yaml").read_text(encoding="utf-8"))
    profile = load_profile(registers["profile"])

    # A device answers whole blocks; registers the fixture does not list read as 0.
    image = {
        (block.table, address): 0
        for block in profile.blocks
        for address in range(block.address, block.end)
    }
    for table in ("holding", "input"):
        for address, word in (registers.get(table) or {}).items():
            assert (table, address) in image, f"{table} {address} is outside every block"
            assert 0 <= word <= 0xFFFF, f"{table} {address}: {word} is not a 16-bit word"
            image[(table, address)] = word

    reading = DecodePlan(profile).decode(image)

    assert dict(reading.values) == pytest.approx(expected["values"])
    assert set(reading.values) == set(expected["values"])
    assert dict(reading.info) == expected["info"]
    assert reading.flags == frozenset(expected["flags"])
    assert reading.known_flags == frozenset(expected["known_flags"])
    assert list(reading.invalid) == expected["invalid"]
    assert reading.requests == expected["requests"]
