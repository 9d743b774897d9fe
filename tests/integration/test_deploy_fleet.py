"""The fleet path with real binaries on loopback: agent -> vmagent -> VictoriaMetrics ->
vmalert -> Alertmanager -> a webhook, each started from the shipped deploy/ files.

Intervals are shortened where each test says so (the shipped ones would make a test take
minutes); everything else (rules, `for:` durations, routing, flags) is as shipped.
Shipped defaults and what they give are in README "Fleet path"; bench/fleet_bench.py runs the
long versions (minutes of outage, a full site for minutes at shipped intervals).
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from simulators.snmp_router import SimInterface, SimulatedRouter
from simulators.ups import SimulatedUps
from tests.relabel import shipped

from .conftest import require
from .deploy_stack import (
    DEPLOY,
    RULES,
    Sink,
    VictoriaMetrics,
    agent_process,
    flag,
    free_tcp_port,
    render_sites,
    running,
    scrape_config,
    scrape_series,
    unit_command,
    vmagent_command,
    vmagent_metric,
    with_flags,
)
from .test_agent_process import LoopThread

# Shortened for the tests (shipped: 10 s fast job, 120 s slow job, vmalert every 10 s).
FAST_S, SLOW_S = 1.0, 2.0
SERIES_BUDGET = 1500  # series a typical centre may ship (issue 13)
OUTAGE_S = float(os.environ.get("EROZGAR_OUTAGE_SECONDS", "20"))
# bench/fleet_bench.sh sets it to measure the alert latency at the shipped intervals.
SHIPPED = os.environ.get("EROZGAR_SHIPPED_INTERVALS") == "1"


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.close()


def small_site(loop: LoopThread, ups: SimulatedUps) -> list[dict[str, Any]]:
    """A router (its WAN port and one access port) and a UPS, polled every second (shortened;
    shipped UPS default: 5 s)."""
    poll = 5 if SHIPPED else 1
    router = SimulatedRouter(
        "core-router",
        [SimInterface("ether1", 1e9, 40e6, 8e6), SimInterface("ether2", 1e9, 2e6, 1e6)],
        community="fleet-test",
    )
    router_port = loop.run(router.start("127.0.0.1", 0))[1]
    ups_port = loop.run(ups.start("127.0.0.1", 0))[1]
    return [
        {
            "name": "core-router",
            "address": f"127.0.0.1:{router_port}",
            "community": "fleet-test",
            "interval": poll,
            "interfaces": [
                {"name": "ether1", "role": "wan", "capacity_down_mbps": 100, "capacity_up_mbps": 20}
            ],
        },
        {"name": "ups-rack", "address": f"127.0.0.1:{ups_port}", "interval": poll},
    ]


def agent_config(site: str, root: Path, devices: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "site": {"id": site, "name": f"{site} test centre"},
        "state_dir": str(root),
        "snmp": [d for d in devices if "community" in d],
        "modbus": [d for d in devices if "community" not in d],
    }


def gaps(samples: list[dict[str, Any]]) -> list[float]:
    timestamps = sorted(t for series in samples for t in series["timestamps"])
    return [(b - a) / 1000 for a, b in itertools.pairwise(timestamps)]


def test_isp_outage_loses_no_samples(loop: LoopThread, tmp_path: Path) -> None:
    """The store is down for OUTAGE_S (20 s here; bench: minutes); vmagent buffers on disk and
    delivers every sample of the outage window once the store is back."""
    ups = SimulatedUps("apc-smart-ups")
    devices = small_site(loop, ups)
    vm = VictoriaMetrics(tmp_path)
    vm.start()
    vmagent_port = free_tcp_port()
    with agent_process(agent_config("TST-OUT", tmp_path, devices), tmp_path, 2) as agent_port:
        argv = vmagent_command(
            tmp_path,
            f"{vm.url}/api/v1/write",
            "TST-OUT",
            scrape_config(FAST_S, SLOW_S, f"127.0.0.1:{agent_port}", {}),
            vmagent_port,
        )
        assert flag(argv, "remoteWrite.tmpDataPath") == f"{tmp_path}/erozgar-vmagent/buffer"
        vmagent_url = f"http://127.0.0.1:{vmagent_port}"
        with running(argv, tmp_path / "vmagent.log", f"{vmagent_url}/health"):
            time.sleep(5)
            vm.stop()
            outage_start = time.time()
            time.sleep(OUTAGE_S)
            buffered = vmagent_metric(vmagent_port, "vmagent_remotewrite_pending_data_bytes")
            vm.start()
            outage_end = time.time()
            deadline = time.monotonic() + 30
            while vmagent_metric(vmagent_port, "vmagent_remotewrite_pending_data_bytes") > 0:
                assert time.monotonic() < deadline, "vmagent did not drain its buffer in 30 s"
                time.sleep(0.5)
            time.sleep(3)  # samples after the outage too
            try:
                fast = vm.export('erozgar_agent_info{site="TST-OUT"}')
                slow = vm.export('erozgar_interface_receive_bytes_total{site="TST-OUT"}')
                ups_series = vm.export('erozgar_ups_on_battery{site="TST-OUT"}')
            finally:
                vm.stop()
    assert buffered > 0, "nothing was buffered on disk during the outage"
    for name, series, interval in (
        ("erozgar_agent_info", fast, FAST_S),
        ("erozgar_ups_on_battery", ups_series, FAST_S),
        ("erozgar_interface_receive_bytes_total", slow, SLOW_S),
    ):
        assert len(series) == 1, (name, series)
        timestamps = series[0]["timestamps"]
        assert timestamps[0] / 1000 < outage_start - 2 and timestamps[-1] / 1000 > outage_end + 1
        largest = max(gaps(series))
        print(
            f"{name}: {len(timestamps)} samples every {interval:g}s across a "
            f"{outage_end - outage_start:.0f}s outage, largest gap {largest:.2f}s, "
            f"{buffered:.0f} bytes buffered"
        )
        assert largest < 2 * interval, f"{name}: a gap of {largest:.2f}s"


def vmalert_command(
    root: Path,
    vm: VictoriaMetrics,
    alertmanager_url: str,
    port: int,
    eval_s: float,
    sites: list[tuple[str, str, str, str]],
) -> list[str]:
    rules = root / "rules"
    rules.mkdir()
    for path in RULES.glob("*.yml"):
        shutil.copy(path, rules / path.name)
    render_sites(sites, rules / "erozgar-sites.yml")
    env = {
        "EROZGAR_SELECT_URL": vm.url,
        "EROZGAR_INSERT_URL": vm.url,
        "EROZGAR_ALERTMANAGER_URL": alertmanager_url,
        "EROZGAR_GRAFANA_URL": "http://127.0.0.1:3000",
    }
    argv = unit_command(DEPLOY / "systemd" / "erozgar-vmalert.service", env, {})
    assert flag(argv, "evaluationInterval") == "10s"  # the shipped value README reports
    return with_flags(
        argv,
        rule=f"{rules}/*.yml",
        evaluationInterval=f"{eval_s:g}s",
        httpListenAddr=f"127.0.0.1:{port}",
    )


def alertmanager_config(root: Path, sink: Sink, group_wait: str) -> Path:
    """The shipped alertmanager.yml with its outputs pointed at `sink` and a dead SMTP port."""
    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    password = root / "smtp-password"
    password.write_text("x")
    config["global"].update(
        smtp_smarthost=f"127.0.0.1:{free_tcp_port()}",
        smtp_auth_password_file=str(password),
        smtp_require_tls=False,
    )
    config["templates"] = [str(DEPLOY / "alertmanager" / "templates" / "*.tmpl")]
    config["route"]["group_wait"] = group_wait
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = sink.url + "/" + hook["url"].rsplit("/", 1)[1]
        for telegram in receiver.get("telegram_configs", []):
            telegram.update(api_url=sink.url + "/telegram", bot_token="test-token")
    path = root / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def alertmanager_command(config: Path, root: Path, port: int) -> list[str]:
    return [
        require("prometheus-alertmanager"),
        f"--config.file={config}",
        f"--storage.path={root / 'am-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]


def firing(alertname: str, receiver: str) -> Any:
    def match(path: str, body: Any) -> bool:
        return path == f"/{receiver}" and any(
            a["labels"]["alertname"] == alertname and a["status"] == "firing"
            for a in body.get("alerts", [])
        )

    return match


def test_mains_loss_reaches_the_site_admin_webhook(loop: LoopThread, tmp_path: Path) -> None:
    """UPS simulator loses mains -> the ErozgarUpsOnBattery notification at the webhook.
    Shortened here: UPS poll 1 s (shipped 5 s), vmagent fast job 1 s (10 s), vmalert 1 s
    (10 s), group_wait 1 s (10 s). As shipped: for: 10s, routing, templates, VM flags.
    With EROZGAR_SHIPPED_INTERVALS=1 every interval is the shipped one (about a minute)."""
    fast_s, slow_s, group_wait = (10.0, 60.0, "10s") if SHIPPED else (FAST_S, SLOW_S, "1s")
    ups = SimulatedUps("apc-smart-ups")
    devices = small_site(loop, ups)
    vm = VictoriaMetrics(tmp_path)
    vm.start()
    sink = Sink()
    am_port, vmalert_port, vmagent_port = free_tcp_port(), free_tcp_port(), free_tcp_port()
    am_config = alertmanager_config(tmp_path, sink, group_wait=group_wait)
    sites = [("TST-LAT", "Latency Test Centre", "test", "admin.lat@example.pk")]
    try:
        with (
            agent_process(agent_config("TST-LAT", tmp_path, devices), tmp_path, 2) as agent_port,
            running(
                alertmanager_command(am_config, tmp_path, am_port),
                tmp_path / "am.log",
                f"http://127.0.0.1:{am_port}/-/ready",
            ),
            running(
                vmalert_command(
                    tmp_path, vm, f"http://127.0.0.1:{am_port}", vmalert_port, fast_s, sites
                ),
                tmp_path / "vmalert.log",
                f"http://127.0.0.1:{vmalert_port}/health",
            ),
            running(
                vmagent_command(
                    tmp_path,
                    f"{vm.url}/api/v1/write",
                    "TST-LAT",
                    scrape_config(fast_s, slow_s, f"127.0.0.1:{agent_port}", {}),
                    vmagent_port,
                ),
                tmp_path / "vmagent.log",
                f"http://127.0.0.1:{vmagent_port}/health",
            ),
        ):
            deadline = time.monotonic() + 3 * fast_s + 30
            while not vm.query('erozgar_site_info{site="TST-LAT"}') or not vm.query(
                'erozgar_ups_on_battery{site="TST-LAT"} == 0'
            ):
                assert time.monotonic() < deadline, "no data reached the store in 30 s"
                time.sleep(0.5)
            assert sink.wait_for(firing("ErozgarUpsOnBattery", "site-admin"), 0) is None
            loop.call(lambda: ups.set_mains(False))
            cut = time.monotonic()
            got = sink.wait_for(firing("ErozgarUpsOnBattery", "site-admin"), 120)
            assert got is not None, (tmp_path / "vmalert.log").read_text()[-2000:]
            latency = got[2] - cut
            print(
                f"mains cut -> site-admin webhook: {latency:.1f}s "
                f"({'shipped' if SHIPPED else 'shortened'} intervals)"
            )
            (alert,) = [
                a for a in got[1]["alerts"] if a["labels"]["alertname"] == "ErozgarUpsOnBattery"
            ]
            assert alert["labels"]["site"] == "TST-LAT"
            assert alert["labels"]["admin_email"] == "admin.lat@example.pk"
            assert alert["labels"]["device"] == "ups-rack"
            assert alert["labels"]["severity"] == "warning"
            summary = alert["annotations"]["summary"]
            assert summary.startswith("TST-LAT: mains power lost, UPS ups-rack on battery, about ")
            assert summary.endswith(" left"), summary
            # Warnings go to the site admin only; the operations centre hears of criticals.
            assert sink.wait_for(firing("ErozgarUpsOnBattery", "pseb-noc"), 0) is None
    finally:
        vm.stop()
        sink.close()


def typical_site(loop: LoopThread) -> list[dict[str, Any]]:
    """2 routers (8 ports), 6 access switches (48 ports + 2 uplinks), 3 UPS: one centre."""
    devices: list[dict[str, Any]] = []
    for n in range(2):
        router = SimulatedRouter(
            f"router-{n + 1}",
            [SimInterface(f"ether{p}", 1e9, 5e6 * p, 1e6 * p) for p in range(1, 9)],
            community="budget",
        )
        port = loop.run(router.start(f"127.0.0.{n + 1}", 0))[1]
        devices.append(
            {
                "name": router.name,
                "address": f"127.0.0.{n + 1}:{port}",
                "community": "budget",
                "interfaces": [
                    {
                        "name": "ether1",
                        "role": "wan",
                        "capacity_down_mbps": 100,
                        "capacity_up_mbps": 20,
                    },
                    {"name": "ether2", "role": "uplink"},
                ],
            }
        )
    for n in range(6):
        switch = SimulatedRouter(
            f"switch-{n + 1}",
            [SimInterface(f"ge-0/0/{p}", 1e9, 1e5 * p, 2e5 * p) for p in range(1, 49)]
            + [SimInterface(f"xe-0/1/{p}", 10e9, 5e7, 5e7) for p in range(1, 3)],
            community="budget",
        )
        port = loop.run(switch.start("127.0.0.3", 0))[1]
        devices.append(
            {
                "name": switch.name,
                "address": f"127.0.0.3:{port}",
                "community": "budget",
                "interval": 2,
            }
        )
    for n in range(3):
        ups = SimulatedUps("apc-smart-ups", serial=f"AS00000000{n}")
        port = loop.run(ups.start("127.0.0.1", 0))[1]
        devices.append({"name": f"ups-{n + 1}", "address": f"127.0.0.1:{port}", "interval": 1})
    for device in devices[:2]:
        device["interval"] = 2
    return devices


def test_series_budget_of_a_typical_site(loop: LoopThread, tmp_path: Path) -> None:
    """The reference centre through the shipped vmagent config, real vmagent and
    VictoriaMetrics: what arrives is the lean set (the shipped relabelling as tests/relabel.py
    applies it to the agent's own /metrics), at most SERIES_BUDGET series, and the bytes per
    sample vmagent sends are measured (intervals shortened: fast 1 s, slow 2 s). README gives
    the per-day figure at shipped intervals; bench/lean_shipping.py measures it over minutes."""
    devices = typical_site(loop)
    vm = VictoriaMetrics(tmp_path)
    vm.start()
    vmagent_port = free_tcp_port()
    window_s = float(os.environ.get("EROZGAR_BUDGET_SECONDS", "15"))
    try:
        config = agent_config("TST-BUD", tmp_path, devices)
        with agent_process(config, tmp_path, len(devices)) as agent_port:
            time.sleep(3)  # rates need two polls
            argv = vmagent_command(
                tmp_path,
                f"{vm.url}/api/v1/write",
                "TST-BUD",
                scrape_config(FAST_S, SLOW_S, f"127.0.0.1:{agent_port}", {}),
                vmagent_port,
            )
            with running(argv, tmp_path / "vmagent.log", f"http://127.0.0.1:{vmagent_port}/health"):
                time.sleep(3)
                bytes0 = vmagent_metric(vmagent_port, "vmagent_remotewrite_bytes_sent_total")
                rows0 = vmagent_metric(
                    vmagent_port, "vmagent_remotewrite_rows_pushed_after_relabel_total"
                )
                time.sleep(window_s)
                sent = vmagent_metric(vmagent_port, "vmagent_remotewrite_bytes_sent_total") - bytes0
                rows = (
                    vmagent_metric(
                        vmagent_port, "vmagent_remotewrite_rows_pushed_after_relabel_total"
                    )
                    - rows0
                )
                exposed = scrape_series(agent_port)
        time.sleep(2)
        stored = vm.series('{site="TST-BUD", region="test"}')
        stored_n = int(vm.query('count({site="TST-BUD"})')[0]["value"][1])
        fast_n = int(vm.query('count({site="TST-BUD", job="erozgar-agent-fast"})')[0]["value"][1])
    finally:
        vm.stop()
    ours = {s for s in stored if s[0].startswith("erozgar_")}
    lean = set().union(*shipped(exposed).values())
    # What arrives is exactly the lean set: the access ports' summary, not their ports.
    assert ours == lean
    assert any(name == "erozgar_access_ports_up" for name, _ in ours)
    assert not [s for s in ours if ("role", "lan") in s[1]]
    assert len(exposed) > 5000  # the detail stays on the site
    per_sample = sent / rows
    slow_n = stored_n - fast_n
    per_day = per_sample * (fast_n * 86400 / 10 + slow_n * 86400 / 120)
    print(
        f"typical site: {len(exposed)} series on the site; {stored_n} shipped ({fast_n} every "
        f"10 s, {slow_n} every 120 s as shipped; {stored_n - len(ours)} of them vmagent's own); "
        f"{per_sample:.2f} bytes per sample measured over {rows:.0f} samples; "
        f"{per_day / 1e6:.1f} MB per day at shipped intervals"
    )
    assert stored_n <= SERIES_BUDGET
    # Measured 14-21 bytes over this short window (batching varies); twice that means a
    # label on every series or lost compression, not noise. The figure itself is bench's.
    assert 0 < per_sample < 40


class DetailSwitch:
    """The centre's per-site detail file (EROZGAR_DETAIL_URL/<site>.json) on a loopback port;
    `body` is what it serves, `stop` makes it unreachable."""

    def __init__(self, port: int) -> None:
        self.body = b"[]"
        switch = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(switch.body)))
                self.end_headers()
                self.wfile.write(switch.body)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def newest(vm: VictoriaMetrics, match: str) -> float:
    """Unix time of the newest sample of any series matching `match` (0: none)."""
    return max((s["timestamps"][-1] / 1000 for s in vm.export(match)), default=0.0)


def wait_until(what: str, predicate: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.5)


def test_detail_on_demand_switches_one_centre_and_back(loop: LoopThread, tmp_path: Path) -> None:
    """PSEB turns full per-port detail on for one centre and off again through the shipped
    detail job (its http_sd file served centrally per site), with real vmagent: unreachable at
    vmagent's start and later, the lean set ships on; the lean set never stops."""
    ups = SimulatedUps("apc-smart-ups")
    devices = small_site(loop, ups)
    switch = SimulatedRouter(
        "switch-1",
        [SimInterface(f"ge-0/0/{p}", 1e9, 1e5 * p, 2e5 * p) for p in range(1, 7)],
        community="fleet-test",
    )
    switch_port = loop.run(switch.start("127.0.0.1", 0))[1]
    devices.append(
        {"name": "switch-1", "address": f"127.0.0.1:{switch_port}", "community": "fleet-test",
         "interval": 1}
    )  # fmt: skip
    vm = VictoriaMetrics(tmp_path)
    vm.start()
    vmagent_port, detail_port = free_tcp_port(), free_tcp_port()
    site = "TST-DET"
    lan = f'{{__name__=~"erozgar_interface_.+", role="lan", site="{site}"}}'
    lean = f'erozgar_agent_info{{site="{site}"}}'
    detail: DetailSwitch | None = None
    try:
        with agent_process(agent_config(site, tmp_path, devices), tmp_path, 3) as agent_port:
            argv = vmagent_command(
                tmp_path,
                f"{vm.url}/api/v1/write",
                site,
                scrape_config(FAST_S, SLOW_S, f"127.0.0.1:{agent_port}", {}, detail=True),
                vmagent_port,
            )
            argv = with_flags(argv, promscrape__httpSDCheckInterval="1s")
            env = {
                "PATH": os.environ["PATH"],
                "EROZGAR_SITE": site,
                "EROZGAR_DETAIL_URL": f"http://127.0.0.1:{detail_port}/detail",
            }
            vmagent_url = f"http://127.0.0.1:{vmagent_port}/health"
            with running(argv, tmp_path / "vmagent.log", vmagent_url, env=env):
                # The centre unreachable at start: the lean set ships, no access port alone.
                wait_until(
                    "no lean data", lambda: vm.query(f'erozgar_access_ports_up{{site="{site}"}}')
                )
                time.sleep(3)
                assert vm.export(lan) == []
                detail = DetailSwitch(detail_port)
                time.sleep(3)  # [] is lean
                assert vm.export(lan) == []
                detail.body = b'[{"targets": ["agent"]}]'
                on = time.time()
                wait_until("detail never arrived", lambda: newest(vm, lan) > on, 30)
                # The centre unreachable again: vmagent keeps what it read, lean ships on.
                detail.stop()
                detail = None
                away = time.time()
                time.sleep(4)
                wait_until("lean stopped", lambda: newest(vm, lean) > away + 2, 15)
                # detail stays as vmagent last read it ("preserving the previous targets")
                wait_until("detail dropped", lambda: newest(vm, lan) > away + 4, 15)
                detail = DetailSwitch(detail_port)
                detail.body = b"[]"
                time.sleep(3)  # one sd check (1 s) and a scrape in flight
                off = time.time()
                time.sleep(5)
                assert newest(vm, lan) <= off, "detail still shipped after it was switched off"
                assert newest(vm, lean) > off + 2
                ports = {s["metric"]["interface"] for s in vm.export(lan)}
    finally:
        if detail is not None:
            detail.stop()
        vm.stop()
    # Detail brought the switch's access ports port by port (and the router's LAN ports).
    assert {f"ge-0/0/{p}" for p in range(1, 7)} <= ports
    assert (tmp_path / "vmagent.log").read_text().count("fatal") == 0


@pytest.mark.parametrize(
    "unit",
    ["erozgar-vmagent.service", "erozgar-vmalert.service", "erozgar-victoriametrics.service"],
)
def test_shipped_units_start_the_debian_binaries(unit: str) -> None:
    env = {
        name: "x"
        for name in (
            "EROZGAR_SITE",
            "EROZGAR_REGION",
            "EROZGAR_REMOTE_WRITE_URL",
            "EROZGAR_SELECT_URL",
            "EROZGAR_INSERT_URL",
            "EROZGAR_ALERTMANAGER_URL",
            "EROZGAR_GRAFANA_URL",
            "EROZGAR_RETENTION",
            "EROZGAR_VM_LISTEN",
        )
    }
    argv = unit_command(DEPLOY / "systemd" / unit, env, {"d": "/c", "S": "/s"})
    binary = require(Path(argv[0]).name)
    assert binary == argv[0]
    # Every flag the unit passes is one this binary knows (an unknown flag is fatal at start).
    shown = subprocess.run([binary, "-help"], capture_output=True, text=True)
    known = set(re.findall(r"^\s+-([\w.]+)", shown.stdout + shown.stderr, re.MULTILINE))
    for arg in argv[1:]:
        assert arg.lstrip("-").split("=", 1)[0] in known, arg


@contextmanager
def blackhole() -> Iterator[int]:
    """A loopback TCP port whose accept queue is full: connects to it time out, as to a host
    beyond a dead ISP line (a refused connect would prove the path)."""
    with socket.socket() as server, socket.socket() as queued:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        queued.connect(("127.0.0.1", port))  # fills the queue; it is never accepted
        yield port


@pytest.mark.timeout(240)  # the shipped for: 1m of ErozgarWanLinkDown is most of it
def test_isp_outage_during_a_power_cut_reaches_the_admin(loop: LoopThread, tmp_path: Path) -> None:
    """Mains is lost (the UPS has charge) and the ISP line is dead while the router still
    answers: through agent, vmagent, VictoriaMetrics, vmalert and Alertmanager the WAN-down
    alert arrives with cause="isp" beside the on-battery one. The shipped inhibition used to
    swallow it. Shortened intervals as in the mains test; `for:` and routing as shipped."""
    ups = SimulatedUps("apc-smart-ups")
    devices = small_site(loop, ups)
    devices[0]["powered_by"] = "ups-rack"
    vm = VictoriaMetrics(tmp_path)
    vm.start()
    sink = Sink()
    am_port, vmalert_port, vmagent_port = free_tcp_port(), free_tcp_port(), free_tcp_port()
    am_config = alertmanager_config(tmp_path, sink, group_wait="1s")
    sites = [("TST-ISP", "ISP Test Centre", "test", "admin.isp@example.pk")]
    try:
        with blackhole() as dead:
            config = agent_config("TST-ISP", tmp_path, devices)
            config["links"] = [
                {
                    "name": "ptcl",
                    "device": "core-router",
                    "interface": "ether1",
                    "interval": 2,
                    "count": 2,
                    "spacing": 0.1,
                    "timeout": 0.5,
                    "targets": [{"name": "gateway", "address": "127.0.0.1", "tcp_port": dead}],
                }
            ]
            with (
                agent_process(config, tmp_path, 2) as agent_port,
                running(
                    alertmanager_command(am_config, tmp_path, am_port),
                    tmp_path / "am.log",
                    f"http://127.0.0.1:{am_port}/-/ready",
                ),
                running(
                    vmalert_command(
                        tmp_path, vm, f"http://127.0.0.1:{am_port}", vmalert_port, FAST_S, sites
                    ),
                    tmp_path / "vmalert.log",
                    f"http://127.0.0.1:{vmalert_port}/health",
                ),
                running(
                    vmagent_command(
                        tmp_path,
                        f"{vm.url}/api/v1/write",
                        "TST-ISP",
                        scrape_config(FAST_S, SLOW_S, f"127.0.0.1:{agent_port}", {}),
                        vmagent_port,
                    ),
                    tmp_path / "vmagent.log",
                    f"http://127.0.0.1:{vmagent_port}/health",
                ),
            ):
                loop.call(lambda: ups.set_mains(False))
                on_battery = sink.wait_for(firing("ErozgarUpsOnBattery", "site-admin"), 60)
                assert on_battery is not None, (tmp_path / "vmalert.log").read_text()[-2000:]
                # for: 1m as shipped, then group_wait
                noc = sink.wait_for(firing("ErozgarWanLinkDown", "pseb-noc"), 120)
                admin = sink.wait_for(firing("ErozgarWanLinkDown", "site-admin"), 10)
                stored = vm.query('erozgar_wan_down_cause{site="TST-ISP"}')
    finally:
        vm.stop()
        sink.close()
    assert [r["metric"]["cause"] for r in stored] == ["isp"]
    for got in (noc, admin):
        assert got is not None, (tmp_path / "am.log").read_text()[-2000:]
        (alert,) = [a for a in got[1]["alerts"] if a["labels"]["alertname"] == "ErozgarWanLinkDown"]
        assert alert["labels"]["cause"] == "isp" and alert["labels"]["link"] == "ptcl"
        assert alert["annotations"]["summary"] == (
            "TST-ISP: internet link ptcl is down (the ISP: the router answers, the line beyond "
            "it does not)"
        )
