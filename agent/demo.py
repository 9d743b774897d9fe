"""`erozgar-agent demo`: a simulated centre on loopback, polled by the real agent.

Two SNMP devices (a MikroTik-like core router with a WAN link whose traffic follows the day's
changes over the minute, and an old access switch with 32-bit counters only), an APC Smart-UPS
on Modbus/TCP, a standby generator behind a DSE controller and a Deye hybrid inverter on the
same grid: the grid goes for a while every few minutes, as in load-shedding, the UPS carries the
centre until the generator takes the load, and the inverter's load moves to its battery. The
WAN link is probed as a site's would be: a TCP target, a DNS resolver (a small in-process one
standing for the ISP's) asked for A and AAAA, and a web page whose first byte takes 120 ms; its
capacity is tested once an hour against an iperf3 server the demo starts (the HTTP speed-test
endpoint where iperf3 is not installed). The ISP's line (the router's ether1, the link "ptcl")
drops now and then: those outages go into the outage ledger in the demo's state dir, and the
demo prints the `erozgar-agent report` command that turns them into the month's page.
Everything speaks the real protocols on 127.0.0.1; the agent is the same code as `run`.

The simulators are imported inside the functions that build the centre, so that importing the
product never loads them (tests/unit/test_import_boundaries.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from .config import parse_config
from .daemon import serve

if TYPE_CHECKING:
    from simulators.snmp_router import SimulatedRouter

log = logging.getLogger(__name__)

_DEMO_COMMUNITY = "demo-community"


def _centre() -> tuple[SimulatedRouter, SimulatedRouter]:
    from simulators.snmp_router import SimInterface, SimulatedRouter

    router = SimulatedRouter(
        name="core-router",
        interfaces=[
            SimInterface(name="ether1", speed_bps=1e9, rx_bps=60e6, tx_bps=12e6, alias="ISP fibre"),
            SimInterface(
                name="ether2", speed_bps=1e9, rx_bps=10e6, tx_bps=50e6, alias="to sw-floor1"
            ),
            SimInterface(
                name="ether3", speed_bps=1e9, rx_bps=1e6, tx_bps=3e6, alias="training room"
            ),
            SimInterface(name="wlan1", speed_bps=300e6, rx_bps=4e6, tx_bps=20e6, alias="Wi-Fi"),
        ],
        community=_DEMO_COMMUNITY,
        wobble=0.5,  # rates swing over a minute so the graphs move
    )
    switch = SimulatedRouter(
        name="sw-floor1",
        interfaces=[
            SimInterface(name=f"port{n}", speed_bps=100e6, rx_bps=2e6 * n, tx_bps=0.5e6 * n)
            for n in range(1, 9)
        ],
        community=_DEMO_COMMUNITY,
        hc_counters=False,
        sys_object_id="1.3.6.1.4.1.11863.1.1.3",  # TP-Link-like
    )
    return router, switch


def _iperf3_server() -> tuple[subprocess.Popen[bytes] | None, int]:
    """`iperf3 -s` on a free loopback port, or (None, 0) where iperf3 is not installed."""
    binary = shutil.which("iperf3")
    if binary is None:
        return None, 0
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [binary, "-s", "-B", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return server, port


def _all_day_from_now() -> str:
    """A capacity-test window that opened 31 minutes ago and lasts all day: with 24 runs, the
    first run's start (spread over the first half of its hour) has come, so it runs at once."""
    start = datetime.datetime.now() - datetime.timedelta(minutes=31)
    return f"{start:%H:%M}-{start - datetime.timedelta(minutes=1):%H:%M}"


async def _isp_outages(router: SimulatedRouter, every: float, length: float) -> None:
    """The ISP's line drops for `length` seconds at the start of every `every` seconds, the
    first soon after the start, so the demo shows one at once: the router still answers, so
    the agent puts the loss on the ISP."""
    while True:
        await asyncio.sleep(min(5.0, every - length))
        router.set_oper("ether1", False)
        await asyncio.sleep(length)
        router.set_oper("ether1", True)
        await asyncio.sleep(max(0.0, every - length - 5.0))


