"""Config errors: one line per problem, naming the key; secrets from the environment."""

import pytest

from agent.config import ConfigError, load_config, parse_config

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


def test_a_value_with_a_newline_stays_on_one_line():
    # found by the config fuzzer (bench/fuzz.sh): the quoted value carried its newline along
    with pytest.raises(ConfigError) as caught:
        parse_config({"site": {"id": "X-1"}, "modbus": [{"name": "u", "address": "0\n0"}]}, "f")
    assert caught.value.problems == [
        r"f: modbus[0].address: '0\n0' is neither an IP address nor a host name"
    ]


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


def snmp_problems(**device: object) -> list[str]:
    snmp = {"name": "r", "address": "127.0.0.1", **device}
    try:
        parse_config({"site": {"id": "t"}, "snmp": [snmp]})
    except ConfigError as exc:
        return exc.problems
    return []


def test_snmp_v3_keys_are_checked_one_line_each_without_secrets():
    v3 = {
        "version": "3",
        "user": "mon",
        "auth_protocol": "SHA-256",
        "auth_password": "authpass123",
        "priv_protocol": "AES",
        "priv_password": "privpass123",
    }
    assert snmp_problems(**v3) == []
    assert snmp_problems(version="3") == ['config: snmp[0].user: required for version "3"']
    short = snmp_problems(**{**v3, "auth_password": "short7!"})
    assert short == [
        "config: snmp[0].auth_password: must be at least 8 characters (RFC 3414 passphrase minimum)"
    ]
    assert "short7!" not in short[0]
    assert snmp_problems(**{**v3, "auth_protocol": None, "auth_password": None}) == [
        "config: snmp[0].auth_protocol: required with priv_protocol (authPriv)"
    ]
    assert snmp_problems(**{**v3, "priv_password": None}) == [
        "config: snmp[0].priv_password: required with priv_protocol"
    ]
    assert snmp_problems(**{**v3, "community": "x"})[0].startswith("config: snmp[0].community:")
    assert snmp_problems(community="c", user="mon") == [
        'config: snmp[0].user: only for version "3"'
    ]
    assert snmp_problems() == ["config: snmp[0].community: required key is missing for version 2c"]
    for priv in ("AES-192", "AES-256", "AES-192C", "AES-256C"):  # both key extensions
        assert snmp_problems(**{**v3, "priv_protocol": priv}) == []
    assert snmp_problems(**{**v3, "priv_protocol": "AES-512"}) == [
        "config: snmp[0].priv_protocol: Input should be 'DES', 'AES', 'AES-128', 'AES-192', "
        "'AES-256', 'AES-192C' or 'AES-256C'"
    ]


def test_port_selection_and_name_cache_keys():
    assert snmp_problems(community="c", ports={"pinned": True, "include": ["ether*"]},
                         name_cache_minutes=5) == []  # fmt: skip
    assert snmp_problems(community="c", ports={"pined": True}) == [
        "config: snmp[0].ports.pined: unknown key (check its spelling against "
        "deploy/config.example.yml)"
    ]
    assert snmp_problems(community="c", name_cache_minutes=0)[0].startswith(
        "config: snmp[0].name_cache_minutes:"
    )


# Every key that holds a host, and how a config carries an address there.
HOST_KEYS = {
    "snmp[0].address": lambda a: {"snmp": [{"name": "r", "address": a, "community": "c"}]},
    "modbus[0].address": lambda a: {"modbus": [{"name": "u", "address": a}]},
    "modbus[0].address (rtu-over-tcp)": lambda a: {
        "modbus": [{"name": "u", "address": a, "transport": "rtu-over-tcp"}]
    },
    "nut[0].address": lambda a: {"nut": [{"name": "n", "address": a, "ups": "sim"}]},
    "listen": lambda a: {"listen": a},
    "remote_write_url": lambda a: {
        "remote_write_url": f"https://{f'[{a}]' if ':' in a else a}/api/v1/write"
    },
    "links[0].capacity_test.iperf3": lambda a: {
        "links": [
            {
                "name": "isp",
                "targets": [{"name": "t", "address": "1.1.1.1"}],
                "capacity_test": {"iperf3": a},
            }
        ]
    },
}
# Probes compare each reply's source with the target: IPv4 literals only.
IPV4_KEYS = {
    "links[0].targets[0].address": lambda a: {
        "links": [{"name": "isp", "targets": [{"name": "t", "address": a}]}]
    },
    "links[0].source_address": lambda a: {
        "links": [
            {"name": "isp", "source_address": a, "targets": [{"name": "t", "address": "1.1.1.1"}]}
        ]
    },
}
NOT_ADDRESSES = ["999.1.1.1", "10.0.0", "123", "host name with spaces", "-bad-.example",
                 "ok.-bad-", "a..b"]  # fmt: skip


@pytest.fixture
def no_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """validate runs offline: any lookup fails the test."""
    import socket

    def lookup(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"DNS lookup at validate time: {args}")

    for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex"):
        monkeypatch.setattr(socket, name, lookup)


def _config_problems(data: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config({"site": {"id": "S-1"}, **data}, "c")
    return caught.value.problems


@pytest.mark.parametrize("host", NOT_ADDRESSES)
@pytest.mark.parametrize("key", [*HOST_KEYS, *IPV4_KEYS])
def test_every_address_key_refuses_what_is_neither_ip_nor_name(key, host, no_dns):
    (problem,) = _config_problems({**HOST_KEYS, **IPV4_KEYS}[key](host))
    if key == "remote_write_url" and " " in host:  # the URL pattern refuses it first
        assert problem.startswith("c: remote_write_url: "), problem
        return
    expected = {
        "links[0].targets[0].address": "is not an IP address (IPv4 or IPv6)",
        "links[0].source_address": "is not an IPv4 address",
    }.get(key, "is neither an IP address nor")
    assert problem.startswith(f"c: {key.split(' ')[0]}: '{host}' {expected}"), problem


def test_a_number_where_a_name_belongs_says_what_an_ipv4_address_is():
    (problem,) = _config_problems(HOST_KEYS["snmp[0].address"]("999.1.1.1:161"))
    assert problem == (
        "c: snmp[0].address: '999.1.1.1' is neither an IP address nor a host name: an IPv4 "
        "address is four numbers from 0 to 255 (e.g. 10.0.0.1), and a host name does not end "
        "in a number"
    )


@pytest.mark.parametrize(
    "host", ["ups-1.centre.local", "router", "10.0.0.1", "fe80::1", "2001:db8::1", "ups1.", "a1"]
)
@pytest.mark.parametrize("key", list(HOST_KEYS))
def test_names_and_ip_literals_pass(key, host, no_dns):
    if key != "remote_write_url" and ":" in host:
        host = f"[{host}]:1502"  # as a user writes an IPv6 address with a port
    config = parse_config({"site": {"id": "S-1"}, **HOST_KEYS[key](host)}, "c")
    assert config is not None
