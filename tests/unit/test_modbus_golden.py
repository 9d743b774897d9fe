"""Golden tests: a hand-written register image per device decodes to a hand-written reading.

Every folder under tests/fixtures/modbus/ is a case: registers.yaml (profile name and a register
image), expected.yaml (the reading of the profile's role: a UPS's values, info, flags,
known_flags, invalid; an inverter's InverterReading fields) and expected.prom (the device's lines
on /metrics after one poll of that image, tests/golden.py; EROZGAR_UPDATE_GOLDEN=1 rewrites it).
A new UPS or inverter model is a profile plus a folder; no Python changes.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest
import yaml

from agent.config import parse_config
from agent.kinds import KINDS, Pools
from agent.poller import DevicePoller
from agent.state import AgentState, DeviceState
from collectors.modbus.decode import DecodePlan
from collectors.modbus.inverter import inverter_reading
from collectors.modbus.profile import load_profile
from collectors.modbus.transport import GatewayPool
from collectors.readings import InverterReading
from collectors.snmp.client import SnmpSessions
from simulators.modbus_server import READ_HOLDING, ModbusTcpServer
from tests.golden import assert_golden, poll_once

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "modbus"
CASES = sorted(path for path in FIXTURES.iterdir() if path.is_dir())


def test_there_are_golden_cases() -> None:
    assert CASES, f"no fixture folders under {FIXTURES}"


def register_image(registers: dict) -> dict[tuple[str, int], int]:
    """The case's registers as the device answers them: whole profile blocks, unlisted ones 0."""
    profile = load_profile(registers["profile"])
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
    return image


def read_case(case: Path, name: str) -> dict:
    return yaml.safe_load((case / name).read_text(encoding="utf-8"))


def device_list(registers: dict) -> str:
    """The config list a device with the case's profile goes under (by the profile's role)."""
    role = load_profile(registers["profile"]).role
    return {"genset": "genset", "inverter": "inverter"}.get(role, "modbus")


def case_poller(registers: dict, address: str, state: DeviceState) -> DevicePoller:
    """The daemon's poller for a device with the case's profile at `address`."""
    kind = KINDS[device_list(registers)]
    config = parse_config(
        {"site": {"id": "golden"},
         kind.name: [{"name": state.name, "address": address, "profile": registers["profile"]}]}
    )  # fmt: skip
    pools = Pools(SnmpSessions(), GatewayPool())
    return kind.poller(getattr(config, kind.name)[0], state, pools, None)


def assert_inverter_reading(got: InverterReading, expected: dict) -> None:
    """Every field as expected.yaml gives it, the default where it gives none; floats approx."""
    fields = dataclasses.asdict(got)
    for key, want in {**dataclasses.asdict(InverterReading()), **expected}.items():
        want = tuple(want) if isinstance(want, list) else want
        assert fields[key] == (pytest.approx(want) if isinstance(want, float | dict) else want), key


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_register_image_decodes_to_expected_reading(case: Path) -> None:
    registers, expected = read_case(case, "registers.yaml"), read_case(case, "expected.yaml")
    profile = load_profile(registers["profile"])

    reading = DecodePlan(profile).decode(register_image(registers))

    if profile.role == "inverter":
        assert_inverter_reading(inverter_reading(reading), expected)
        return
    assert dict(reading.values) == pytest.approx(expected["values"])
    assert set(reading.values) == set(expected["values"])
    assert dict(reading.info) == expected["info"]
    assert reading.flags == frozenset(expected["flags"])
    assert reading.known_flags == frozenset(expected["known_flags"])
    assert list(reading.invalid) == expected["invalid"]
    assert reading.requests == expected["requests"]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_register_image_exports_expected_metrics(case: Path) -> None:
    """The image served over Modbus TCP on loopback, polled by the daemon's own poller."""
    registers = read_case(case, "registers.yaml")
    image = register_image(registers)

    def source(unit: int, function: int, address: int, count: int) -> list[int]:
        table = "holding" if function == READ_HOLDING else "input"
        return [image[(table, at)] for at in range(address, address + count)]

    async def exposition() -> str:
        server = ModbusTcpServer(source)
        host, port = await server.start()
        state = AgentState("golden", "", "test")
        device_state = state.devices["dut"] = DeviceState("dut", device_list(registers))
        try:
            poller = case_poller(registers, f"{host}:{port}", device_state)
            return await poll_once(poller, state, "dut")
        finally:
            await server.stop()

    assert_golden(case / "expected.prom", asyncio.run(exposition()))
