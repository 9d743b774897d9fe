"""UPS over SNMP: RFC 1628 UPS-MIB and APC PowerNet-MIB, mapped to NUT names by YAML profiles.

    profile = await detect_ups(client, "1.3.6.1.4.1.8072.3.2.10")  -> the "ietf-ups-mib" profile
    reading = await read_ups(client, profile)
    reading.values  -> {"battery.charge": 100.0, "battery.runtime": 65520.0, ...}
    reading.flags   -> frozenset({"OL"})

A profile lives in collectors/profiles/snmp-ups/<name>.yaml. Detection: the profiles whose
`match` prefix fits the sysObjectID (longest first), then those without one, are tried in turn;
the first whose `probe` OID answers is the device's. APC PDUs share APC's sysObjectID prefix
but have no upsBasicIdentModel, and many UPS cards report a generic sysObjectID, so the answer
to the probe decides, not the prefix alone.

Each quantity lists its sources in order of preference (the high-precision object first); the
first usable one wins. A value that is the wrong type, a listed `not_available` sentinel (-1)
or out of its `valid` range is never a value: its name goes to UpsReading.invalid, unless a later
source gives it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, Field

from collectors.modbus.profile import StatusToken
from collectors.packaged import Family, ProfileHeader, load, load_all, profile_names
from collectors.readings import PollError, Role, UpsReading, role_read_as
from collectors.schema import STRICT

from .client import SnmpClient
from .profile import prefix_length, select_profile
from .values import Counter64, Oid, Value

_OID = r"^[0-9]+(\.[0-9]+)+$"


class _Strict(BaseModel):
    model_config = STRICT


_T = TypeVar("_T")


class Source(_Strict):
    """One OID that gives a quantity: a scalar, or a table column (`table: true`)."""

    oid: Annotated[str, Field(pattern=_OID)]
    table: bool = False
    aggregate: Literal["first", "max"] = "first"  # rows -> one value (first: lowest index)
    scale: float = 1.0  # raw * scale = value in NUT's unit (percent, seconds, volts, ...)
    not_available: list[int] = []  # raw values the device sends for "not available"
    valid: tuple[float, float] | None = None  # plausible value after scaling, inclusive
    map: dict[int, str] = {}  # info only: an enumeration's raw value -> NUT's words


class FlagSource(_Strict):
    """An enumeration that sets NUT status tokens; `field` names it in UpsReading.invalid.

    Tokens are the one NUT vocabulary every path speaks (the Modbus profiles' StatusToken), so
    a self-test is TEST and a calibration CAL here as there, never a mains cut."""

    field: str
    oid: Annotated[str, Field(pattern=_OID)]
    map: dict[int, list[StatusToken]]  # raw state -> tokens ([]: a known state that sets none)


class UpsProfile(ProfileHeader):
    role: Annotated[Role, AfterValidator(lambda role: role_read_as(role, UpsReading))]
    match: list[Annotated[str, Field(pattern=_OID)]] = Field(default_factory=list)
    probe: Annotated[str, Field(pattern=_OID)]  # answers on a device this profile fits
    manufacturer: str = ""  # device.mfr when no info source gives one
    values: dict[str, list[Source]] = Field(default_factory=dict)
    info: dict[str, list[Source]] = Field(default_factory=dict)
    flags: list[FlagSource] = Field(default_factory=list)
    # Quantities read but deliberately not exported, each with the reason.
    not_exported: dict[str, str] = Field(default_factory=dict)

    def known_flags(self) -> frozenset[str]:
        return frozenset(t for f in self.flags for tokens in f.map.values() for t in tokens)

    def scalar_oids(self) -> list[str]:
        sources = [s for group in (self.values, self.info) for ss in group.values() for s in ss]
        oids = [s.oid for s in sources if not s.table] + [f.oid for f in self.flags]
        return list(dict.fromkeys(oids))

    def columns(self) -> list[str]:
        sources = [s for group in (self.values, self.info) for ss in group.values() for s in ss]
        return list(dict.fromkeys(s.oid for s in sources if s.table))


SNMP_UPS = Family("snmp-ups", UpsProfile, "SNMP UPS")


def available_profiles() -> list[str]:
    return profile_names(SNMP_UPS)


def load_profile(name: str) -> UpsProfile:
    return load(SNMP_UPS, name)


def all_profiles() -> tuple[UpsProfile, ...]:
    return load_all(SNMP_UPS)


def candidates(sys_object_id: str) -> list[UpsProfile]:
    """Profiles to probe, most specific first; empty when a router profile claims the device.

    A sysObjectID that a router or switch profile (collectors/profiles/snmp/) names is a
    router: it is not probed, so a router's poll costs no extra request.
    """
    # A profile without `match` is a candidate for any device, after those that name it.
    ranked = [
        (n, p)
        for p in all_profiles()
        if (n := prefix_length(p.match or [""], sys_object_id)) is not None
    ]
    if not any(n for n, _ in ranked) and select_profile(sys_object_id).name != "generic":
        return []
    return [p for _, p in sorted(ranked, key=lambda pair: (-pair[0], pair[1].name))]


async def detect_ups(client: SnmpClient, sys_object_id: str) -> UpsProfile | None:
    """The UPS profile of this device, or None when it is not a UPS (one GET for all probes)."""
    profiles = candidates(sys_object_id)
    if not profiles:
        return None
    try:
        answer = await client.get(list(dict.fromkeys(p.probe for p in profiles)))
    except PollError as exc:
        if exc.reason != "protocol":  # SNMPv1 answers a missing OID with noSuchName
            raise
        answer = await _probe_one_by_one(client, profiles)
    for profile in profiles:
        if profile.probe in answer:
            return profile
    return None


async def _probe_one_by_one(client: SnmpClient, profiles: list[UpsProfile]) -> dict[str, Value]:
    found: dict[str, Value] = {}
    for profile in profiles:
        try:
            found |= await client.get([profile.probe])
        except PollError as exc:
            if exc.reason != "protocol":
                raise
    return found


async def read_ups(client: SnmpClient, profile: UpsProfile) -> UpsReading:
    """One GET of the profile's scalars and a walk of its table columns."""
    requests = client.requests
    scalars = await client.get(profile.scalar_oids())
    columns = await client.walk_columns(profile.columns()) if profile.columns() else {}
    reading = ups_reading(profile, scalars, columns)
    return UpsReading(
        values=reading.values,
        info=reading.info,
        flags=reading.flags,
        known_flags=reading.known_flags,
        invalid=reading.invalid,
        requests=client.requests - requests,
    )


def ups_reading(
    profile: UpsProfile,
    scalars: Mapping[str, Value],
    columns: Mapping[str, Mapping[str, Value]],
) -> UpsReading:
    """Raw answers -> a UpsReading in NUT's vocabulary."""
    invalid: list[str] = []

    def raw(source: Source) -> Value | None:
        if not source.table:
            return scalars.get(source.oid)
        rows = columns.get(source.oid, {})
        if not rows:
            return None
        ordered = [rows[k] for k in sorted(rows, key=_row_key)]
        if source.aggregate == "max" and all(_integer(v) is not None for v in ordered):
            return max(ordered, key=lambda v: _integer(v) or 0)
        return ordered[0]

    def first_usable(
        name: str, sources: Sequence[Source], convert: Callable[[Source, Value], _T | None]
    ) -> _T | None:
        """The first source (most precise first) that answered something usable; a quantity
        that answered only unusable values is invalid, one that never answered is absent."""
        answered = False
        for source in sources:
            value = raw(source)
            if value is None:
                continue
            answered = True
            converted = convert(source, value)
            if converted is not None:
                return converted
        if answered:
            invalid.append(name)
        return None

    values: dict[str, float] = {}
    for name, sources in profile.values.items():
        number = first_usable(name, sources, _number)
        if number is not None:
            values[name] = number
    info: dict[str, str] = {}
    for name, sources in profile.info.items():
        words = first_usable(name, sources, _text)
        if words:  # an empty string is a valid "not set" answer, not a value
            info[name] = words
    if profile.manufacturer and "device.mfr" not in info:
        info["device.mfr"] = profile.manufacturer

    flags: set[str] = set()
    for flag in profile.flags:
        state = _integer(scalars.get(flag.oid))
        if state is not None and state in flag.map:
            flags.update(flag.map[state])
        elif flag.oid in scalars:
            invalid.append(flag.field)
    return UpsReading(
        values=values,
        info=info,
        flags=frozenset(flags),
        known_flags=profile.known_flags(),
        invalid=tuple(invalid),
    )


def _row_key(index: str) -> tuple[int, ...]:
    return tuple(int(part) for part in index.split(".") if part.isdigit())


def _integer(value: Value | None) -> int | None:
    """An INTEGER / Gauge32 / TimeTicks; None for strings, OIDs, bytes and Counter64."""
    if isinstance(value, int) and not isinstance(value, Counter64 | bool):
        return value
    return None


def _number(source: Source, value: Value) -> float | None:
    raw = _integer(value)
    if raw is None or raw in source.not_available:
        return None
    number = raw * source.scale
    if source.valid is not None and not source.valid[0] <= number <= source.valid[1]:
        return None
    return round(number, 6)  # 2131 * 0.1 is 213.10000000000002


def _text(source: Source, value: Value) -> str | None:
    """Identity text ("" when the device left it blank), an enumeration's words, or None."""
    if source.map:
        state = _integer(value)
        return source.map.get(state) if state is not None else None
    if isinstance(value, str) and not isinstance(value, Oid):
        return value.replace("\x00", "").strip()[:128]
    return None
