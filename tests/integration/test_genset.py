"""A standby generator through the real `erozgar-agent run` process: a Modbus UPS simulator
behind the transfer switch and the DSE GenComm controller simulator (simulators/genset.py).

- Mains cut -> the generator takes the load after its start delay: the agent's measured
  erozgar_genset_start_delay_seconds matches it, and the centre's power source goes grid ->
  battery -> generator -> grid.
- A generator that fails to start: one start failure counted once its timeout passes.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from simulators.genset import SimulatedGenset
from simulators.ups import SimulatedUps

from .test_agent_process import LoopThread, get
from .test_faults import Centre, start_agent, stop_agent, up

pytestmark = pytest.mark.integration

START_DELAY = 4.0
FAST = {"interval": 0.5, "timeout": 0.4, "retries": 0}


def run_centre(tmp_path: Path, genset: SimulatedGenset, start_timeout: float = 60.0) -> Centre:
    loop = LoopThread()
    ups = SimulatedUps("apc-smart-ups", load_w=300.0)
    genset.feed(ups)
    ups_port = loop.run(ups.start("127.0.0.1", 0))[1]
    genset_port = loop.run(genset.start("127.0.0.1", 0))[1]
    config = {
        "site": {"id": "GEN-001"},
        "state_dir": str(tmp_path),
        "modbus": [{"name": "ups", "address": f"127.0.0.1:{ups_port}", **FAST}],
        "genset": [
            {"name": "genset", "address": f"127.0.0.1:{genset_port}",
             "start_timeout_seconds": start_timeout, **FAST}
        ],
    }  # fmt: skip
    agent_port, process = start_agent(config, tmp_path)
    centre = Centre(loop, agent_port, process, ups=ups, genset=genset)
    centre.wait(
        lambda f: up(f, "ups", "modbus") == 1 and up(f, "genset", "genset") == 1,
        "the UPS and the genset polled",
        30,
    )
    return centre


def finish(centre: Centre) -> str:
    log = stop_agent(centre.process)
    for peer in centre.peers.values():
        centre.loop.run(peer.stop())
    centre.loop.close()
    assert centre.process.returncode == 0, log[-3000:]
    assert "Traceback" not in log, log[-5000:]
    return log


def source(found: dict) -> str | None:
    on = [s for s in ("grid", "battery", "generator")
          if get(found, "erozgar_centre_power_source", source=s) == 1]  # fmt: skip
    return on[0] if len(on) == 1 else None


def test_generator_takes_the_load_after_its_start_delay(tmp_path: Path) -> None:
    genset = SimulatedGenset(start_delay_seconds=START_DELAY)
    centre = run_centre(tmp_path, genset)
    try:
        centre.wait(lambda f: source(f) == "grid", "on the grid first")
        centre.loop.call(lambda: genset.set_mains(False))
        # A device's figures may be a second behind its latest poll (README, "A scrape formats
        # almost nothing"), the centre's source is judged from that poll: wait for both.
        centre.wait(
            lambda f: source(f) == "battery" and get(f, "erozgar_ups_on_battery", device="ups"),
            "the cut seen",
            10,
        )
        centre.wait(
            lambda f: (
                source(f) == "generator"
                and get(f, "erozgar_genset_on_load", device="genset")
                and get(f, "erozgar_ups_on_battery", device="ups") == 0
            ),
            "the generator on load, the UPS input live again",
        )
        time.sleep(1)
        centre.loop.call(lambda: genset.set_mains(True))
        back = centre.wait(lambda f: source(f) == "grid", "back on the grid")
    finally:
        log = finish(centre)
    delay = get(back, "erozgar_genset_start_delay_seconds", device="genset")
    print(f"start delay {START_DELAY} s, agent measured {delay} s")
    # polls every 0.5 s on both sides and a site judgement each second
    assert delay == pytest.approx(START_DELAY, abs=1.5)
    assert get(back, "erozgar_genset_start_failures_total", device="genset") == 0
    assert get(back, "erozgar_genset_engine_starts_total", device="genset") == 321
    seconds = {
        s: get(back, "erozgar_centre_power_source_seconds_total", source=s)
        for s in ("battery", "generator")
    }
    assert seconds["battery"] == pytest.approx(START_DELAY, abs=1.5)
    assert seconds["generator"] >= 1.0
    assert "genset: generator on load" in log


def test_a_generator_that_does_not_start_counts_a_start_failure(tmp_path: Path) -> None:
    genset = SimulatedGenset(start_delay_seconds=START_DELAY, fail_to_start=True)
    centre = run_centre(tmp_path, genset, start_timeout=3.0)
    try:
        centre.wait(lambda f: source(f) == "grid", "on the grid first")
        centre.loop.call(lambda: genset.set_mains(False))
        found = centre.wait(
            lambda f: get(f, "erozgar_genset_start_failures_total", device="genset") == 1,
            "the start failure counted",
        )
        time.sleep(2)  # still one failure for the one cut
        later = centre.metrics()
        centre.loop.call(lambda: genset.set_mains(True))
    finally:
        log = finish(centre)
    assert source(found) == "battery"
    assert get(later, "erozgar_genset_start_failures_total", device="genset") == 1
    assert get(later, "erozgar_genset_alarm", device="genset", alarm="shutdown") == 1
    assert get(later, "erozgar_genset_start_delay_seconds", device="genset") is None
    assert "start failure" in log
