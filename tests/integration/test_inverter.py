"""A solar hybrid inverter through the real `erozgar-agent run` process: the simulated Deye
(simulators/inverter.py, the packaged profile's register map over Modbus TCP) loses the grid,
then the sun comes up, and /metrics follows: which source feeds the load, grid present, the
battery's state and the flows."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators.inverter import SimulatedInverter

from .test_agent_process import LoopThread, get
from .test_faults import Centre, start_agent, stop_agent, up

pytestmark = pytest.mark.integration

DEVICE = "inv-roof"


@pytest.fixture
def centre(tmp_path: Path) -> Iterator[Centre]:
    loop = LoopThread()
    inverter = SimulatedInverter("deye-sunsynk-1p", load_watts=850.0)
    port = loop.run(inverter.start("127.0.0.1", 0))[1]
    config = {
        "site": {"id": "SUN-001"},
        "state_dir": str(tmp_path),
        "inverter": [
            {
                "name": DEVICE,
                "address": f"127.0.0.1:{port}",
                "profile": "deye-sunsynk-1p",
                "interval": 0.5,
                "timeout": 0.4,
                "retries": 0,
            }
        ],
    }
    agent_port, process = start_agent(config, tmp_path)
    centre = Centre(loop, agent_port, process, inverter=inverter)
    try:
        yield centre
    finally:
        log = stop_agent(process)
        loop.run(inverter.stop())
        loop.close()
        assert process.returncode == 0, log[-3000:]
        assert "Traceback" not in log, log[-5000:]


def source(found: dict) -> str | None:
    """The one source erozgar_inverter_load_source says, if exactly one is 1."""
    on = [
        dict(labels)["source"]
        for (name, labels), value in found.items()
        if name == "erozgar_inverter_load_source" and value == 1
    ]
    return on[0] if len(on) == 1 else None


def value(found: dict, name: str, **labels: str) -> float | None:
    return get(found, f"erozgar_inverter_{name}", device=DEVICE, **labels)


def test_the_metrics_follow_the_grid_and_the_sun(centre: Centre) -> None:
    found = centre.wait(
        lambda f: up(f, DEVICE, "inverter") == 1 and source(f) == "grid", "on grid", 30
    )
    assert value(found, "grid_present") == 1
    assert value(found, "grid_power_watts") == 850.0
    assert value(found, "load_power_watts") == 850.0
    assert value(found, "battery_state", state="idle") == 1
    assert value(found, "battery_charge_ratio") == pytest.approx(0.9)

    # load-shedding at night: the grid goes, the battery carries the load
    inverter: SimulatedInverter = centre.peers["inverter"]
    centre.loop.call(lambda: inverter.set(grid=False))
    found = centre.wait(lambda f: source(f) == "battery", "the load on battery")
    assert value(found, "grid_present") == 0
    assert value(found, "grid_voltage_volts") == 0
    assert value(found, "battery_power_watts") == 850.0
    assert value(found, "battery_state", state="discharging") == 1

    # the sun comes up, still no grid: PV carries the load and charges the battery
    centre.loop.call(lambda: inverter.set(pv_watts=2200.0))
    found = centre.wait(lambda f: source(f) == "solar", "the load on solar")
    assert value(found, "pv_power_watts") == 2200.0
    assert value(found, "pv_string_power_watts", string="1") == 1100.0
    assert value(found, "battery_power_watts") == -1350.0
    assert value(found, "battery_state", state="charging") == 1
    assert value(found, "grid_present") == 0

    # the grid is back
    centre.loop.call(lambda: inverter.set(grid=True, pv_watts=0.0))
    found = centre.wait(lambda f: source(f) == "grid", "back on grid")
    assert value(found, "grid_present") == 1


def test_the_status_page_shows_the_inverter_card(centre: Centre) -> None:
    centre.wait(lambda f: source(f) == "grid", "on grid", 30)
    with urllib.request.urlopen(f"http://127.0.0.1:{centre.port}/status.json", timeout=5) as r:
        cards = json.loads(r.read())["ups"]
    card = next(card for card in cards if card["name"] == DEVICE)
    assert card["card"] == "inverter"
    assert (card["load_source"], card["grid_present"], card["load_watts"]) == ("grid", True, 850.0)
    with urllib.request.urlopen(f"http://127.0.0.1:{centre.port}/", timeout=5) as r:
        assert "On grid" in r.read().decode()
