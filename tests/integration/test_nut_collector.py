"""NutCollector against Debian's upsd with the dummy-ups driver, on 127.0.0.1.

One upsd per module: dummy-ups serves `sim.dev` (re-read when it changes), upsd listens on a
free port with a user `monitor` allowed to LOGIN. The last test polls one simulated state over
Modbus and over NUT and compares the exported erozgar_ups_* samples.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from agent.checks.battery import BatteryMonitor
from agent.checks.power import PowerCheck, UpsStatus
from agent.poller import UpsJudge
from agent.state import DeviceState
from collectors.modbus.collector import ModbusCollector
from collectors.modbus.profile import load_profile
from collectors.nut import NutCollector
from collectors.readings import PollError, UpsReading
from exporters.families import Families
from exporters.power import battery_families, ups_families
from simulators.ups import SimulatedUps

from .conftest import HOST, missing, stop

pytestmark = pytest.mark.integration

NUT_DIR = Path("/lib/nut")
USER, PASSWORD = "monitor", "s3cret-pass"
SIM_DEV = {
    "ups.status": "OL",
    "battery.charge": "100",
    "battery.runtime": "3600",
    "battery.voltage": "27.2",
    "input.voltage": "230.5",
    "ups.load": "23",
    "device.serial": "NUT-0042",
    "ups.firmware": "2.1.7",
}


class Upsd(NamedTuple):
    port: int
    root: Path


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def write_dev(root: Path, values: dict[str, str]) -> None:
    """dummy-ups re-reads the file when its mtime changes, in whole seconds: write a new one
    at least a second newer than the old (two tests may write within one second) and rename
    it in."""
    text = "".join(f"{name}: {value}\n" for name, value in values.items())
    path, tmp = root / "sim.dev", root / "sim.dev.new"
    tmp.write_text(text)
    if path.exists():
        mtime = max(time.time(), path.stat().st_mtime + 1)
        os.utime(tmp, (mtime, mtime))
    os.replace(tmp, path)


@pytest.fixture(scope="module")
def upsd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upsd]:
    driver, server = NUT_DIR / "dummy-ups", NUT_DIR / "upsd"
    if not (driver.exists() and server.exists()):
        missing("NUT not installed: apt-get install -y nut-server nut-client")
    root = tmp_path_factory.mktemp("nut")
    port = free_tcp_port()
    (root / "ups.conf").write_text(
        "[sim]\n driver = dummy-ups\n port = sim.dev\n pollinterval = 1\n"
    )
    (root / "upsd.conf").write_text(f"LISTEN {HOST} {port}\n")
    users = root / "upsd.users"
    users.write_text(f"[{USER}]\n password = {PASSWORD}\n upsmon secondary\n")
    users.chmod(0o600)
    write_dev(root, SIM_DEV)
    env = dict(
        os.environ, NUT_CONFPATH=str(root), NUT_STATEPATH=str(root), NUT_ALTPIDPATH=str(root)
    )
    log = (root / "nut.log").open("wb")
    drv = subprocess.Popen(
        [str(driver), "-a", "sim", "-u", "root", "-F"], env=env, stdout=log, stderr=log
    )
    daemon = subprocess.Popen([str(server), "-u", "root", "-F"], env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                reading = asyncio.run(NutCollector(HOST, port, "sim").poll())
                if reading.values.get("battery.charge") == 100.0:
                    break
            except PollError:
                pass
            if time.monotonic() > deadline or drv.poll() is not None or daemon.poll() is not None:
                pytest.fail(f"upsd/dummy-ups did not come up: {(root / 'nut.log').read_text()}")
            time.sleep(0.2)
        yield Upsd(port, root)
    finally:
        stop(daemon)
        stop(drv)
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def poll(peer: Upsd, ups: str = "sim", **kwargs: str) -> UpsReading:
    return asyncio.run(NutCollector(HOST, peer.port, ups, timeout=2, **kwargs).poll())


def poll_error(peer: Upsd, ups: str = "sim", **kwargs: str) -> PollError:
    with pytest.raises(PollError) as caught:
        poll(peer, ups, **kwargs)
    return caught.value


def wait_for(peer: Upsd, field: str, value: float) -> UpsReading:
    """Poll until dummy-ups has re-read the .dev file (it checks every pollinterval, 1 s)."""
    deadline = time.monotonic() + 10
    while True:
        reading = poll(peer)
        if reading.values.get(field) == value:
            return reading
        if time.monotonic() > deadline:
            pytest.fail(f"upsd still reports {field} {reading.values.get(field)}, not {value}")
        time.sleep(0.2)


def test_poll_maps_nut_variables(upsd: Upsd) -> None:
    write_dev(upsd.root, SIM_DEV)
    reading = wait_for(upsd, "battery.charge", 100.0)
    assert reading.flags == {"OL"}
    assert reading.values["battery.charge"] == 100.0
    assert reading.values["battery.runtime"] == 3600.0
    assert reading.values["input.voltage"] == 230.5
    assert reading.values["ups.load"] == 23.0
    assert reading.info["device.serial"] == "NUT-0042"
    assert reading.info["ups.firmware"] == "2.1.7"
    assert "driver.parameter.pollinterval" not in reading.values
    assert {"OL", "OB", "LB", "RB", "CHRG"} <= reading.known_flags
    assert reading.invalid == ()
    assert reading.requests == 2  # LIST VAR, LOGOUT


def test_changed_values_and_unknown_markers(upsd: Upsd) -> None:
    write_dev(
        upsd.root,
        {**SIM_DEV, "ups.status": "OB LB", "battery.charge": "9", "battery.voltage": "unknown"},
    )
    reading = wait_for(upsd, "battery.charge", 9.0)
    assert reading.flags == {"OB", "LB"}
    assert "battery.voltage" not in reading.values
    assert reading.invalid == ("battery.voltage",)


def test_self_test_is_shown_as_a_self_test_not_a_mains_cut(
    upsd: Upsd, caplog: pytest.LogCaptureFixture
) -> None:
    """A UPS testing its battery reports OB TEST through upsd: no cut, no time on battery."""
    judge = UpsJudge("ups", BatteryMonitor("ups"))
    state = DeviceState("ups", "nut")
    with caplog.at_level(logging.INFO):
        for status, charge in (("OL", 100), ("OB TEST", 99), ("OB TEST", 98), ("OL", 97)):
            write_dev(upsd.root, {**SIM_DEV, "ups.status": status, "battery.charge": str(charge)})
            reading = wait_for(upsd, "battery.charge", float(charge))
            judge.apply(reading, 0.0, state)
            if status == "OB TEST":
                assert reading.flags == {"OB", "TEST"}
                found = exported(state)
                assert found[("erozgar_ups_on_battery", ())] == 0
                assert found[("erozgar_ups_power_state", (("state", "self_test"),))] == 1
                assert found[("erozgar_ups_power_state", (("state", "on_battery"),))] == 0
                assert found[("erozgar_ups_status", (("flag", "TEST"),))] == 1
    found = exported(state)
    assert found[("erozgar_ups_outages_total", ())] == 0
    assert found[("erozgar_ups_on_battery_seconds_total", ())] == 0
    assert found[("erozgar_ups_power_state", (("state", "online"),))] == 1
    assert "mains power lost" not in caplog.text
    assert "ups: battery self-test running" in caplog.text


def exported(state: DeviceState) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The exported samples of one UPS, keyed by name and labels other than device."""
    out = Families()
    assert isinstance(state.status, UpsStatus) and state.battery is not None
    ups_families(out, "ups", state.status)
    battery_families(out, "ups", state.battery)
    return {
        (s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k != "device"))): s.value
        for family in out
        for s in family.samples
    }


