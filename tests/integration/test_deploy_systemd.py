"""The shipped systemd units, checked by Debian's systemd-analyze: valid, and hardened."""

from __future__ import annotations

import re
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from simulators.ups import SimulatedUps

from .conftest import require
from .deploy_stack import DEPLOY
from .test_agent_process import LoopThread, closed_tcp_port, get
from .test_reload import wait_for

UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
AGENT_UNIT = DEPLOY / "systemd" / "erozgar-agent.service"


def installed_copy(unit: Path, target: Path) -> Path:
    """`unit` (and its drop-ins) in `target`, the agent's binary where this machine has it."""
    text = unit.read_text().replace("/opt/erozgar-venv/bin/erozgar-agent", require("erozgar-agent"))
    (target / unit.name).write_text(text)
    dropins = unit.with_name(unit.name + ".d")
    if dropins.is_dir():
        shutil.copytree(dropins, target / dropins.name)
    return target / unit.name


def directives(unit: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        match = re.match(r"^([A-Za-z]+)=(.*)$", line)
        if match:
            found.setdefault(match.group(1), []).append(match.group(2))
    return found


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_systemd_analyze_verify_and_security(unit: Path, tmp_path: Path) -> None:
    analyze = require("systemd-analyze")
    copy = installed_copy(unit, tmp_path)
    verify = subprocess.run(
        [analyze, "verify", copy.name], cwd=tmp_path, capture_output=True, text=True
    )
    assert verify.returncode == 0 and verify.stderr == "", verify.stderr
    security = subprocess.run(
        [analyze, "security", "--offline=true", copy.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    (score,) = re.findall(r"Overall exposure level for \S+: ([\d.]+) (\w+)", security.stdout)
    assert float(score[0]) <= 4.0 and score[1] == "OK", security.stdout[-3000:]


def test_agent_unit_is_hardened_and_runs_as_its_own_user() -> None:
    found = directives(AGENT_UNIT)
    expected = {
        "User": ["erozgar"],
        "NoNewPrivileges": ["yes"],
        "ProtectSystem": ["strict"],
        "ProtectHome": ["yes"],
        "PrivateTmp": ["yes"],
        "StateDirectory": ["erozgar-agent"],
        "Restart": ["on-failure"],
        "CapabilityBoundingSet": [""],
        "AmbientCapabilities": [""],
        "EnvironmentFile": ["-/etc/erozgar-agent/secrets.env"],
    }
    for key, value in expected.items():
        assert found.get(key) == value, key
    assert found["RestrictAddressFamilies"] == ["AF_INET AF_INET6 AF_UNIX AF_NETLINK"]
    # Exit 2 (invalid config) is not retried: the log already says what to fix.
    assert found["RestartPreventExitStatus"] == ["2"]
    sysusers = (DEPLOY / "systemd" / "erozgar.sysusers.conf").read_text()
    assert re.search(r"^u erozgar - .* /var/lib/erozgar-agent ", sysusers, re.MULTILINE)


def test_raw_icmp_dropin_grants_only_cap_net_raw(tmp_path: Path) -> None:
    dropin = directives(DEPLOY / "systemd" / "erozgar-agent.service.d" / "raw-icmp.conf")
    assert dropin == {
        "CapabilityBoundingSet": ["CAP_NET_RAW"],
        "AmbientCapabilities": ["CAP_NET_RAW"],
    }
    analyze = require("systemd-analyze")
    copy = installed_copy(AGENT_UNIT, tmp_path)
    shown = subprocess.run(
        [analyze, "security", "--offline=true", copy.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert re.search(r"✗ AmbientCapabilities=", shown.stdout), shown.stdout[-3000:]
    shutil.rmtree(tmp_path / "erozgar-agent.service.d")
    without = subprocess.run(
        [analyze, "security", "--offline=true", copy.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert re.search(r"✓ AmbientCapabilities=", without.stdout), without.stdout[-3000:]
    sysctl = (DEPLOY / "systemd" / "60-erozgar-ping.conf").read_text()
    assert re.search(r"^net\.ipv4\.ping_group_range = 0 2147483647$", sysctl, re.MULTILINE)


def test_systemctl_reload_rereads_the_config(tmp_path: Path) -> None:
    """`systemctl reload erozgar-agent` runs the unit's ExecReload with $MAINPID expanded.

    systemd is not PID 1 in the test container (`systemctl is-system-running`: offline), so the
    test runs that command line itself against a real `erozgar-agent run`, as systemd would.
    """
    (reload,) = directives(AGENT_UNIT)["ExecReload"]
    assert reload == "/bin/kill -HUP $MAINPID"
    loop = LoopThread()
    ups = SimulatedUps()
    _, ups_port = loop.run(ups.start("127.0.0.1", 0))
    device = {"address": f"127.0.0.1:{ups_port}", "interval": 0.5}
    config = {"site": {"id": "T-1"}, "state_dir": str(tmp_path),
              "modbus": [{"name": "ups-a", **device}]}  # fmt: skip
    path = tmp_path / "agent.yml"
    path.write_text(yaml.safe_dump(config))
    port = closed_tcp_port()
    agent = subprocess.Popen(
        [require("erozgar-agent"), "run", "--config", str(path), "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    stamp = "erozgar_agent_config_last_reload_success_timestamp_seconds"
    try:
        found = wait_for(port, lambda f: get(f, "erozgar_device_up", device="ups-a", kind="modbus")
                         == 1, "ups-a polled")  # fmt: skip
        started = get(found, stamp)
        time.sleep(1.1)  # the stamp is in seconds (a float, but do not rely on its resolution)
        config["modbus"].append({"name": "ups-b", **device})
        path.write_text(yaml.safe_dump(config))
        command = [str(agent.pid) if word == "$MAINPID" else word for word in shlex.split(reload)]
        subprocess.run(command, check=True, timeout=10)
        found = wait_for(port, lambda f: get(f, "erozgar_device_up", device="ups-b", kind="modbus")
                         == 1, "ups-b polled after the reload")  # fmt: skip
        assert get(found, stamp) > started
        assert get(found, "erozgar_agent_config_reload_success") == 1
        assert get(found, "erozgar_device_up", device="ups-a", kind="modbus") == 1
        assert agent.poll() is None  # reloaded, not killed
    finally:
        agent.send_signal(signal.SIGTERM)
        _, log = agent.communicate(timeout=15)
        loop.run(ups.stop())
        loop.close()
    assert agent.returncode == 0, log
    assert "added ups-b" in log, log
