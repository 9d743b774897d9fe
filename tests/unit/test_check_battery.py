"""The `check` battery step names what the UPS is doing, not only mains or battery."""

import pytest

from agent.commission.steps import battery_step
from collectors.readings import UpsReading

VALUES = {"battery.charge": 96.0, "battery.runtime": 1800.0}


def ups(*flags: str) -> UpsReading:
    return UpsReading(VALUES, {}, frozenset(flags), frozenset({"OL", "OB", "LB", "RB"}))


@pytest.mark.parametrize(
    ("flags", "result", "detail"),
    [
        (("OL",), "PASS", "on mains; charge 96%, runtime 30 min"),
        (("OB",), "WARN", "on battery now; charge 96%, runtime 30 min"),
        (("OB", "TEST"), "WARN", "battery self-test running; charge 96%, runtime 30 min"),
        (("OB", "CAL"), "WARN", "runtime calibration running; charge 96%, runtime 30 min"),
        (("OL", "BYPASS"), "WARN", "on bypass: the load runs on raw mains, unprotected; "
         "charge 96%, runtime 30 min"),
        (("OFF",), "FAIL", "UPS output is off: the load has no power from it; "
         "charge 96%, runtime 30 min"),
    ],
)  # fmt: skip
def test_battery_step_says_what_the_ups_is_doing(flags, result, detail):
    step = battery_step("ups-rack", ups(*flags))
    assert (step.status, step.detail) == (result, detail)
    assert step.hint or result == "PASS"
