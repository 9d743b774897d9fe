"""SNMP device profiles: which health values a device model offers, as YAML data.

    profile = select_profile("1.3.6.1.4.1.9.1.617")   -> the "cisco-ios" profile
    profile.health[0]                                   -> HealthMetric(metric="cpu_ratio", ...)
    health_samples(profile, scalars, columns)           -> (HealthSample("cpu_ratio", "", 0.28),)

A profile lives in collectors/profiles/snmp/<name>.yaml; it is chosen by the longest `match`
prefix of the device's sysObjectID, and `generic` (empty prefix) matches everything. Every
device still gets the IF-MIB interface table; a profile only adds health values.
"""

from __future__ import annotations

import fnmatch
import statistics
from collections.abc import Mapping, Sequence
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from collectors.packaged import Family, ProfileHeader, load, load_all, profile_names
from collectors.readings import HealthSample
from collectors.schema import STRICT

from .values import Oid, Value

Metric = Literal[
    "cpu_ratio",
    "memory_used_bytes",
    "memory_free_bytes",
    "memory_total_bytes",
    "memory_used_ratio",
    "temperature_celsius",
    "psu_ok",
    "fan_ok",
]
# Values whose rows are about one named part (sensor, PSU, fan) keep a label per row.
LABELLED = {"temperature_celsius", "psu_ok", "fan_ok"}
_OID = r"^[0-9]+(\.[0-9]+)+$"


class _Strict(BaseModel):
    model_config = STRICT


class HealthMetric(_Strict):
    """One health value: a scalar (`oid` ending in .0) or a table column (`table: true`)."""

    metric: Metric
    oid: Annotated[str, Field(pattern=_OID)]
    table: bool = False
    scale: float = 1.0  # raw * scale = value in the metric's unit (ratio, bytes, celsius)
    aggregate: Literal["none", "mean", "max", "sum"] = "none"  # rows -> one device value
    label: str = ""  # fixed label for a scalar (temperature sensor name)
    label_oid: Annotated[str, Field(pattern=_OID)] | None = None  # column naming each row
    label_match: str | None = None  # glob on the row's label: keep matching rows only
    ok_values: list[int] = []  # psu_ok / fan_ok: raw states that mean "working"
    not_available: list[int] = []  # raw values meaning "not present / not measured"


class SnmpProfile(ProfileHeader):
    match: list[Annotated[str, Field(pattern=r"^([0-9]+(\.[0-9]+)*)?$")]]
    health: list[HealthMetric] = Field(default_factory=list)

    def scalar_oids(self) -> list[str]:
        return [m.oid for m in self.health if not m.table]

    def columns(self) -> list[str]:
        oids = [m.oid for m in self.health if m.table]
        oids += [m.label_oid for m in self.health if m.table and m.label_oid]
        return list(dict.fromkeys(oids))


SNMP = Family("snmp", SnmpProfile, "SNMP")


def available_profiles() -> list[str]:
    return profile_names(SNMP)


def load_profile(name: str) -> SnmpProfile:
    return load(SNMP, name)


def all_profiles() -> tuple[SnmpProfile, ...]:
    return load_all(SNMP)


def prefix_length(match: Sequence[str], sys_object_id: str) -> int | None:
    """Length of the longest `match` prefix sysObjectID starts with, None when none fits.
    Prefixes end at a dot (9 is not 90); the empty prefix fits every device, with length 0."""
    oid = sys_object_id.strip(".")
    return max(
        (len(p) for p in match if not p or oid == p or oid.startswith(p + ".")), default=None
    )


def select_profile(sys_object_id: str) -> SnmpProfile:
    """The profile whose `match` prefix is the longest one that sysObjectID starts with (the
    first by name on a tie)."""
    ranked = [
        (n, p) for p in all_profiles() if (n := prefix_length(p.match, sys_object_id)) is not None
    ]
    return max(ranked, key=lambda pair: pair[0], default=(0, load_profile("generic")))[1]


def _number(value: Value | None) -> float | None:
    if isinstance(value, int) and not isinstance(value, Oid):
        return float(value)
    if isinstance(value, str) and not isinstance(value, Oid):
        try:  # some agents send gauges as DisplayString ("42")
            return float(value.strip())
        except ValueError:
            return None
    return None


def _label(value: Value | None, index: str) -> str:
    if isinstance(value, str) and not isinstance(value, Oid) and value.strip():
        return value.rstrip("\x00").strip()[:64]
    return index


def health_samples(
    profile: SnmpProfile,
    scalars: Mapping[str, Value],
    columns: Mapping[str, Mapping[str, Value]],
) -> tuple[HealthSample, ...]:
    """Raw answers -> health samples; absent or non-numeric values are simply left out."""
    samples: list[HealthSample] = []
    for metric in profile.health:
        rows: list[tuple[str, float]] = []
        if metric.table:
            labels = columns.get(metric.label_oid, {}) if metric.label_oid else {}
            for index, raw in columns.get(metric.oid, {}).items():
                label = _label(labels.get(index), index)
                if metric.label_match and not fnmatch.fnmatch(label, metric.label_match):
                    continue
                number = _number(raw)
                if number is not None:
                    rows.append((label, number))
        else:
            number = _number(scalars.get(metric.oid))
            if number is not None:
                rows.append((metric.label, number))
        rows = [(label, n) for label, n in rows if int(n) not in metric.not_available]
        if not rows:
            continue
        if metric.metric in ("psu_ok", "fan_ok"):
            samples += [
                HealthSample(metric.metric, label, float(int(n) in metric.ok_values))
                for label, n in rows
            ]
        elif metric.aggregate != "none" or metric.metric not in LABELLED:
            values = [n for _, n in rows]
            combined = {
                "mean": statistics.fmean,
                "max": max,
                "sum": sum,
                "none": lambda v: v[0],
            }[metric.aggregate](values)
            samples.append(HealthSample(metric.metric, "", combined * metric.scale))
        else:
            samples += [HealthSample(metric.metric, label, n * metric.scale) for label, n in rows]
    return _derive_memory(samples)


def _derive_memory(samples: list[HealthSample]) -> tuple[HealthSample, ...]:
    """Fill in memory total / used / ratio from whichever two of used, free, total exist."""
    have = {s.metric: s.value for s in samples if s.metric.startswith("memory_") and not s.label}
    used, free, total = (
        have.get("memory_used_bytes"),
        have.get("memory_free_bytes"),
        have.get("memory_total_bytes"),
    )
    if total is None and used is not None and free is not None:
        total = used + free
        samples.append(HealthSample("memory_total_bytes", "", total))
    if used is None and total is not None and free is not None:
        used = total - free
        samples.append(HealthSample("memory_used_bytes", "", used))
    if "memory_used_ratio" not in have and used is not None and total:
        samples.append(HealthSample("memory_used_ratio", "", used / total))
    return tuple(s for s in samples if s.metric != "memory_free_bytes")
