"""Power figures through the real `erozgar-agent run` process and the Modbus UPS simulator.

- An NTP step of an hour in the middle of a cut (libfaketime moves only the wall clock, as the
  kernel does): still one outage, of the length the cut really had, and no "lost again".
- A battery self-test (APC: OB TEST): shown as a self-test, never as a mains cut.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from simulators.ups import SimulatedUps

from .test_agent_process import LoopThread, get
from .test_faults import Centre, start_agent, stepped_clock, stop_agent, up

pytestmark = pytest.mark.integration


class SelfTestingUps(SimulatedUps):
    """The simulated APC, able to test its battery: on battery while mains is there."""

    testing = False

    def truth(self) -> dict[str, float | str]:
        truth = super().truth()
        if self.testing:
            truth["ups.status"] = str(truth["ups.status"]).replace("OL", "OB TEST")
            truth["ups.test.result"] = "In progress"
        return truth


def run_agent(tmp_path: Path, ups: SimulatedUps, env: dict[str, str] | None = None) -> Centre:
    loop = LoopThread()
    port = loop.run(ups.start("127.0.0.1", 0))[1]
    config = {
        "site": {"id": "PWR-001"},
        "state_dir": str(tmp_path),  # its own ledger: earlier runs' outages must not add up
        "modbus": [
            {
                "name": "ups",
                "address": f"127.0.0.1:{port}",
                "interval": 0.5,
                "timeout": 0.4,
                "retries": 0,
            }
        ],
    }
    agent_port, process = start_agent(config, tmp_path, env)
    centre = Centre(loop, agent_port, process, ups=ups)
    centre.wait(lambda f: up(f, "ups", "modbus") == 1, "the UPS polled", 30)
    return centre


def finish(centre: Centre) -> str:
    log = stop_agent(centre.process)
    centre.loop.run(centre.peers["ups"].stop())
    centre.loop.close()
    assert centre.process.returncode == 0, log[-3000:]
    assert "Traceback" not in log, log[-5000:]
    return log


def on_battery(found: dict) -> float | None:
    return get(found, "erozgar_ups_on_battery", device="ups")


def test_ntp_step_in_a_cut_leaves_one_outage_of_the_right_length(tmp_path: Path) -> None:
    offset, env = stepped_clock(tmp_path)
    ups = SimulatedUps("apc-smart-ups", load_w=300.0)
    centre = run_agent(tmp_path, ups, env)
    try:
        centre.wait(lambda f: on_battery(f) == 0, "on mains first")
        centre.loop.call(lambda: ups.set_mains(False))
        cut_started = time.monotonic()
        centre.wait(lambda f: on_battery(f) == 1, "the cut seen")
        time.sleep(2)
        offset.write_text("+3600\n")  # NTP steps the wall clock an hour forward, mid-cut
        centre.wait(
            lambda f: (get(f, "erozgar_agent_clock_jumps_total") or 0) >= 1, "the step seen"
        )
        time.sleep(2)
        centre.loop.call(lambda: ups.set_mains(True))
        cut = time.monotonic() - cut_started
        found = centre.wait(
            lambda f: (
                on_battery(f) == 0
                and get(f, "erozgar_ups_last_outage_duration_seconds", device="ups") is not None
            ),
            "mains back seen",
        )
    finally:
        log = finish(centre)
    measured = get(found, "erozgar_ups_last_outage_duration_seconds", device="ups")
    print(f"cut {cut:.2f} s (test's monotonic clock), agent measured {measured} s")
    assert get(found, "erozgar_ups_outages_total", device="ups") == 1
    assert get(found, "erozgar_ups_outage_before_recharged_total", device="ups") == 0
    assert measured == pytest.approx(cut, abs=1.5)  # polls every 0.5 s
    assert get(found, "erozgar_ups_on_battery_seconds_total", device="ups") == pytest.approx(
        cut, abs=1.5
    )
    assert "lost again" not in log
    assert log.count("ups: mains power lost") == 1
    assert "the system clock jumped by +3600 s" in log


def test_modbus_self_test_is_a_self_test_not_a_cut(tmp_path: Path) -> None:
    ups = SelfTestingUps("apc-smart-ups", load_w=300.0)
    centre = run_agent(tmp_path, ups)
    state = {"device": "ups"}
    try:
        centre.wait(lambda f: on_battery(f) == 0, "on mains first")
        centre.loop.call(lambda: setattr(ups, "testing", True))
        found = centre.wait(
            lambda f: get(f, "erozgar_ups_power_state", **state, state="self_test") == 1,
            "the self-test shown",
        )
        time.sleep(2)  # a few polls into the test
        during = centre.metrics()
        centre.loop.call(lambda: setattr(ups, "testing", False))
        after = centre.wait(
            lambda f: get(f, "erozgar_ups_power_state", **state, state="online") == 1,
            "back to normal",
        )
    finally:
        log = finish(centre)
    for found in (during, after):
        assert on_battery(found) == 0
        assert get(found, "erozgar_ups_outages_total", device="ups") == 0
        assert get(found, "erozgar_ups_on_battery_seconds_total", device="ups") == 0
    assert get(during, "erozgar_ups_status", device="ups", flag="TEST") == 1
    assert get(during, "erozgar_ups_status", device="ups", flag="OB") == 1
    assert get(during, "erozgar_ups_power_state", **state, state="on_battery") == 0
    assert get(during, "erozgar_ups_selftest_result", device="ups", result="in_progress") == 1
    assert get(after, "erozgar_ups_status", device="ups", flag="TEST") == 0
    assert "mains power lost" not in log
    assert "ups: battery self-test running" in log
