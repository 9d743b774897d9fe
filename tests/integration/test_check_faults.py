"""`erozgar-agent check` against simulators with one fault each: every fault is named with its
fix, and the exit code says whether anything failed."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from simulators.snmp_router import SimInterface, SimulatedRouter
from simulators.ups import SimulatedUps

from .conftest import SnmpPeer, free_udp_port, require
from .test_agent_process import LoopThread, closed_tcp_port

SECRET = "faults-community"


@pytest.fixture(scope="module")
def sims() -> Iterator[dict[str, Any]]:
    loop = LoopThread()
    router = SimulatedRouter(
        "edge",
        [SimInterface("ether1", 1e9, 40e6, 8e6), SimInterface("ether2", 1e9, 1e6, 1e6)],
        community=SECRET,
        uptime=3 * 86400,
    )
    ups = SimulatedUps(unit=1)
    swapped = SimulatedUps(unit=1, model="Smart-UPS SRT3000")
    # A unit that sends 32-bit values low word first, unlike its profile says.
    swapped.profile = swapped.profile.model_copy(update={"byte_order": "CDAB"})
    ports = {
        "router": loop.run(router.start("127.0.0.1", 0))[1],
        "ups": loop.run(ups.start("127.0.0.1", 0))[1],
        "swapped": loop.run(swapped.start("127.0.0.1", 0))[1],
    }
    yield ports
    for sim in (router, ups, swapped):
        loop.run(sim.stop())
    loop.close()


def healthy(sims: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {
        "snmp": [
            {"name": "edge", "address": f"127.0.0.1:{sims['router']}", "community": SECRET,
             "interfaces": [{"name": "ether1", "role": "wan", "capacity_down_mbps": 100,
                             "capacity_up_mbps": 20}]},
        ],
        "modbus": [{"name": "ups-rack", "address": f"127.0.0.1:{sims['ups']}"}],
    }  # fmt: skip


def faulty(sims: dict[str, Any], snmpd: SnmpPeer) -> dict[str, list[dict[str, Any]]]:
    router = f"127.0.0.1:{sims['router']}"
    return {
        "snmp": [
            # snmpd's v3user has auth key "authpass123" (conftest); this one is wrong.
            {"name": "wrong-v3-key", "address": f"{snmpd.host}:{snmpd.port}", "version": "3",
             "user": "v3user", "auth_protocol": "SHA-256", "auth_password": "not-authpass",
             "priv_protocol": "AES", "priv_password": "privpass123", "retries": 0},
            {"name": "wrong-community", "address": router, "community": "not-" + SECRET,
             "timeout": 0.5, "retries": 0},
            {"name": "wrong-port-name", "address": router, "community": SECRET,
             "interfaces": [{"name": "ether-1", "role": "wan"}]},
            {"name": "wrong-snmp-port", "address": f"127.0.0.1:{free_udp_port()}",
             "community": SECRET},
        ],
        "modbus": [
            {"name": "closed-port", "address": f"127.0.0.1:{closed_tcp_port()}"},
            {"name": "wrong-unit", "address": f"127.0.0.1:{sims['ups']}", "unit": 7,
             "timeout": 0.5, "retries": 0},
            {"name": "word-swapped", "address": f"127.0.0.1:{sims['swapped']}"},
        ],
    }  # fmt: skip


def check(tmp_path: Path, devices: dict[str, Any], *extra: str) -> subprocess.CompletedProcess:
    path = tmp_path / "agent.yml"
    config = {"site": {"id": "T-FAULT"}, "listen": f"127.0.0.1:{closed_tcp_port()}",
              "state_dir": str(tmp_path), **devices}  # fmt: skip
    path.write_text(yaml.safe_dump(config))
    return subprocess.run(
        [require("erozgar-agent"), "check", "--config", str(path), *extra],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def step(report: dict[str, Any], device: str, name: str) -> dict[str, str]:
    checks = next(d for d in report["devices"] if d["name"] == device)["checks"]
    return next(c for c in checks if c["name"] == name)


def test_each_fault_is_named_with_its_fix(sims, snmpd, tmp_path):
    result = check(tmp_path, faulty(sims, snmpd), "--json")
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)  # stdout is only the JSON document
    status = {d["name"]: d["status"] for d in report["devices"]}
    assert status == {"wrong-v3-key": "FAIL", "wrong-community": "FAIL", "wrong-port-name": "FAIL",
                      "wrong-snmp-port": "FAIL", "closed-port": "FAIL", "wrong-unit": "FAIL",
                      "word-swapped": "FAIL", "agent": status["agent"]}  # fmt: skip

    v3 = step(report, "wrong-v3-key", "credentials")
    assert v3["status"] == "FAIL" and "wrong auth key" in v3["detail"]
    assert "auth password" in v3["hint"]
    assert step(report, "wrong-v3-key", "snmp answer")["status"] == "PASS"

    reach = step(report, "wrong-community", "host reachable")
    assert reach["status"] == "PASS"
    silent = step(report, "wrong-community", "snmp answer")
    assert silent["status"] == "FAIL" and silent["detail"].startswith("timeout")
    assert "community" in silent["hint"] and "ACL" in silent["hint"]

    port = step(report, "wrong-port-name", "port ether-1")
    assert port["status"] == "FAIL" and "closest names: ether1" in port["hint"]

    refused = step(report, "wrong-snmp-port", "snmp answer")
    assert refused["status"] == "FAIL" and refused["detail"].startswith("refused")
    assert "nothing listens on UDP port" in refused["hint"]

    closed = step(report, "closed-port", "tcp connect")
    assert closed["status"] == "FAIL" and "refused" in closed["detail"]
    assert "Modbus TCP is enabled" in closed["hint"]

    unit = step(report, "wrong-unit", "unit id")
    assert unit["status"] == "FAIL" and "unit 7 does not answer" in unit["detail"]
    assert unit["hint"].startswith("set unit: 1 ")

    values = step(report, "word-swapped", "values")
    assert values["status"] == "FAIL" and "battery.runtime" in values["detail"]
    assert "set byte_order: CDAB" in values["hint"]

    for secret in (SECRET, "not-authpass", "privpass123"):
        assert secret not in result.stdout + result.stderr
    # Progress went to stderr, a line per device as it finished, the agent's box included.
    assert "[8/8]" in result.stderr


def test_the_suggested_fixes_make_the_site_healthy(sims, snmpd, tmp_path):
    """Apply each hint to the config: check then passes and exits 0."""
    devices = faulty(sims, snmpd)
    devices["snmp"][0]["auth_password"] = "authpass123"
    devices["snmp"][1]["community"] = SECRET
    devices["snmp"][2]["interfaces"][0]["name"] = "ether1"
    devices["snmp"][3]["address"] = f"127.0.0.1:{sims['router']}"
    devices["modbus"][0]["address"] = f"127.0.0.1:{sims['ups']}"
    devices["modbus"][1]["unit"] = 1
    devices["modbus"][2]["byte_order"] = "CDAB"
    result = check(tmp_path, devices, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    not_passed = [
        (d["name"], c["name"], c["status"], c["detail"])
        for d in report["devices"]
        if d["kind"] != "host"
        for c in d["checks"]
        if c["status"] != "PASS"
    ]
    # snmpd was started by this test session: check rightly says it rebooted minutes ago.
    assert [n[:3] for n in not_passed] in ([], [("wrong-v3-key", "uptime", "WARN")])


def test_healthy_site_exits_0_with_traffic_against_the_contract(sims, tmp_path):
    result = check(tmp_path, healthy(sims))
    assert result.returncode == 0, result.stdout + result.stderr
    table = result.stdout
    assert "FAIL" not in table
    traffic = next(line for line in table.splitlines() if "traffic ether1" in line)
    # 40 of 100 Mb/s down, 8 of 20 up: a 5 s sample through the daemon's bandwidth check.
    seen = re.search(r"down ([\d.]+) Mb/s of 100.0 Mb/s .* up ([\d.]+) Mb/s of 20.0 Mb/s", traffic)
    assert seen, traffic
    assert float(seen[1]) == pytest.approx(40, rel=0.1)
    assert float(seen[2]) == pytest.approx(8, rel=0.1)
    assert "up 3 days" in table
    assert "sysObjectID 1.3.6.1.4.1.14988.1: mikrotik-routeros" in table
    assert SECRET not in table + result.stderr
