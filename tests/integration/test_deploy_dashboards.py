"""Every panel query of the shipped Grafana dashboards against a real Prometheus.

Prometheus (Debian) scrapes a real `erozgar-agent run` (a simulated router with its WAN link
probed over TCP, and a UPS that loses mains every 20 s) with the shipped scrape config
(intervals shortened to 1 s, and the site/region labels vmagent would add), loads the shipped
rules and the example site inventory, and answers every panel's query with the template
variables set to real values: each query must parse and return data.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.error
import urllib.parse
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import yaml

from agent import __version__
from simulators.genset import SimulatedGenset
from simulators.speedtest import SpeedtestServer
from simulators.ups import PeriodicOutages, SimulatedUps

from .conftest import require
from .deploy_stack import (
    DEPLOY,
    RULES,
    agent_process,
    free_tcp_port,
    http_get,
    running,
    scrape_config,
)
from .test_agent_process import LoopThread
from .test_deploy_fleet import agent_config, small_site

DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
SITE = "DEMO-001"  # as in deploy/fleet/sites.example.csv
# Grafana's built-in variables, for a Prometheus scraped every second for about 30 s.
BUILTINS = {"$__rate_interval": "5s", "$__interval": "2s", "$__range": "20s"}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def queries() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, expr) for every target of every panel."""
    found = []
    for path in DASHBOARDS:
        for panel in panels(json.loads(path.read_text())):
            for target in panel.get("targets", []):
                found.append((path.name, panel["title"], target["expr"]))
    return found


def test_dashboards_are_provisionable() -> None:
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/erozgar.yml").read_text())
    source = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/erozgar.yml").read_text())
    uid = source["datasources"][0]["uid"]
    assert provider["providers"][0]["type"] == "file"
    assert [p.name for p in DASHBOARDS] == [
        "erozgar-centre.json",
        "erozgar-device.json",
        "erozgar-fleet.json",
        "erozgar-isp.json",
    ]
    uids = set()
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        uids.add(dashboard["uid"])
        for panel in panels(dashboard):
            if panel["type"] != "row":
                assert panel["datasource"]["uid"] == uid, (path.name, panel["title"])
            ids = [p["id"] for p in panels(dashboard)]
            assert len(ids) == len(set(ids)), path.name
    assert len(uids) == len(DASHBOARDS)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[str]]]:
    """(Prometheus URL, the agent's device names) once ~25 s of data and rules exist."""
    root = tmp_path_factory.mktemp("dashboards")
    prom_port = free_tcp_port()
    rules = root / "rules"
    rules.mkdir()
    for path in RULES.glob("*.yml"):
        groups = yaml.safe_load(path.read_text())
        for group in groups["groups"]:
            group.pop("interval", None)  # hourly groups too: at the global 1 s, as the rest
        (rules / path.name).write_text(yaml.safe_dump(groups))
    sites = subprocess.run(
        [
            "python3",
            str(DEPLOY / "fleet" / "render_sites.py"),
            str(DEPLOY / "fleet" / "sites.example.csv"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    (rules / "erozgar-sites.yml").write_text(sites.stdout)
    loop = LoopThread()
    # The grid goes for 8 s every 20 s: the UPS is on battery until the generator behind the
    # transfer switch takes the load 3 s into each cut, so outage counters and the generator's
    # start delay move during the test.
    ups = SimulatedUps("apc-smart-ups")
    genset = SimulatedGenset(start_delay_seconds=3, schedule=PeriodicOutages(20, 8))
    genset.feed(ups)
    devices = small_site(loop, ups)
    genset_port = loop.run(genset.start("127.0.0.1", 0))[1]
    state = root / "state"
    state.mkdir()
    agent = agent_config(SITE, state, devices)
    agent["genset"] = [{"name": "genset", "address": f"127.0.0.1:{genset_port}", "interval": 1}]
    # A WAN link probed by TCP connect to a loopback port (no ICMP permission needed), its
    # capacity tested at once over HTTP: the window opened 31 minutes ago, so the hour's run
    # (spread over the first half of its slot) is due at the first tick.
    speedtest = SpeedtestServer()
    speed = loop.run(speedtest.start("127.0.0.1", 0))[1]
    opened = datetime.now() - timedelta(minutes=31)
    agent["links"] = [
        {"name": "isp-main", "isp": "PTCL", "device": "core-router", "interface": "ether1",
         "interval": 1, "count": 2, "spacing": 0.1, "timeout": 0.5,
         "targets": [{"name": "gateway", "address": "127.0.0.1", "tcp_port": prom_port}],
         "capacity_test": {
             "download_url": f"http://127.0.0.1:{speed}/10MB.bin",
             "upload_url": f"http://127.0.0.1:{speed}/upload",
             "window": f"{opened:%H:%M}-{opened - timedelta(minutes=1):%H:%M}",
             "runs_per_day": 24, "duration": 2, "busy_threshold": 1,
         }}
    ]  # fmt: skip
    url = f"http://127.0.0.1:{prom_port}"
    with agent_process(agent, root, 2) as agent_port:
        config = yaml.safe_load(
            scrape_config(1, 1, f"127.0.0.1:{agent_port}", {"site": SITE, "region": "lab"})
        )
        config["global"]["evaluation_interval"] = "1s"
        config["rule_files"] = [str(rules / "*.yml")]
        (root / "prometheus.yml").write_text(yaml.safe_dump(config))
        prom = [
            require("prometheus"),
            f"--config.file={root / 'prometheus.yml'}",
            f"--storage.tsdb.path={root / 'data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ]
        with running(prom, root / "prometheus.log", f"{url}/-/ready"):
            time.sleep(25)  # rates, increase() over 20 s, and the recording rules
            names = sorted(
                r["metric"]["device"] for r in query(url, f'erozgar_device_up{{site="{SITE}"}}')
            )
            yield url, names
    loop.run(speedtest.stop())
    loop.close()


def query(url: str, expr: str) -> list[dict[str, Any]]:
    try:
        body = http_get(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    except urllib.error.HTTPError as error:
        pytest.fail(f"{expr}: {error.read().decode()}")
    return json.loads(body)["data"]["result"]


def substitute(expr: str, device: str) -> str:
    for name, value in BUILTINS.items():
        expr = expr.replace(name, value)
    expr = expr.replace("$region", ".*").replace("$isp", ".*")  # "All"
    return expr.replace("$site", SITE).replace("$device", device)


@pytest.mark.parametrize(("dashboard", "title", "expr"), queries())
def test_every_panel_query_returns_data(
    prometheus: tuple[str, list[str]], dashboard: str, title: str, expr: str
) -> None:
    url, devices = prometheus
    assert devices == ["core-router", "genset", "ups-rack"]
    # The device view serves routers, switches, UPS units and gensets: a port panel has data
    # for the SNMP devices, a battery panel for the UPS; each query must have data for one.
    candidates = devices if "$device" in expr else devices[:1]
    results = {device: query(url, substitute(expr, device)) for device in candidates}
    assert any(results.values()), f"{dashboard} / {title}: no data for {expr}"
    assert not re.search(r"\$\w+", substitute(expr, devices[0])), "an unknown variable"


def test_fleet_dashboard_counts_centres_by_agent_version(
    prometheus: tuple[str, list[str]],
) -> None:
    """PSEB sees which version the centres run: one centre here, on this agent's version."""
    url, _ = prometheus
    (expr,) = [e for _, title, e in queries() if title == "Agent versions across centres"]
    (row,) = query(url, expr)
    assert row["metric"] == {"version": __version__} and row["value"][1] == "1"
