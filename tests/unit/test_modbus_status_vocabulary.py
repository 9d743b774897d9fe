"""Modbus status registers in a self-test, a calibration, on bypass, off, overloaded: each reads
as the NUT word for it, and none of them as a mains cut (agent/checks/power.py judges the words)."""

from __future__ import annotations

import logging

import pytest

from agent.checks.power import PowerCheck
from collectors.modbus.decode import DecodePlan
from collectors.modbus.profile import load_profile

# (profile, {(table, address): word}, flags, power state, mains lost)
CASES = [
    # APC UPSStatus_BF b2 OnBattery + b7 SelfTest (0x84, as an SRT shows it), reg 23 InProgress
    ("apc-smart-ups", {("holding", 1): 0x0084, ("holding", 23): 0x0042},
     {"OB", "TEST"}, "self_test", False),
    # on battery with RunTimeCalibrationStatus_BF b1 InProgress
    ("apc-smart-ups", {("holding", 1): 0x0004, ("holding", 24): 0x0002},
     {"OB", "CAL"}, "calibration", False),
    ("apc-smart-ups", {("holding", 1): 0x0008}, {"BYPASS"}, "bypass", False),
    ("apc-smart-ups", {("holding", 1): 0x0010}, {"OFF"}, "off", False),
    # online, b21 Overload (bit 5 of the high word)
    ("apc-smart-ups", {("holding", 0): 0x0020, ("holding", 1): 0x0002},
     {"OL", "OVER"}, "online", False),
    ("apc-smart-ups", {("holding", 1): 0x0004}, {"OB"}, "on_battery", True),
    # Liebert: charge status 4 discharging, battery test result 4 in progress
    ("liebert-gxt", {("input", 111): 4, ("input", 129): 4}, {"OB", "TEST"}, "self_test", False),
    ("liebert-gxt", {("input", 111): 4, ("input", 129): 2}, {"OB"}, "on_battery", True),
    # SunSpec 802 ChaSt 7 testing
    ("sunspec-802-battery", {("holding", 40086): 7}, {"TEST"}, "self_test", False),
    # Socomec w0 b4 load on automatic bypass
    ("socomec-jbus", {("holding", 0x1020): 0x0010}, {"BYPASS"}, "bypass", False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("profile", "words", "flags", "state", "lost"),
    CASES,
    ids=[f"{c[0]}-{c[3]}-{i}" for i, c in enumerate(CASES)],
)
def test_status_reads_as_what_the_ups_is_doing(
    profile: str,
    words: dict[tuple[str, int], int],
    flags: set[str],
    state: str,
    lost: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    plan = load_profile(profile)
    image = {(b.table, a): 0 for b in plan.blocks for a in range(b.address, b.end)}
    image.update(words)
    reading = DecodePlan(plan).decode(image)
    assert reading.flags == flags
    check = PowerCheck("ups")
    with caplog.at_level(logging.INFO, logger="agent.checks.power"):
        check.update(DecodePlan(plan).decode(dict.fromkeys(image, 0)))  # before: nothing set
        status = check.update(reading)
    assert (status.state, status.on_battery) == (state, lost)
    assert ("mains power lost" in caplog.text) == lost
