"""Power judgement from a UPS reading: flags NUT derives, transitions logged once."""

import logging

import pytest

from agent.checks.power import PowerCheck
from collectors.readings import UpsReading
from exporters.families import Families
from exporters.power import ups_families

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
    with caplog.at_level(logging.INFO, logger="agent.checks.power"):
        check.update(ups({"OL"}))
        check.update(ups({"OB"}, 90))
        check.update(ups({"OB"}, 85))
        check.update(ups({"OL"}, 84))
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "ups-rack: mains power lost, UPS on battery (charge 90%, runtime 30 min)",
        "ups-rack: mains power back, UPS on line (charge 84%, runtime 30 min)",
    ]


def test_self_test_on_battery_is_not_a_mains_loss(caplog):
    """APC shows OB TEST while it tests its battery; mains never went away."""
    check = PowerCheck("ups-rack")
    with caplog.at_level(logging.INFO, logger="agent.checks.power"):
        check.update(ups({"OL"}))
        status = check.update(ups({"OB", "TEST"}, 99))
        check.update(ups({"OL"}, 98))
    assert not status.on_battery
    assert status.state == "self_test"
    assert status.flags["TEST"] == 1 and status.flags["OB"] == 1
    messages = [r.getMessage() for r in caplog.records]
    assert not any("mains power lost" in m for m in messages), messages
    assert messages == [
        "ups-rack: battery self-test running (the UPS carries the load on its battery)",
        "ups-rack: back to normal operation on mains",
    ]


def test_every_state_is_shown_as_what_it_is():
    cases = [
        ({"OL"}, "online", False),
        ({"OB"}, "on_battery", True),
        ({"OB", "TEST"}, "self_test", False),
        ({"OL", "TEST"}, "self_test", False),
        ({"OB", "CAL"}, "calibration", False),
        ({"OL", "BYPASS"}, "bypass", False),
        ({"BYPASS"}, "bypass", False),
        ({"OFF"}, "off", False),
        ({"OB", "OFF"}, "off", True),  # output off in a cut: mains is still lost
        ({"OL", "OVER"}, "online", False),  # overload is a flag beside the state
        (set(), "unknown", False),
    ]
    for flags, state, on_battery in cases:
        status = PowerCheck("ups").update(ups(flags))
        assert (status.state, status.on_battery) == (state, on_battery), flags
    assert PowerCheck("ups").update(ups({"OL", "OVER"})).flags["OVER"] == 1


def test_test_and_calibration_flags_export_zero_when_known():
    reading = UpsReading(
        values={"battery.charge": 100.0},
        info={},
        flags=frozenset({"OL"}),
        known_flags=KNOWN | {"TEST", "CAL"},
    )
    status = PowerCheck("ups").update(reading)
    assert status.flags["TEST"] == 0 and status.flags["CAL"] == 0


def test_exported_state_is_one_hot_and_values_are_in_base_units():
    reading = UpsReading(
        values={"input.frequency": 49.9, "ups.efficiency": 95.0, "battery.health": 87.0,
                "ups.realpower": 420.0, "battery.current": -1.5},
        info={},
        flags=frozenset({"OB", "TEST"}),
        known_flags=KNOWN | {"TEST", "CAL"},
    )  # fmt: skip
    out = Families()
    ups_families(out, "ups", PowerCheck("ups").update(reading))
    found = {(s.name, s.labels.get("state")): s.value for f in out for s in f.samples}
    assert [state for (name, state), v in found.items() if name.endswith("state") and v] == [
        "self_test"
    ]
    assert sum(v for (name, _), v in found.items() if name == "erozgar_ups_power_state") == 1
    assert found[("erozgar_ups_on_battery", None)] == 0
    assert found[("erozgar_ups_input_frequency_hertz", None)] == 49.9
    assert found[("erozgar_ups_efficiency_ratio", None)] == pytest.approx(0.95)
    assert found[("erozgar_ups_battery_reported_health_ratio", None)] == pytest.approx(0.87)
    assert found[("erozgar_ups_output_power_watts", None)] == 420.0
    assert found[("erozgar_ups_battery_current_amperes", None)] == -1.5
