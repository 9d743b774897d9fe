"""Power judgement from a UPS reading: flags NUT derives, transitions logged once."""

import logging

from agent.power import PowerCheck
from collectors.readings import UpsReading

KNOWN = frozenset({"OL", "OB", "LB", "RB", "BYPASS", "OVER", "OFF", "TRIM", "BOOST"})


def ups(flags: set[str], charge: float = 100.0) -> UpsReading:
    return UpsReading(
        values={"battery.charge": charge, "battery.runtime": 1800.0},
        info={"device.model": "Smart-UPS 1500"},
        flags=frozenset(flags),
        known_flags=KNOWN,
    )


def test_on_battery_sets_discharging_and_every_known_flag_is_exported():
    status = PowerCheck("ups").update(ups({"OB"}, charge=80))
    assert status.on_battery
    assert status.flags["OB"] == 1 and status.flags["DISCHRG"] == 1
    assert status.flags["OL"] == 0 and status.flags["CHRG"] == 0 and status.flags["LB"] == 0


def test_on_mains_below_full_is_charging():
    status = PowerCheck("ups").update(ups({"OL"}, charge=70))
    assert not status.on_battery
    assert status.flags["CHRG"] == 1 and status.flags["DISCHRG"] == 0


def test_mains_loss_and_return_are_logged_once(caplog):
    check = PowerCheck("ups-rack")
    with caplog.at_level(logging.INFO, logger="agent.power"):
        check.update(ups({"OL"}))
        check.update(ups({"OB"}, 90))
        check.update(ups({"OB"}, 85))
        check.update(ups({"OL"}, 84))
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "ups-rack: mains power lost, UPS on battery (charge 90%, runtime 30 min)",
        "ups-rack: mains power back, UPS on line (charge 84%, runtime 30 min)",
    ]