def test_login_with_the_right_password(upsd: Upsd) -> None:
    reading = poll(upsd, username=USER, password=PASSWORD)
    assert reading.requests == 5  # USERNAME, PASSWORD, LOGIN, LIST VAR, LOGOUT
    assert "battery.charge" in reading.values


def test_wrong_password_is_auth_and_never_echoed(upsd: Upsd) -> None:
    err = poll_error(upsd, username=USER, password="wrong-guess")
    assert err.reason == "auth"
    assert "upsd denied access (ACCESS-DENIED)" in str(err)
    assert "wrong-guess" not in str(err)


def test_unknown_ups_names_what_upsd_serves(upsd: Upsd) -> None:
    err = poll_error(upsd, ups="rack")
    assert err.reason == "config"
    assert str(err) == f"rack@{HOST}:{upsd.port}: upsd has no UPS named 'rack'; upsd serves: sim"


def test_closed_port_is_refused() -> None:
    port = free_tcp_port()
    with pytest.raises(PollError) as caught:
        asyncio.run(NutCollector(HOST, port, "sim").poll())
    assert caught.value.reason == "refused"


def samples(reading: UpsReading) -> dict[tuple[str, tuple[str, ...]], float]:
    out = Families()
    ups_families(out, "ups", PowerCheck("ups").update(reading))
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in out
        for s in family.samples
        if s.name != "erozgar_ups_info"  # dummy-ups forces its own mfr/model: compared below
    }


