"""A site-local profile used without a new release: a copy of the packaged APC map under a new
name in the config's profile_dir drives a Modbus UPS (our simulator) through the real
`erozgar-agent check` and `run`; `validate` refuses a broken one, naming the file and key."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
import yaml

from simulators.ups import SimulatedUps

from .conftest import require
from .test_agent_process import LoopThread, closed_tcp_port, get, samples, scrape
from .test_cli import agent_cli

APC = resources.files("collectors").joinpath("profiles", "modbus", "apc-smart-ups.yaml")


@pytest.fixture(scope="module")
def ups_port() -> Iterator[int]:
    loop = LoopThread()
    ups = SimulatedUps()
    yield loop.run(ups.start("127.0.0.1", 0))[1]
    loop.run(ups.stop())
    loop.close()


def site_config(tmp_path: Path, port: int, profile: str | None = None) -> Path:
    """profile_dir with modbus/site-ups.yaml (`profile`, else the APC map renamed), and a config
    whose UPS names it."""
    site = tmp_path / "profiles" / "modbus"
    site.mkdir(parents=True)
    apc = APC.read_text(encoding="utf-8").replace("name: apc-smart-ups", "name: site-ups", 1)
    (site / "site-ups.yaml").write_text(apc if profile is None else profile)
    config = {
        "site": {"id": "T-1"},
        "listen": f"127.0.0.1:{closed_tcp_port()}",
        "state_dir": str(tmp_path),
        "profile_dir": str(tmp_path / "profiles"),
        "modbus": [{"name": "ups", "address": f"127.0.0.1:{port}", "profile": "site-ups",
                    "interval": 1}],
    }  # fmt: skip
    path = tmp_path / "agent.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_check_reads_the_ups_through_the_site_profile(ups_port: int, tmp_path: Path) -> None:
    result = agent_cli("check", "--config", str(site_config(tmp_path, ups_port)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "profile site-ups" in result.stdout
    assert "FAIL" not in result.stdout


def test_run_exports_the_ups_through_the_site_profile(ups_port: int, tmp_path: Path) -> None:
    config = site_config(tmp_path, ups_port)
    http_port = closed_tcp_port()
    process = subprocess.Popen(
        [require("erozgar-agent"), "run", "--config", str(config),
         "--listen", f"127.0.0.1:{http_port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
    )  # fmt: skip
    try:
        deadline, found = time.monotonic() + 30, {}
        while time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()
            try:
                found = samples(scrape(http_port))
            except OSError:
                found = {}
            if get(found, "erozgar_ups_battery_charge_ratio", device="ups") is not None:
                break
            time.sleep(0.3)
        assert get(found, "erozgar_device_up", device="ups", kind="modbus") == 1, found
        assert get(found, "erozgar_ups_on_battery", device="ups") == 0
        assert 0 < (get(found, "erozgar_ups_battery_charge_ratio", device="ups") or 0) <= 1
    finally:
        process.terminate()
        process.communicate(timeout=10)


def test_validate_refuses_a_broken_site_profile(ups_port: int, tmp_path: Path) -> None:
    apc = APC.read_text(encoding="utf-8").replace("name: apc-smart-ups", "name: site-ups", 1)
    broken = apc.replace("byte_order: ABCD", "byte_order: LITTLE", 1)
    config = site_config(tmp_path, ups_port, broken)
    profile = tmp_path / "profiles" / "modbus" / "site-ups.yaml"
    for command in ("validate", "run"):
        result = agent_cli(command, "--config", str(config))
        assert result.returncode == 2, command + result.stdout + result.stderr
        assert result.stderr.strip().splitlines() == [
            f"{profile}: byte_order: Input should be 'ABCD', 'CDAB', 'BADC' or 'DCBA'"
        ]
