"""Inverter check: which source feeds the load, grid present and battery state, by the rules
in agent/checks/inverter.py; and a `modbus:` device cannot use an inverter profile."""

from __future__ import annotations

import asyncio

import pytest

from agent.checks.inverter import judge
from agent.config import ConfigError, parse_config
from agent.kinds import KINDS, Pools
from agent.verdict import DeviceVerdict
from collectors.modbus.decode import DecodePlan
from collectors.modbus.inverter import inverter_reading
from collectors.modbus.profile import load_profile
from collectors.modbus.transport import GatewayPool
from collectors.readings import InverterReading
from collectors.snmp.client import SnmpSessions
from simulators.inverter import SimulatedInverter
from simulators.modbus_server import READ_HOLDING, READ_INPUT

FUNCTION = {"holding": READ_HOLDING, "input": READ_INPUT}


def test_the_mode_register_wins_over_the_flows() -> None:
    # Growatt status 6-11: the grid carries the load even while PV is larger
    reading = InverterReading(load_source="grid", pv_watts=3000.0, load_watts=500.0)
    status = judge(reading)
    assert status.load_source == "grid"
    assert status.grid_present is True  # a grid mode says the grid is there


@pytest.mark.parametrize(
    ("flows", "source"),
    [
        # on grid at night: the grid meter imports what the load draws
        ({"grid_watts": 800.0, "battery_watts": 0.0, "pv_watts": 0.0}, "grid"),
        # a cut: the battery discharges into the load
        (
            {"grid_watts": 0.0, "battery_watts": 900.0, "pv_watts": 0.0, "grid_present": False},
            "battery",
        ),
        # noon: PV carries the load and charges the battery, a little is exported
        ({"grid_watts": -116.0, "battery_watts": -1234.0, "pv_watts": 2200.0}, "solar"),
        # cloud: PV and battery share the load, the battery more
        ({"grid_watts": 0.0, "battery_watts": 600.0, "pv_watts": 300.0}, "battery"),
        # nothing flows: no source can be named
        ({"grid_watts": 5.0, "battery_watts": -3.0, "pv_watts": 0.0}, "unknown"),
        # grid metered as importing but the inverter says the grid is gone: not the grid
        ({"grid_watts": 700.0, "battery_watts": 100.0, "grid_present": False}, "battery"),
    ],
)
def test_without_a_mode_the_largest_flow_names_the_source(flows: dict, source: str) -> None:
    assert judge(InverterReading(**flows)).load_source == source


def test_mode_words_that_name_no_source_leave_it_to_the_flows() -> None:
    # Growatt 12 "PV charge + discharge" is decoded as a word that is no source: None here
    reading = InverterReading(load_source=None, pv_watts=1200.0, battery_watts=300.0)
    assert judge(reading).load_source == "solar"


def test_without_a_grid_meter_the_grid_covers_what_pv_and_battery_do_not() -> None:
    reading = InverterReading(grid_volts=230.0, load_watts=1000.0, pv_watts=200.0)
    status = judge(reading)
    assert status.grid_present is True
    assert status.load_source == "grid"  # 800 W from the grid against 200 W of PV


@pytest.mark.parametrize(
    ("reading", "present"),
    [
        (InverterReading(grid_present=False, grid_volts=231.0), False),  # the register wins
        (InverterReading(grid_volts=0.0), False),  # a cut
        (InverterReading(grid_volts=170.0), True),  # a brownout is still grid
        (InverterReading(), None),  # nothing to tell by
    ],
)
def test_grid_present(reading: InverterReading, present: bool | None) -> None:
    assert judge(reading).grid_present is present


@pytest.mark.parametrize(
    ("reading", "state"),
    [
        (InverterReading(battery_watts=-500.0), "charging"),
        (InverterReading(battery_watts=500.0), "discharging"),
        (InverterReading(battery_watts=10.0), "idle"),
        (InverterReading(battery_amperes=-12.3), "charging"),  # only current in the map
        (InverterReading(), None),
    ],
)
def test_battery_state(reading: InverterReading, state: str | None) -> None:
    assert judge(reading).battery_state == state


def test_status_is_frozen() -> None:
    status = judge(InverterReading())
    with pytest.raises(AttributeError):
        status.load_source = "grid"  # type: ignore[misc]


def _config(key: str, profile: str) -> dict:
    device = {"name": "inv", "address": "192.0.2.9", "profile": profile}
    return {"site": {"id": "t"}, key: [device]}


def test_a_modbus_device_with_an_inverter_profile_is_a_one_line_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(_config("modbus", "deye-sunsynk-1p"))
    assert caught.value.problems == [
        "config: modbus[0].profile: deye-sunsynk-1p has role inverter: configure this device "
        "under inverter:, not modbus:"
    ]


def test_an_inverter_device_with_a_ups_profile_is_refused_the_other_way() -> None:
    with pytest.raises(ConfigError, match=r"inverter\[0\]\.profile: apc-smart-ups has role ups"):
        parse_config(_config("inverter", "apc-smart-ups"))


def test_an_inverter_device_reuses_the_modbus_connection_settings() -> None:
    config = parse_config(_config("inverter", "growatt-spf"))
    device = config.inverter[0]
    assert (device.unit, device.transport, device.host_port) == (1, "tcp", ("192.0.2.9", 502))


@pytest.mark.parametrize("profile", ["growatt-spf", "deye-sunsynk-1p"])
@pytest.mark.parametrize(
    ("changes", "source", "grid"),
    [
        ({}, "grid", True),
        ({"grid": False}, "battery", False),
        ({"grid": False, "pv_watts": 2200.0}, "solar", False),
    ],
)
def test_the_simulated_inverter_reads_back_through_its_profile(
    profile: str, changes: dict, source: str, grid: bool
) -> None:
    """Encode (simulators/inverter.py) and decode go through the same packaged map; Growatt
    names the source by its status register (12 PV + discharge leaves it to the flows), Deye
    by its flows."""
    inverter = SimulatedInverter(profile)
    inverter.set(**changes)
    plan = DecodePlan(load_profile(profile))
    image = {
        (block.table, block.address + i): word
        for block in plan.profile.blocks
        for i, word in enumerate(
            inverter.register_source(1, FUNCTION[block.table], block.address, block.count)
        )
    }
    reading = inverter_reading(plan.decode(image))
    assert reading.invalid == ()
    status = judge(reading)
    assert (status.load_source, status.grid_present) == (source, grid)


def test_check_passes_with_what_the_inverter_says_and_fails_on_a_closed_port() -> None:
    async def verdicts() -> tuple[DeviceVerdict, DeviceVerdict]:
        inverter = SimulatedInverter("deye-sunsynk-1p")
        host, port = await inverter.start()
        try:
            good = await _verdict(f"{host}:{port}")
        finally:
            await inverter.stop()
        return good, await _verdict(f"{host}:{port}")  # nothing listens there now

    good, closed = asyncio.run(verdicts())
    assert good.status == "PASS", good.checks
    assert good.checks[-1].detail == (
        "unit 1: load on grid, PV 0 W, battery 90 % idle, grid present"
    )
    assert closed.status == "FAIL"


async def _verdict(address: str) -> DeviceVerdict:
    config = parse_config(
        {"site": {"id": "t"},
         "inverter": [{"name": "inv", "address": address, "profile": "deye-sunsynk-1p",
                       "timeout": 0.5, "retries": 0}]}
    )  # fmt: skip
    pools = Pools(SnmpSessions(), GatewayPool())
    return await KINDS["inverter"].check(config.inverter[0], pools, 0.0)
