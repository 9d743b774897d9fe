"""The local status page as a site admin sees it: the real agent polling simulators, the page
rendered by headless Chromium on a phone-sized window.

Set EROZGAR_SCREENSHOT_TO=docs/status-page.png to keep the screenshot (the README shows it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from simulators.snmp_router import SimInterface, SimulatedRouter
from simulators.ups import SimulatedUps

from .conftest import require
from .test_agent_process import LoopThread, closed_tcp_port

COMMUNITY = "status-page-secret"
WAN_RX_BPS, WAN_TX_BPS = 62e6, 9e6


def fetch(port: int, path: str) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return response.read()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    loop = LoopThread()
    router = SimulatedRouter(
        "core-router",
        [SimInterface("ether1", 1e9, WAN_RX_BPS, WAN_TX_BPS, alias="ISP fibre"),
         SimInterface("ether2", 1e9, 5e6, 20e6)],
        community=COMMUNITY,
    )  # fmt: skip
    ups = SimulatedUps("apc-smart-ups", load_w=300.0, charge_pct=83.0)
    router_port = loop.run(router.start("127.0.0.1", 0))[1]
    ups_port = loop.run(ups.start("127.0.0.1", 0))[1]
    loop.call(lambda: ups.set_mains(False))  # load-shedding: the page must say "On battery"
    config = {
        "site": {"id": "LHR-017", "name": "e-Rozgar Centre Lahore <Johar Town>"},
        "state_dir": str(tmp_path_factory.mktemp("state")),
        "snmp": [
            {"name": "core-router", "address": f"127.0.0.1:{router_port}",
             "community": COMMUNITY, "interval": 1,
             "interfaces": [{"name": "ether1", "role": "wan", "capacity_down_mbps": 100,
                             "capacity_up_mbps": 20}]},
        ],
        "modbus": [
            {"name": "ups-rack", "address": f"127.0.0.1:{ups_port}", "interval": 1},
            {"name": "ups-office", "address": f"127.0.0.1:{closed_tcp_port()}", "interval": 1},
        ],
        "links": [
            {"name": "ptcl-fibre", "device": "core-router", "interface": "ether1", "interval": 2,
             "count": 2, "spacing": 0.1, "timeout": 0.5,
             "targets": [{"name": "gateway", "address": "127.0.0.1",
                          "tcp_port": closed_tcp_port()}]},
        ],
    }  # fmt: skip
    path = tmp_path_factory.mktemp("config") / "agent.yml"
    path.write_text(yaml.safe_dump(config))
    port = closed_tcp_port()
    process = subprocess.Popen(
        [require("erozgar-agent"), "run", "--config", str(path), "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()
            try:
                status = json.loads(fetch(port, "/status.json"))
            except OSError:
                time.sleep(0.3)
                continue
            links, ups_list = status["links"], status["ups"]
            ready = (
                links and links[0]["receive_bps"] is not None
                and links[0]["probe_loss_ratio"] is not None
                and any(u["on_battery"] for u in ups_list)
                and all(d["up"] is not None for d in status["devices"])
            )  # fmt: skip
            if ready:
                break
            time.sleep(0.3)
        else:
            pytest.fail(f"agent not ready in 30 s: {status}")
        yield {"port": port, "status": status}
    finally:
        process.kill()
        process.communicate()
        loop.run(router.stop())
        loop.run(ups.stop())
        loop.close()


def chromium(url: str, *extra: str, profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require("chromium"), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", "--window-size=412,915",
         "--hide-scrollbars", *extra, url],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_status_json_summarises_links_power_and_devices(site):
    status = site["status"]
    assert status["site"] == {"id": "LHR-017", "name": "e-Rozgar Centre Lahore <Johar Town>"}
    (link,) = status["links"]
    assert link["name"] == "ptcl-fibre" and link["up"] is True
    assert link["receive_capacity_bps"] == 100e6
    assert link["receive_bps"] == pytest.approx(WAN_RX_BPS, rel=0.2)
    assert link["probe_loss_ratio"] == 0.0
    rack = next(u for u in status["ups"] if u["name"] == "ups-rack")
    assert rack["on_battery"] is True and 0 < rack["charge_percent"] <= 83
    assert rack["outages"] == 1
    devices = {d["name"]: d for d in status["devices"]}
    assert devices["ups-office"]["up"] is False and devices["ups-office"]["reason"] == "refused"
    assert devices["core-router"]["last_success_age_seconds"] < 10
    assert COMMUNITY.encode() not in fetch(site["port"], "/status.json")


def test_chromium_shows_the_centre_at_a_glance(site, tmp_path):
    url = f"http://127.0.0.1:{site['port']}/"
    dom = chromium(url, "--dump-dom", profile=tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = dom.stdout
    # Escaped site name, read back as text by the browser.
    assert "e-Rozgar Centre Lahore &lt;Johar Town&gt;" in page
    assert 'name="viewport"' in page
    assert "On battery" in page and "On mains" not in page
    assert "ptcl-fibre" in page and ">Up<" in page
    assert "of 100 Mb/s" in page and "of 20 Mb/s" in page
    assert "probe loss 0%" in page
    assert "charge " in page and "runtime " in page and "outages 1" in page
    assert "Down: refused" in page  # the UPS whose card does not answer
    assert " s ago" in page
    assert "<script src" not in page and "<link" not in page  # no external assets
    assert COMMUNITY not in page

    shot = tmp_path / "status-page.png"
    result = chromium(url, f"--screenshot={shot}", profile=tmp_path / "profile-shot")
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 5_000 < shot.stat().st_size < 200_000
    if target := os.environ.get("EROZGAR_SCREENSHOT_TO"):
        shutil.copyfile(shot, target)
