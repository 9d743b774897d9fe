"""Config reload through the real process: SIGHUP and POST /-/reload, good and broken files.

What a user sees: a broken file changes nothing and says so (log, metrics, HTTP 500); a good one
applies; devices whose settings did not change keep their counters and their rates.
"""

from __future__ import annotations

import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from simulators.snmp_router import SimInterface, SimulatedRouter
from simulators.ups import SimulatedUps

from .conftest import require
from .test_agent_process import LoopThread, closed_tcp_port, get, samples, scrape

pytestmark = pytest.mark.integration
COMMUNITY = "reload-secret-community"


def post(port: int, path: str) -> tuple[int, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method="POST", data=b"")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def wait_for(port: int, ready: Callable[[dict], bool], what: str, seconds: float = 20) -> dict:
    deadline = time.monotonic() + seconds
    found: dict = {}
    while time.monotonic() < deadline:
        try:
            found = samples(scrape(port))
        except OSError:
            found = {}
        if found and ready(found):
            return found
        time.sleep(0.2)
    pytest.fail(f"not reached within {seconds} s: {what}")


def dead_errors(found: dict) -> float:
    return get(found, "erozgar_device_poll_errors_total", device="dead", reason="refused") or 0


@pytest.fixture
def peers() -> Iterator[dict[str, Any]]:
    loop = LoopThread()
    router = SimulatedRouter("edge", [SimInterface("ether1", 1e9, 8e6, 1e6)], community=COMMUNITY)
    ups = SimulatedUps("apc-smart-ups", load_w=300.0)
    router_port = loop.run(router.start("127.0.0.1", 0))[1]
    ups_port = loop.run(ups.start("127.0.0.1", 0))[1]
    try:
        yield {"router": router_port, "ups": ups_port}
    finally:
        loop.run(router.stop())
        loop.run(ups.stop())
        loop.close()


def config(peers: dict[str, Any], state_dir: Path, **changes: Any) -> dict:
    router = f"127.0.0.1:{peers['router']}"
    devices = {
        "keep": {"name": "keep", "address": router, "community": COMMUNITY, "interval": 0.5},
        "edge": {"name": "edge", "address": router, "community": COMMUNITY, "interval": 1},
    }
    devices.update(changes.pop("snmp", {}))
    return {
        "site": {"id": "RLD-001"},
        "state_dir": str(state_dir),
        "snmp": [d for d in devices.values() if d is not None],
        "modbus": changes.pop(
            "modbus",
            [
                {"name": "ups", "address": f"127.0.0.1:{peers['ups']}", "interval": 1},
                {"name": "dead", "address": f"127.0.0.1:{closed_tcp_port()}", "interval": 0.3},
            ],
        ),
    }


def test_reload_applies_good_configs_keeps_counters_and_survives_broken_ones(peers, tmp_path):
    path = tmp_path / "agent.yml"
    first = config(peers, tmp_path)
    path.write_text(yaml.safe_dump(first))
    path.chmod(0o600)
    port = closed_tcp_port()
    process = subprocess.Popen(
        [require("erozgar-agent"), "run", "--config", str(path), "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        rate = {"device": "keep", "interface": "ether1", "role": "lan"}
        found = wait_for(
            port,
            lambda f: (
                get(f, "erozgar_interface_receive_bytes_per_second", **rate) is not None
                and get(f, "erozgar_device_up", device="ups", kind="modbus") == 1
                and dead_errors(f) >= 10
            ),
            "all devices polled, a rate for keep",
        )
        assert get(found, "erozgar_agent_config_reload_success") == 1
        started_ok = get(found, "erozgar_agent_config_last_reload_success_timestamp_seconds")

        # 1. SIGHUP with a good change: edge's interval changes, new arrives, ups goes.
        before = dead_errors(found)
        second = config(
            peers, tmp_path,
            snmp={"edge": {**first["snmp"][1], "interval": 2},
                  "new": {"name": "new", "address": f"127.0.0.1:{peers['router']}",
                          "community": COMMUNITY, "interval": 0.5}},
            modbus=[first["modbus"][1]],
        )  # fmt: skip
        path.write_text(yaml.safe_dump(second))
        process.send_signal(signal.SIGHUP)
        found = wait_for(
            port,
            lambda f: (
                get(f, "erozgar_device_up", device="new", kind="snmp") == 1
                and get(f, "erozgar_device_up", device="ups", kind="modbus") is None
            ),
            "new polled, ups gone",
        )
        # Unchanged devices kept their judge (the rate needs two polls of history) and counters.
        assert get(found, "erozgar_interface_receive_bytes_per_second", **rate) is not None
        assert dead_errors(found) >= before
        assert get(found, "erozgar_agent_config_reload_success") == 1
        assert get(found, "erozgar_agent_config_last_reload_success_timestamp_seconds") > started_ok
        assert not [k for k in found if ("device", "ups") in k[1]]  # every ups series gone

        # 2. A broken file through POST /-/reload: 500, the running config stays, it is counted.
        before = dead_errors(found)
        last_ok = get(found, "erozgar_agent_config_last_reload_success_timestamp_seconds")
        path.write_text("site: {id: RLD-001}\nsnmp: [ {name: x\n")
        status, body = post(port, "/-/reload")
        assert status == 500 and "reload failed" in body
        assert COMMUNITY not in body
        found = wait_for(port, lambda f: dead_errors(f) >= before + 3, "polling goes on")
        assert get(found, "erozgar_agent_config_reload_success") == 0
        assert get(found, "erozgar_agent_config_last_reload_success_timestamp_seconds") == last_ok
        assert get(found, "erozgar_device_up", device="new", kind="snmp") == 1
        assert get(found, "erozgar_interface_receive_bytes_per_second", **rate) is not None

        # 3. An invalid (but parseable) one through SIGHUP: the same.
        path.write_text(yaml.safe_dump({**second, "snmp": [{"name": "bad", "address": "x:y"}]}))
        process.send_signal(signal.SIGHUP)
        time.sleep(1)
        found = wait_for(port, lambda f: get(f, "erozgar_device_up", device="new", kind="snmp")
                         == 1, "new still polled")  # fmt: skip
        assert get(found, "erozgar_device_up", device="bad", kind="snmp") is None
        assert get(found, "erozgar_agent_config_reload_success") == 0

        # 4. Back to a good file: success again, counters of the unchanged dead device intact.
        before = dead_errors(found)
        path.write_text(yaml.safe_dump(second))
        status, body = post(port, "/-/reload")
        assert status == 200, body
        assert body.endswith(": 4 unchanged\n")
        found = wait_for(port, lambda f: get(f, "erozgar_agent_config_reload_success") == 1,
                         "reload success")  # fmt: skip
        assert dead_errors(found) >= before
        with pytest.raises(urllib.error.HTTPError) as wrong_method:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/-/reload", timeout=5)
        assert wrong_method.value.code == 405
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert "snmp[0].name: " in stderr or "YAML syntax error" in stderr
    assert "2 unchanged; added new; changed edge; removed ups" in stderr
    assert stderr.count("the running config stays in force") == 2, stderr
    assert "snmp[0].address" in stderr
    assert "Traceback" not in stderr
    assert COMMUNITY not in stderr
