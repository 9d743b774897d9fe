"""Site-local profiles (config `profile_dir`): they join the packaged ones, override one of the
same name (logged once), and every problem in them is a line naming the file and the key."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest

from agent.config import ConfigError, parse_config, site_profile_problems
from collectors.modbus.profile import MODBUS, available_profiles, load_profile
from collectors.packaged import ProfileError, load_all, site_problems, use_site_dir
from collectors.snmp.profile import select_profile

APC = resources.files("collectors").joinpath("profiles", "modbus", "apc-smart-ups.yaml")
SNMP_PROFILE = """\
name: acme-os
source: ACME-MIB
match: ["1.3.6.1.4.1.99999"]
health:
  - {metric: cpu_ratio, oid: 1.3.6.1.4.1.99999.1.0, scale: 0.01}
"""


@pytest.fixture(autouse=True)
def packaged_only() -> Iterator[None]:
    yield
    use_site_dir(None)


def site_copy(site: Path, name: str, text: str | None = None) -> Path:
    """The packaged APC profile under another name in site/modbus/ (or `text` there)."""
    path = site / "modbus" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    apc = APC.read_text(encoding="utf-8").replace("name: apc-smart-ups", f"name: {name}", 1)
    path.write_text(apc if text is None else text)
    return path


def test_a_site_profile_joins_the_packaged_ones(tmp_path: Path) -> None:
    site_copy(tmp_path, "site-ups")
    assert "site-ups" not in available_profiles()
    use_site_dir(tmp_path)
    assert {"site-ups", "apc-smart-ups"} <= set(available_profiles())
    profile = load_profile("site-ups")
    assert profile.name == "site-ups"
    assert profile.blocks == load_profile("apc-smart-ups").blocks
    use_site_dir(None)
    with pytest.raises(ProfileError, match="no such Modbus profile"):
        load_profile("site-ups")


def test_a_site_profile_overrides_the_packaged_one_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    apc = APC.read_text(encoding="utf-8")
    site_copy(tmp_path, "apc-smart-ups", apc.replace("description: ", "description: site ", 1))
    use_site_dir(tmp_path)
    with caplog.at_level(logging.INFO, logger="collectors.packaged"):
        for _ in range(3):
            assert load_profile("apc-smart-ups").description.startswith("site ")
        assert [name.name for name in load_all(MODBUS)].count("apc-smart-ups") == 1
    overrides = [r.getMessage() for r in caplog.records if "overrides" in r.getMessage()]
    assert overrides == [
        f"Modbus profile apc-smart-ups: {tmp_path}/modbus/apc-smart-ups.yaml overrides the "
        "packaged one"
    ]


def test_a_site_snmp_profile_is_selected_by_its_match(tmp_path: Path) -> None:
    (tmp_path / "snmp").mkdir()
    (tmp_path / "snmp" / "acme-os.yaml").write_text(SNMP_PROFILE)
    assert select_profile("1.3.6.1.4.1.99999.7").name == "generic"
    use_site_dir(tmp_path)
    assert select_profile("1.3.6.1.4.1.99999.7").name == "acme-os"
    assert select_profile("1.3.6.1.4.1.9.1.617").name == "cisco-ios"


def test_every_problem_is_a_line_naming_the_file_and_key(tmp_path: Path) -> None:
    broken = site_copy(tmp_path, "broken")
    broken.write_text(
        broken.read_text().replace("byte_order: ABCD", "byte_order: LITTLE", 1)
        .replace("source: ", "colour: red\nsource: ", 1)
    )  # fmt: skip
    misnamed = site_copy(tmp_path, "misnamed")
    misnamed.write_text(misnamed.read_text().replace("name: misnamed", "name: other", 1))
    (tmp_path / "modbus" / "notes.yml").write_text("name: notes\n")
    assert site_problems(MODBUS, tmp_path) == [
        f"{tmp_path}/modbus/notes.yml: not read: a profile's file name ends in .yaml",
        f"{broken}: byte_order: Input should be 'ABCD', 'CDAB', 'BADC' or 'DCBA'",
        f"{broken}: colour: Extra inputs are not permitted",
        f"{misnamed}: name: says 'other', expected 'misnamed'",
    ]


def test_the_config_refuses_a_broken_site_profile_and_an_unknown_folder(tmp_path: Path) -> None:
    site_copy(tmp_path, "broken", "name: broken\nsource: s\nrole: ups\nblocks: []\n")
    (tmp_path / "snmp_ups").mkdir()
    data = {"site": {"id": "X-1"}, "profile_dir": str(tmp_path)}
    with pytest.raises(ConfigError) as caught:
        parse_config(data, "agent.yml")
    assert caught.value.problems == site_profile_problems(str(tmp_path))
    assert caught.value.problems == [
        f"{tmp_path}/snmp_ups: not read: profiles go in modbus/, snmp/, snmp-ups/",
        f"{tmp_path}/modbus/broken.yaml: blocks: Tuple should have at least 1 item after "
        "validation, not 0",
    ]


def test_a_modbus_device_may_name_a_profile_of_the_configs_profile_dir(tmp_path: Path) -> None:
    site_copy(tmp_path, "site-ups")
    device = {"name": "u", "address": "10.0.0.9", "profile": "site-ups"}
    config = parse_config({"site": {"id": "X-1"}, "profile_dir": str(tmp_path), "modbus": [device]})
    assert config.modbus[0].profile == "site-ups"
    with pytest.raises(ConfigError, match=r"modbus\[0\]\.profile: unknown profile 'site-ups'"):
        parse_config({"site": {"id": "X-1"}, "modbus": [device]})
