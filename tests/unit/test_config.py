"""Config errors: one line per problem, naming the key; secrets from the environment."""

import pytest

from agent.config import ConfigError, load_config

GOOD = """
site: {id: ISB-001, name: "e-Rozgar Center Islamabad"}
listen: "127.0.0.1:9877"
snmp:
  - name: core-router
    address: 192.168.1.1
    community: ${TEST_SNMP_COMMUNITY}
    interfaces:
      - {name: ether1, role: wan, capacity_down_mbps: 100, capacity_up_mbps: 20}
modbus:
  - name: ups-rack
    address: "192.168.1.50:1502"
    unit: 1
    profile: apc-smart-ups
"""


def problems(tmp_path, text: str) -> list[str]:
    path = tmp_path / "agent.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return [p.removeprefix(f"{path}: ") for p in caught.value.problems]


def test_good_config_loads_and_expands_env(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_SNMP_COMMUNITY", "s3cret")
    path = tmp_path / "agent.yml"
    path.write_text(GOOD)
    config = load_config(path)
    router = config.snmp[0]
    assert router.host_port == ("192.168.1.1", 161)
    assert router.community.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(config)
    assert config.modbus[0].host_port == ("192.168.1.50", 1502)
    assert router.interfaces[0].capacity_down_mbps == 100


def test_unset_env_variable_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("TEST_SNMP_COMMUNITY", raising=False)
    assert problems(tmp_path, GOOD) == [
        "snmp[0].community: environment variable TEST_SNMP_COMMUNITY is not set"
    ]


def test_every_problem_is_one_line_naming_its_key(tmp_path):
    text = """
site: {id: ISB-001}
snmp:
  - name: core-router
    address: "10.0.0.1:99999"
    community: x
    intervall: 15
  - name: core-router
    address: "bad host!"
    community: x
    timeout: fast
modbus:
  - name: ups
    address: 10.0.0.9
    profile: no-such-ups
"""
    found = problems(tmp_path, text)
    assert (
        "snmp[0].address: '10.0.0.1:99999' has port '99999'; use a number from 1 to 65535" in found
    )
    assert any(p.startswith("snmp[0].intervall: unknown key") for p in found)
    assert "snmp[1].address: 'bad host!' is neither an IP address nor a host name" in found
    assert any(p.startswith("snmp[1].timeout: ") for p in found)
    assert any(p.startswith("modbus[0].profile: unknown profile 'no-such-ups'") for p in found)
    assert all("\n" not in p for p in found)


def test_duplicate_device_names(tmp_path):
    text = """
site: {id: ISB-001}
snmp:
  - {name: dev1, address: 10.0.0.1, community: x}
modbus:
  - {name: dev1, address: 10.0.0.2}
"""
    assert problems(tmp_path, text) == [
        "modbus[0].name: device name 'dev1' is used by snmp[0].name"
    ]


def test_missing_site_and_yaml_syntax(tmp_path):
    assert problems(tmp_path, "snmp: []\n") == ["site: required key is missing"]
    assert problems(tmp_path, "site: {id: [\n")[0].startswith("YAML syntax error at line")
    assert problems(tmp_path, "- a\n- b\n") == [
        "the top level must be a mapping with site:, snmp:, modbus:"
    ]


def test_shipped_example_config_is_valid(monkeypatch):
    from pathlib import Path

    monkeypatch.setenv("SNMP_COMMUNITY", "example")
    example = Path(__file__).parents[2] / "deploy" / "config.example.yml"
    config = load_config(example)
    assert [d.name for d in config.snmp] == ["core-router", "sw-floor1"]
    assert config.modbus[0].profile == "apc-smart-ups"