def test_modbus_and_nut_export_the_same_metrics(upsd: Upsd) -> None:
    """One simulated state (87 %, on battery) through Modbus and through NUT."""

    class Frozen:
        def __call__(self) -> float:
            return 1000.0

    async def modbus_reading() -> tuple[UpsReading, dict[str, float | str]]:
        ups = SimulatedUps(charge_pct=87.0, clock=Frozen())
        ups.set_mains(False)
        _, port = await ups.start()
        collector = ModbusCollector(HOST, port, 1, load_profile("apc-smart-ups"), 1.0, 0)
        try:
            return await collector.poll(), ups.truth()
        finally:
            await collector.close()
            await ups.stop()

    via_modbus, truth = asyncio.run(modbus_reading())
    write_dev(upsd.root, {name: str(value) for name, value in truth.items()})
    via_nut = wait_for(upsd, "battery.charge", 87.0)
    modbus_samples, nut_samples = samples(via_modbus), samples(via_nut)
    # NUT knows every status flag, the APC map only some: compare the flags both can report.
    flags = {k for k in modbus_samples if k[0] == "ups_status"}
    assert {k: nut_samples.get(k) for k in flags} == {k: modbus_samples[k] for k in flags}
    values = {k: v for k, v in modbus_samples.items() if k[0] != "ups_status"}
    assert values.keys() <= nut_samples.keys()
    for key, value in values.items():
        assert nut_samples[key] == pytest.approx(value, rel=0.01, abs=0.01), key
    assert values[("erozgar_ups_on_battery", (("device", "ups"),))] == 1.0
    assert values[("erozgar_ups_battery_charge_ratio", (("device", "ups"),))] == pytest.approx(0.87)
    for name in ("device.serial", "ups.firmware", "battery.date"):
        assert via_nut.info[name] == via_modbus.info[name]


def test_check_command_steps_for_nut(upsd: Upsd) -> None:
    from agent.commission.healthcheck import run_checks
    from agent.config import parse_config

    write_dev(upsd.root, {**SIM_DEV, "battery.charge": "64"})
    wait_for(upsd, "battery.charge", 64.0)
    config = parse_config(
        {
            "site": {"id": "s"},
            "listen": f"{HOST}:{free_tcp_port()}",
            "nut": [
                {"name": "ok", "address": f"{HOST}:{upsd.port}", "ups": "sim"},
                {"name": "bad", "address": f"{HOST}:{upsd.port}", "ups": "sim",
                 "username": USER, "password": "nope"},
            ],
        }
    )  # fmt: skip
    verdicts = {v.name: v for v in asyncio.run(run_checks(config))}
    ok, bad = verdicts["ok"], verdicts["bad"]
    assert [(s.name, s.status) for s in ok.checks] == [("nut answer", "PASS"), ("battery", "PASS")]
    assert ok.checks[1].detail.startswith("on mains; charge 64%")
    assert bad.status == "FAIL"
    assert bad.checks[0].detail.startswith("auth: ")
    assert "nope" not in bad.checks[0].detail
