"""`erozgar-agent discover` on loopback: a simulated router on 127.0.0.5 and a simulated UPS on
127.0.0.6, found in 127.0.0.0/28, identified, and written out as a config `validate` accepts."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from simulators.snmp_router import SimInterface, SimulatedRouter
from simulators.ups import SimulatedUps

from .conftest import SnmpPeer, require
from .test_agent_process import LoopThread

SECRET = "discover-secret"


@pytest.fixture(scope="module")
def sims() -> Iterator[dict[str, Any]]:
    loop = LoopThread()
    router = SimulatedRouter(
        "core router", [SimInterface("ether1"), SimInterface("sfp-sfpplus1")], community=SECRET
    )
    ups = SimulatedUps(unit=1, model="Smart-UPS SMT1500")
    ports = {
        "snmp": loop.run(router.start("127.0.0.5", 0))[1],
        "modbus": loop.run(ups.start("127.0.0.6", 0))[1],
    }
    yield ports
    loop.run(router.stop())
    loop.run(ups.stop())
    loop.close()


def discover(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require("erozgar-agent"), "discover", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_finds_and_identifies_the_simulators(sims):
    result = discover(
        "127.0.0.0/28", "--community", "wrong-one", "--community", SECRET,
        "--snmp-port", str(sims["snmp"]), "--modbus-port", str(sims["modbus"]), "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert [(f["kind"], f["address"]) for f in found] == [
        ("snmp", "127.0.0.5"),
        ("modbus", "127.0.0.6"),
    ]
    router, ups = found
    assert router["sys_name"] == "core router"
    assert router["sys_object_id"] == "1.3.6.1.4.1.14988.1"
    assert router["ports"] == ["ether1", "sfp-sfpplus1"]
    assert router["community"] == "SNMP_COMMUNITY_2"  # the second --community answered
    assert ups["unit"] == 1 and ups["profile"] == "apc-smart-ups"
    assert ups["model"] == "Smart-UPS SMT1500"
    assert "14/14" in result.stderr or "scanned 14/14 addresses, 2 found" in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_snippet_is_a_config_validate_accepts(sims, tmp_path):
    result = discover(
        "127.0.0.0/28", "--community", SECRET,
        "--snmp-port", str(sims["snmp"]), "--modbus-port", str(sims["modbus"]),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout
    config = yaml.safe_load(result.stdout)
    assert config["snmp"] == [
        {
            "name": "core-router",
            "address": f"127.0.0.5:{sims['snmp']}",
            "community": "${SNMP_COMMUNITY}",
        }
    ]
    assert config["modbus"] == [
        {
            "name": "ups-127-0-0-6",
            "address": f"127.0.0.6:{sims['modbus']}",
            "unit": 1,
            "profile": "apc-smart-ups",
        }
    ]
    path = tmp_path / "discovered.yml"
    path.write_text(result.stdout)
    validate = subprocess.run(
        [require("erozgar-agent"), "validate", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "SNMP_COMMUNITY": SECRET},
    )
    assert validate.returncode == 0, validate.stderr
    assert "1 SNMP, 1 Modbus devices" in validate.stdout


def test_refuses_more_than_a_slash_22_unless_forced():
    result = discover("127.0.0.0/21", "--community", "x")
    assert result.returncode == 2
    assert "more than a /22" in result.stderr and "--force" in result.stderr
    assert result.stdout == ""


def test_nothing_found_exits_1(sims):
    result = discover(
        "127.0.0.8/30", "--community", SECRET, "--snmp-port", str(sims["snmp"]),
        "--modbus-port", str(sims["modbus"]), "--timeout", "0.3",
    )  # fmt: skip
    assert result.returncode == 1
    assert "0 devices" in result.stdout


def test_finds_an_snmpv3_agent_with_the_user_given(snmpd: SnmpPeer, tmp_path):
    keys = {"SNMP_V3_AUTH_PASSWORD": "authpass123", "SNMP_V3_PRIV_PASSWORD": "privpass123"}
    result = discover(
        f"{snmpd.host}/32", "--v3-user", "v3user", "--v3-auth-protocol", "SHA-256",
        "--snmp-port", str(snmpd.port), "--modbus-port", "1", env=keys,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for secret in keys.values():
        assert secret not in result.stdout + result.stderr
    (device,) = yaml.safe_load(result.stdout)["snmp"]
    assert device["version"] == "3" and device["user"] == "v3user"
    assert device["auth_protocol"] == "SHA-256" and device["priv_protocol"] == "AES"
    assert device["auth_password"] == "${SNMP_V3_AUTH_PASSWORD}"
    path = tmp_path / "v3.yml"
    path.write_text(result.stdout)
    validate = subprocess.run(
        [require("erozgar-agent"), "validate", "--config", str(path)],
        capture_output=True, text=True, timeout=30, env={**os.environ, **keys},
    )  # fmt: skip
    assert validate.returncode == 0, validate.stderr