async def run_demo(
    listen: tuple[str, int],
    outage_every: float,
    outage_length: float,
    isp_outage_every: float = 300,
    isp_outage_length: float = 40,
) -> None:
    from simulators.dns_server import SimulatedDns
    from simulators.genset import SimulatedGenset
    from simulators.inverter import SimulatedInverter
    from simulators.speedtest import SpeedtestServer
    from simulators.ups import PeriodicOutages, SimulatedUps
    from simulators.web import Page, SimulatedWeb

    router, switch = _centre()
    ups = SimulatedUps(profile_name="apc-smart-ups")
    # The generator takes the load a while into each cut (a quarter of it, at most 20 s).
    start_delay = min(20.0, outage_length / 4)
    genset = SimulatedGenset(
        start_delay_seconds=start_delay, schedule=PeriodicOutages(outage_every, outage_length)
    )
    genset.feed(ups)
    router_host, router_port = await router.start("127.0.0.1", 0)
    switch_host, switch_port = await switch.start("127.0.0.2", 0)
    ups_host, ups_port = await ups.start("127.0.0.1", 0)
    genset_host, genset_port = await genset.start("127.0.0.1", 0)
    # a hybrid inverter on the same grid: a little PV, so the load moves grid <-> battery
    inverter = SimulatedInverter("deye-sunsynk-1p", pv_watts=300.0, grid_on=ups.mains_on)
    inverter_host, inverter_port = await inverter.start("127.0.0.1", 0)
    # what the link's DNS and HTTP probes reach: a resolver and a web server on loopback
    resolver = SimulatedDns({"www.pseb.test": ["127.0.0.1", "::1"]})
    resolver_host, resolver_port = await resolver.start("127.0.0.1", 0)
    web = SimulatedWeb({"/": Page(body=b"e-Rozgar " * 1000, delay=0.12)})
    web_host, web_port = await web.start("127.0.0.1", 0)
    speedtest = SpeedtestServer()
    speed_host, speed_port = await speedtest.start("127.0.0.1", 0)
    iperf3, iperf3_port = _iperf3_server()
    capacity_test = {
        "download_url": f"http://{speed_host}:{speed_port}/10MB.bin",
        "upload_url": f"http://{speed_host}:{speed_port}/upload",
        **({"iperf3": f"127.0.0.1:{iperf3_port}"} if iperf3 else {}),
        "window": _all_day_from_now(),
        "runs_per_day": 24,
        "duration": 3,
        "busy_threshold": 1,  # the simulated WAN port is always busy
        "max_bytes_per_day": 10**12,  # loopback moves gigabytes a second
    }
    state_dir = tempfile.mkdtemp(prefix="erozgar-demo-")
    settings = {
        "site": {"id": "DEMO-001", "name": "e-Rozgar Centre (simulated)"},
        "listen": f"{listen[0]}:{listen[1]}",
        "state_dir": state_dir,
        "snmp": [
            {
                "name": "core-router",
                "address": f"{router_host}:{router_port}",
                "community": _DEMO_COMMUNITY,
                "interval": 5,
                "interfaces": [
                    {
                        "name": "ether1",
                        "role": "wan",
                        "capacity_down_mbps": 100,
                        "capacity_up_mbps": 20,
                    },
                    {"name": "ether2", "role": "uplink"},
                ],
            },
            {
                "name": "sw-floor1",
                "address": f"{switch_host}:{switch_port}",
                "community": _DEMO_COMMUNITY,
                "interval": 10,
            },
        ],
        "modbus": [
            {
                "name": "ups-rack",
                "address": f"{ups_host}:{ups_port}",
                "unit": 1,
                "profile": "apc-smart-ups",
                "interval": 5,
                # The simulated battery's datasheet, so battery health has a nameplate.
                "battery_runtimecal": list(ups.runtimecal()),
            },
        ],
        "genset": [
            {"name": "genset", "address": f"{genset_host}:{genset_port}", "interval": 5},
        ],
        "inverter": [
            {
                "name": "inverter-roof",
                "address": f"{inverter_host}:{inverter_port}",
                "profile": "deye-sunsynk-1p",
                "interval": 5,
            },
        ],
        "links": [
            {
                "name": "ptcl",
                "isp": "PTCL",
                "device": "core-router",
                "interface": "ether1",
                "interval": 10,
                "count": 3,
                "spacing": 0.2,
                "targets": [{"name": "web", "address": web_host, "tcp_port": web_port}],
                "dns": {
                    "query": "www.pseb.test",
                    "types": ["A", "AAAA"],
                    "resolvers": [{"name": "isp", "address": f"{resolver_host}:{resolver_port}"}],
                },
                "http": [{"name": "pseb", "url": f"http://{web_host}:{web_port}/"}],
                "capacity_test": capacity_test,
            },
        ],
    }
    config = parse_config(settings, source="demo")
    # the config as a file, for `erozgar-agent report` on the demo's ledger
    config_file = Path(state_dir) / "demo.yml"
    config_file.touch(mode=0o600)  # it holds the community
    config_file.write_text(yaml.safe_dump(settings), encoding="utf-8")
    print(
        f"Simulated centre DEMO-001 is up: core-router on udp {router_host}:{router_port}, "
        f"sw-floor1 on udp {switch_host}:{switch_port}, ups-rack (APC, Modbus/TCP) on "
        f"{ups_host}:{ups_port}, genset (DSE, Modbus/TCP) on {genset_host}:{genset_port}, "
        f"inverter-roof (Deye, Modbus/TCP) on {inverter_host}:{inverter_port}, link ptcl "
        f"probed by TCP, DNS (udp {resolver_host}:{resolver_port}) and HTTP "
        f"(http://{web_host}:{web_port}/); the grid goes "
        f"for {outage_length:g} s every {outage_every:g} s, the generator takes the load "
        f"{start_delay:g} s into each cut; the ISP's line drops for {isp_outage_length:g} s every "
        f"{isp_outage_every:g} s; the link is capacity-tested every hour "
        f"({'iperf3' if iperf3 else 'HTTP'} on 127.0.0.1).\n"
        f"Metrics: http://{listen[0]}:{listen[1]}/metrics   (Ctrl-C to stop)\n"
        f"Monthly report: erozgar-agent report --config {config_file} "
        f"--month {time.strftime('%Y-%m')} --out report.html",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    outages = asyncio.create_task(_isp_outages(router, isp_outage_every, isp_outage_length))
    try:
        await serve(config, listen, stop)
    finally:
        outages.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await outages
        await asyncio.gather(
            router.stop(),
            switch.stop(),
            ups.stop(),
            genset.stop(),
            inverter.stop(),
            resolver.stop(),
            web.stop(),
            speedtest.stop(),
            return_exceptions=True,
        )
        if iperf3 is not None:
            iperf3.terminate()
            try:
                iperf3.wait(timeout=5)
            except subprocess.TimeoutExpired:
                iperf3.kill()
                iperf3.wait()
