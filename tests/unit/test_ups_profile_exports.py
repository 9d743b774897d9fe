"""Every value a packaged UPS profile decodes is exported, or the profile says why it is not.

A profile that reads a register nobody sees is either a metric waiting to be added or a reason
waiting to be written down; this test makes the choice explicit for each one.
"""

from __future__ import annotations

import pytest

from collectors.modbus.profile import available_profiles as modbus_profiles
from collectors.modbus.profile import load_profile as load_modbus
from collectors.snmp.ups import available_profiles as snmp_profiles
from collectors.snmp.ups import load_profile as load_snmp
from exporters.power import EXPORTED_INFO, UPS_VALUES


def decoded(kind: str, name: str) -> tuple[set[str], dict[str, str]]:
    """(names the profile decodes, its not_exported reasons)."""
    if kind == "modbus":
        profile = load_modbus(name)
        return {f.name for f in profile.fields} | set(profile.info), dict(profile.not_exported)
    ups = load_snmp(name)
    return set(ups.values) | set(ups.info), dict(ups.not_exported)


# Generator controllers have their own families (tests/unit/test_genset.py holds them alike).
# Inverter profiles speak the inverter vocabulary, which their profile check holds them to.
CASES = [("modbus", n) for n in modbus_profiles() if load_modbus(n).role == "ups"] + [
    ("snmp-ups", n) for n in snmp_profiles()
]


def test_every_packaged_profile_is_covered() -> None:
    assert len([c for c in CASES if c[0] == "modbus"]) >= 5
    assert len([c for c in CASES if c[0] == "snmp-ups"]) >= 2


@pytest.mark.parametrize(("kind", "name"), CASES, ids=[f"{k}/{n}" for k, n in CASES])
def test_decoded_values_are_exported_or_listed_with_a_reason(kind: str, name: str) -> None:
    names, not_exported = decoded(kind, name)
    exported = set(UPS_VALUES) | EXPORTED_INFO
    silent = sorted(names - exported - set(not_exported))
    assert not silent, f"{kind}/{name}: decoded but neither exported nor in not_exported: {silent}"
    both = sorted(set(not_exported) & exported)
    assert not both, f"{kind}/{name}: listed as not exported but exported: {both}"
    stale = sorted(set(not_exported) - names)
    assert not stale, f"{kind}/{name}: not_exported names what it does not decode: {stale}"
    assert all(len(why.split()) >= 3 for why in not_exported.values()), "give the reason"
