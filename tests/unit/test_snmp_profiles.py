"""SNMP device profiles: selection by sysObjectID, loading errors, health value maths."""

from __future__ import annotations

import pytest

from collectors.packaged import ProfileError
from collectors.readings import HealthSample
from collectors.snmp.profile import (
    SnmpProfile,
    available_profiles,
    health_samples,
    load_profile,
    prefix_length,
    select_profile,
)
from collectors.snmp.values import Oid


def test_every_shipped_profile_loads_and_names_itself() -> None:
    names = available_profiles()
    assert {"generic", "mikrotik-routeros", "cisco-ios", "huawei-vrp", "juniper-junos",
            "ubiquiti-airos", "h3c-comware"} <= set(names)  # fmt: skip
    for name in names:
        assert load_profile(name).name == name


@pytest.mark.parametrize("name", ["nope", "../snmp-ups/apc-powernet"])
def test_an_unknown_profile_lists_the_shipped_ones(name: str) -> None:
    with pytest.raises(ProfileError, match=r"yaml: no such SNMP profile \(available: .*cisco"):
        load_profile(name)


@pytest.mark.parametrize(
    ("sys_object_id", "profile"),
    [
        ("1.3.6.1.4.1.14988.1", "mikrotik-routeros"),
        ("1.3.6.1.4.1.9.1.617", "cisco-ios"),
        ("1.3.6.1.4.1.90.1", "generic"),  # 90 is not 9: prefixes end at a dot
        ("1.3.6.1.4.1.2011.2.23.276", "huawei-vrp"),
        ("1.3.6.1.4.1.2636.1.1.1.2.21", "juniper-junos"),
        ("", "generic"),
    ],
)
def test_longest_matching_prefix_wins(sys_object_id: str, profile: str) -> None:
    assert select_profile(sys_object_id).name == profile


def test_prefix_length_counts_whole_arcs_and_the_empty_prefix_fits_all() -> None:
    match = ["", "1.3.6.1.4.1.9", "1.3.6.1.4.1.9.1"]
    assert prefix_length(match, ".1.3.6.1.4.1.9.1.617") == len("1.3.6.1.4.1.9.1")
    assert prefix_length(match, "1.3.6.1.4.1.9") == len("1.3.6.1.4.1.9")
    assert prefix_length(match, "1.3.6.1.4.1.90.1") == 0
    assert prefix_length(match[1:], "1.3.6.1.4.1.90.1") is None


def profile(*health: dict[str, object]) -> SnmpProfile:
    return SnmpProfile.model_validate(
        {"name": "t", "source": "a test", "match": ["1.3"], "health": list(health)}
    )


def test_unknown_key_is_refused() -> None:
    with pytest.raises(ValueError, match="extra"):
        profile({"metric": "cpu_ratio", "oid": "1.3.6", "scle": 2})


def test_table_mean_and_labelled_rows_with_skips() -> None:
    p = profile(
        {"metric": "cpu_ratio", "oid": "1.1", "table": True, "aggregate": "mean", "scale": 0.01},
        {"metric": "temperature_celsius", "oid": "1.2", "table": True, "label_oid": "1.3",
         "not_available": [0]},
        {"metric": "fan_ok", "oid": "1.4", "table": True, "ok_values": [1], "not_available": [5]},
    )  # fmt: skip
    columns = {
        "1.1": {"1": 20, "2": 40},
        "1.2": {"7": 41, "8": 0, "9": "oops"},
        "1.3": {"7": "Board 0\x00", "8": "Board 1"},
        "1.4": {"1": 1, "2": 3, "3": 5},
    }
    assert health_samples(p, {}, columns) == (
        HealthSample("cpu_ratio", "", pytest.approx(0.3)),
        HealthSample("temperature_celsius", "Board 0", 41.0),
        HealthSample("fan_ok", "1", 1.0),
        HealthSample("fan_ok", "2", 0.0),
    )


def test_memory_total_and_ratio_are_derived_from_used_and_free() -> None:
    p = profile(
        {"metric": "memory_used_bytes", "oid": "1.1", "table": True, "aggregate": "sum"},
        {"metric": "memory_free_bytes", "oid": "1.2", "table": True, "aggregate": "sum"},
    )
    samples = {s.metric: s.value for s in health_samples(p, {}, {"1.1": {"1": 30, "2": 10},
                                                                   "1.2": {"1": 60}})}  # fmt: skip
    assert samples == {"memory_used_bytes": 40, "memory_total_bytes": 100,
                       "memory_used_ratio": 0.4}  # fmt: skip


def test_odd_values_are_left_out_not_fatal() -> None:
    p = profile(
        {"metric": "temperature_celsius", "oid": "1.1.0", "label": "board", "scale": 0.1},
        {"metric": "cpu_ratio", "oid": "1.2.0", "scale": 0.01},
    )
    assert health_samples(p, {"1.1.0": Oid("1.3.6"), "1.2.0": "12"}, {}) == (
        HealthSample("cpu_ratio", "", 0.12),
    )
