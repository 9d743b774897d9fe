"""UPS profiles without a network: detection order and the value rules, on raw answers."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent.checks.power import PowerCheck, UpsStatus
from collectors.snmp.ups import FlagSource, UpsProfile, candidates, load_profile, ups_reading
from collectors.snmp.values import Counter64, Oid

APC = "1.3.6.1.4.1.318.1.1.1."


def test_apc_prefers_high_precision_and_falls_back_to_integer_objects() -> None:
    profile = load_profile("apc-powernet")
    reading = ups_reading(
        profile,
        {
            APC + "2.3.1.0": 874,  # upsHighPrecBatteryCapacity, 0.1 %
            APC + "2.2.1.0": 87,  # upsAdvBatteryCapacity: ignored, the precise one answered
            APC + "2.2.3.0": 180000,  # upsAdvBatteryRunTimeRemaining, TimeTicks: 30 min
            APC + "4.2.3.0": 41,  # upsAdvOutputLoad (no high-precision load on this card)
            APC + "4.1.1.0": 3,  # upsBasicOutputStatus onBattery
            APC + "2.1.1.0": 3,  # upsBasicBatteryStatus batteryLow
            APC + "2.2.4.0": 2,  # upsAdvBatteryReplaceIndicator batteryNeedsReplacing
            APC + "1.1.1.0": "Smart-UPS 1500",
            APC + "1.2.3.0": "AS1234567890",
        },
        {},
    )
    assert reading.values == {"battery.charge": 87.4, "battery.runtime": 1800.0, "ups.load": 41.0}
    assert reading.flags == {"OB", "LB", "RB"}
    assert reading.info["device.mfr"] == "APC"
    assert reading.info["device.serial"] == "AS1234567890"
    assert reading.invalid == ()


def test_sentinels_odd_types_and_unknown_enums_are_invalid_not_values() -> None:
    profile = load_profile("ietf-ups-mib")
    mib = "1.3.6.1.2.1.33.1."
    reading = ups_reading(
        profile,
        {
            mib + "2.4.0": -1,  # charge: the "unknown" many cards send
            mib + "2.3.0": Counter64(5),  # runtime: a Counter64 is not a gauge
            mib + "2.7.0": -1,  # temperature: listed sentinel
            mib + "2.5.0": "532",  # voltage as text: wrong type
            mib + "4.1.0": 9,  # upsOutputSource has no state 9
            mib + "1.2.0": Oid("1.3.6"),  # model as an OID
        },
        {mib + "4.4.1.5": {"1": 30, "2": 250}},  # the most loaded line at 250 %: implausible
    )
    assert "battery.charge" not in reading.values
    assert set(reading.invalid) >= {
        "battery.charge", "battery.runtime", "battery.temperature", "battery.voltage",
        "ups.status", "device.model", "ups.load",
    }  # fmt: skip
    assert reading.flags == frozenset()


def test_three_phase_load_is_the_most_loaded_line() -> None:
    reading = ups_reading(
        load_profile("ietf-ups-mib"), {}, {"1.3.6.1.2.1.33.1.4.4.1.5": {"3": 12, "1": 21, "2": 16}}
    )
    assert reading.values == {"ups.load": 21.0}


def test_router_profiles_are_not_probed_but_generic_and_apc_ids_are() -> None:
    assert candidates("1.3.6.1.4.1.14988.1") == []  # MikroTik: a router, no extra request
    assert [p.name for p in candidates("1.3.6.1.4.1.8072.3.2.10")] == ["ietf-ups-mib"]
    assert [p.name for p in candidates("1.3.6.1.4.1.318.1.3.2.12")] == [
        "apc-powernet", "ietf-ups-mib",
    ]  # fmt: skip


def judged(profile: str, scalars: dict) -> tuple[frozenset[str], UpsStatus]:
    reading = ups_reading(load_profile(profile), scalars, {})
    return reading.flags, PowerCheck("ups").update(reading)


def test_apc_battery_test_and_calibration_are_not_mains_cuts() -> None:
    flags, status = judged("apc-powernet", {APC + "4.1.1.0": 15, APC + "7.2.3.0": 4})
    assert flags == {"OB", "TEST"}  # upsBasicOutputStatus onBatteryTest, diagnostics running
    assert (status.on_battery, status.state) == (False, "self_test")
    flags, status = judged("apc-powernet", {APC + "4.1.1.0": 3, APC + "7.2.6.0": 3})
    assert flags == {"OB", "CAL"}  # on battery, upsAdvTestCalibrationResults in progress
    assert (status.on_battery, status.state) == (False, "calibration")
    for code, state in ((6, "bypass"), (10, "bypass"), (7, "off"), (28, "self_test")):
        assert judged("apc-powernet", {APC + "4.1.1.0": code})[1].state == state, code
    flags, status = judged("apc-powernet", {APC + "4.1.1.0": 3, APC + "7.2.3.0": 1})
    assert (flags, status.on_battery, status.state) == ({"OB"}, True, "on_battery")


def test_ups_mib_battery_source_during_a_test_is_a_self_test() -> None:
    mib = "1.3.6.1.2.1.33.1."
    flags, status = judged("ietf-ups-mib", {mib + "4.1.0": 5, mib + "7.3.0": 5})
    assert flags == {"OB", "TEST"}  # upsOutputSource battery, upsTestResultsSummary inProgress
    assert (status.on_battery, status.state) == (False, "self_test")
    flags, status = judged("ietf-ups-mib", {mib + "4.1.0": 5, mib + "7.3.0": 1})
    assert (status.on_battery, status.state) == (True, "on_battery")
    assert judged("ietf-ups-mib", {mib + "4.1.0": 4})[1].state == "bypass"
    assert judged("ietf-ups-mib", {mib + "4.1.0": 2})[1].state == "off"


def test_a_flag_outside_the_nut_vocabulary_is_refused() -> None:
    with pytest.raises(ValidationError):
        FlagSource.model_validate({"field": "x", "oid": "1.3.6.1", "map": {1: ["ONBATT"]}})


@pytest.mark.parametrize("name", ["apc-powernet", "ietf-ups-mib"])
def test_ups_profiles_declare_their_role(name: str) -> None:
    assert load_profile(name).role == "ups"


def test_a_role_without_a_ups_reading_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"router is not read by this kind of profile yet"):
        UpsProfile.model_validate({"name": "x", "role": "router", "source": "s", "probe": "1.3"})
