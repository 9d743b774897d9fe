"""The kind registry is the one list of device kinds: each config list of devices has its kind."""

from __future__ import annotations

from agent.config import parse_config
from agent.kinds import KINDS, configured, kind_of


def test_every_device_list_of_the_config_has_its_kind() -> None:
    config = parse_config({"site": {"id": "S"}})
    lists = {key: devices for key, devices in config.device_lists}
    assert set(lists) == set(KINDS)
    for key in lists:
        field = type(config).model_fields[key].annotation
        assert field == list[KINDS[key].config], key


def test_configured_lists_devices_kind_by_kind() -> None:
    config = parse_config(
        {
            "site": {"id": "S"},
            "nut": [{"name": "ups-usb", "address": "127.0.0.1", "ups": "ups"}],
            "snmp": [{"name": "core", "address": "10.0.0.1", "community": "x"}],
        }
    )
    devices = configured(config)
    assert [d.name for d in devices] == ["core", "ups-usb"]
    assert [kind_of(d).name for d in devices] == ["snmp", "nut"]
