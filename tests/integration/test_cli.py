"""The command line's contract: exit codes, one-line errors, check verdicts with hints."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from simulators.snmp_router import SimInterface, SimulatedRouter
from simulators.ups import SimulatedUps

from .conftest import require
from .test_agent_process import LoopThread, closed_tcp_port

SECRET = "cli-test-community"


def agent_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require("erozgar-agent"), *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def sims() -> Iterator[dict[str, int]]:
    loop = LoopThread()
    router = SimulatedRouter(
        "r1", [SimInterface("ether1", 1e9, 5e6, 1e6)], community=SECRET, uptime=86400
    )
    ups = SimulatedUps()
    ports = {"router": loop.run(router.start("127.0.0.1", 0))[1],
             "ups": loop.run(ups.start("127.0.0.1", 0))[1]}  # fmt: skip
    yield ports
    loop.run(router.stop())
    loop.run(ups.stop())
    loop.close()


def write_config(tmp_path: Path, snmp: list[dict], modbus: list[dict]) -> str:
    path = tmp_path / "agent.yml"
    listen = f"127.0.0.1:{closed_tcp_port()}"
    path.write_text(yaml.safe_dump({"site": {"id": "T-1"}, "listen": listen, "snmp": snmp,
                                    "modbus": modbus}))  # fmt: skip
    return str(path)


def test_check_healthy_site_exits_0(sims, tmp_path):
    config = write_config(
        tmp_path,
        [{"name": "r1", "address": f"127.0.0.1:{sims['router']}", "community": SECRET,
          "interfaces": [{"name": "ether1", "role": "wan"}]}],
        [{"name": "ups", "address": f"127.0.0.1:{sims['ups']}"}],
    )  # fmt: skip
    result = agent_cli("check", "--config", config)
    assert result.returncode == 0, result.stdout + result.stderr
    # The agent's own box may warn (an unsynchronised clock in a container); devices pass.
    assert result.stdout.splitlines()[-1] in ("PASS: all 3 checked", "PASS with warnings: agent")
    assert "FAIL" not in result.stdout
    assert SECRET not in result.stdout + result.stderr


def test_check_names_each_fault_with_a_hint_and_exits_1(sims, tmp_path):
    config = write_config(
        tmp_path,
        [{"name": "r1", "address": f"127.0.0.1:{sims['router']}", "community": SECRET,
          "interfaces": [{"name": "ether11", "role": "wan"}]},
         {"name": "wrong-community", "address": f"127.0.0.1:{sims['router']}",
          "community": "not-" + SECRET, "timeout": 0.5, "retries": 0}],
        [{"name": "ups-closed", "address": f"127.0.0.1:{closed_tcp_port()}"}],
    )  # fmt: skip
    result = agent_cli("check", "--config", config, "--json")
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is False
    by_name = {d["name"]: d for d in report["devices"]}
    port = next(c for c in by_name["r1"]["checks"] if c["name"] == "port ether11")
    assert port["status"] == "FAIL" and "ether1" in port["hint"]
    community = next(c for c in by_name["wrong-community"]["checks"] if c["name"] == "snmp answer")
    assert community["status"] == "FAIL" and community["detail"].startswith("timeout")
    assert "credentials" in community["hint"] or "community" in community["hint"]
    closed = by_name["ups-closed"]["checks"][0]
    assert closed["status"] == "FAIL" and "refused" in closed["detail"]
    assert "enabled" in closed["hint"]
    assert set(by_name["ups-closed"]) == {"name", "kind", "status", "checks"}
    assert SECRET not in result.stdout + result.stderr

    table = agent_cli("check", "--config", config)
    assert table.returncode == 1
    assert "FAIL: 3 of 4 failed: r1, wrong-community, ups-closed" in table.stdout
    assert "hint: " in table.stdout


def test_invalid_config_exits_2_with_one_line_per_problem(tmp_path):
    path = tmp_path / "bad.yml"
    path.write_text(
        "site: {id: X}\nsnmp:\n  - {name: a, address: 10.0.0.1, community: c, colour: red}\n"
    )
    for command in ("validate", "check", "run"):
        result = agent_cli(command, "--config", str(path))
        assert result.returncode == 2, command
        assert result.stderr.strip().splitlines() == [
            f"{path}: snmp[0].colour: unknown key (check its spelling against "
            "deploy/config.example.yml)"
        ]
        assert "Traceback" not in result.stderr


def test_validate_good_config_and_missing_file(tmp_path):
    config = write_config(tmp_path, [], [{"name": "ups", "address": "10.1.1.1"}])
    result = agent_cli("validate", "--config", config)
    assert result.returncode == 0 and "ok (0 SNMP, 1 Modbus devices)" in result.stdout
    missing = agent_cli("validate", "--config", str(tmp_path / "nope.yml"))
    assert missing.returncode == 2
    assert "cannot read the config file (No such file or directory)" in missing.stderr


def test_run_with_listen_port_taken_exits_1(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = write_config(tmp_path, [], [])
        result = agent_cli("run", "--config", config, "--listen", f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_names_each_address_that_is_neither_ip_nor_host_name(tmp_path):
    path = tmp_path / "agent.yml"
    path.write_text(
        yaml.safe_dump(
            {"site": {"id": "T-1"},
             "snmp": [{"name": "r1", "address": "999.1.1.1", "community": "c"},
                      {"name": "r2", "address": "router", "community": "c"}],
             "modbus": [{"name": "u1", "address": "10.0.0:502"},
                        {"name": "u2", "address": "[2001:db8::5]:502"}],
             "nut": [{"name": "n1", "address": "host name with spaces", "ups": "sim"},
                     {"name": "n2", "address": "ups-1.centre.local", "ups": "sim"}],
             "links": [{"name": "isp", "targets": [{"name": "t", "address": "-bad-.example"}]}]}
        )
    )  # fmt: skip
    result = agent_cli("validate", "--config", str(path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        f"{path}: snmp[0].address: '999.1.1.1' is neither an IP address nor a host name: an "
        "IPv4 address is four numbers from 0 to 255 (e.g. 10.0.0.1), and a host name does not "
        "end in a number",
        f"{path}: modbus[0].address: '10.0.0' is neither an IP address nor a host name: an "
        "IPv4 address is four numbers from 0 to 255 (e.g. 10.0.0.1), and a host name does not "
        "end in a number",
        f"{path}: nut[0].address: 'host name with spaces' is neither an IP address nor a host name",
        f"{path}: links[0].targets[0].address: '-bad-.example' is not an IP address (IPv4 or IPv6)",
    ]
    good = yaml.safe_load(path.read_text())
    for section in ("snmp", "modbus", "nut"):
        good[section] = good[section][1:]
    good["links"][0]["targets"][0]["address"] = "8.8.8.8"
    path.write_text(yaml.safe_dump(good))
    result = agent_cli("validate", "--config", str(path))
    assert result.returncode == 0, result.stderr
    assert "ok (1 SNMP, 1 Modbus devices)" in result.stdout
