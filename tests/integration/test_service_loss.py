"""Losses of service and their causes through the real agent process: a simulated router,
switch and Modbus UPS on loopback, scraped from /metrics as vmagent would."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from simulators.snmp_router import SimInterface, SimulatedRouter
from simulators.ups import SimulatedUps

from .deploy_stack import agent_process, http_get
from .test_agent_process import LoopThread

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.close()


def samples(port: int) -> Samples:
    text = http_get(f"http://127.0.0.1:{port}/metrics").decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return (name, frozenset(labels.items()))


def causes(got: Samples, name: str) -> dict[str, str]:
    """device (or link/device/interface) -> cause, for the per-loss family `name`."""
    return {
        "/".join(v for k, v in sorted(labels) if k != "cause"): dict(labels)["cause"]
        for (n, labels), value in got.items()
        if n == name and value == 1
    }


def wait_for(
    port: int, what: str, ok: Callable[[Samples], bool], log: Path, seconds: float = 20
) -> Samples:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = samples(port)
        if ok(got):
            return got
        time.sleep(0.3)
    pytest.fail(
        f"{what}: not seen in {seconds:g} s; last scrape {got}; log: {log.read_text()[-3000:]}"
    )


def counts(got: Samples) -> dict[str, float]:
    return {c: got[key("erozgar_service_losses_total", cause=c)] for c in ("power", "isp", "lan")}


def test_wan_down_in_a_power_cut_is_the_isp_and_a_dead_battery_is_power(
    loop: LoopThread, tmp_path: Path
) -> None:
    router = SimulatedRouter(
        "core-router",
        [SimInterface("ether1", 1e9, 4e6, 1e6), SimInterface("ether2", 1e9, 1e6, 1e6)],
        community="svc",
    )
    on_mains = SimulatedRouter("sw-floor1", [SimInterface("ge-1", 1e9, 1e5, 1e5)], community="svc")
    on_ups = SimulatedRouter("sw-floor2", [SimInterface("ge-1", 1e9, 1e5, 1e5)], community="svc")
    ups = SimulatedUps("apc-smart-ups")
    router_port = loop.run(router.start("127.0.0.1", 0))[1]
    mains_port = loop.run(on_mains.start("127.0.0.1", 0))[1]
    ups_switch_port = loop.run(on_ups.start("127.0.0.1", 0))[1]
    ups_port = loop.run(ups.start("127.0.0.1", 0))[1]
    snmp = {"community": "svc", "interval": 1, "timeout": 0.3, "retries": 0}
    config = {
        "site": {"id": "TST-SVC"},
        "state_dir": str(tmp_path),
        "snmp": [
            {
                "name": "core-router",
                "address": f"127.0.0.1:{router_port}",
                "powered_by": "ups-rack",
                "interfaces": [{"name": "ether1", "role": "wan"}],
                **snmp,
            },
            {
                "name": "sw-floor1",
                "address": f"127.0.0.1:{mains_port}",
                "powered_by": "mains",
                **snmp,
            },
            {
                "name": "sw-floor2",
                "address": f"127.0.0.1:{ups_switch_port}",
                "powered_by": "ups-rack",
                **snmp,
            },
        ],
        "modbus": [{"name": "ups-rack", "address": f"127.0.0.1:{ups_port}", "interval": 1}],
    }
    log = tmp_path / "agent.log"
    with agent_process(config, tmp_path, 4) as port:
        quiet = wait_for(
            port, "service gauges", lambda g: key("erozgar_service_loss", cause="isp") in g, log
        )
        assert {
            c: quiet[key("erozgar_service_loss", cause=c)] for c in ("power", "isp", "lan")
        } == {"power": 0, "isp": 0, "lan": 0}

        # Mains lost, the UPS has charge; the ISP's line dies; the switch on mains goes dark;
        # the switch on the UPS stops answering (it has power: a cable, the LAN).
        loop.call(lambda: ups.set_mains(False))
        loop.call(lambda: router.set_oper("ether1", False))
        loop.run(on_mains.stop())
        loop.run(on_ups.stop())
        cut = wait_for(
            port,
            "isp, power and lan losses",
            lambda g: (
                causes(g, "erozgar_wan_down_cause") == {"core-router/ether1/": "isp"}
                and causes(g, "erozgar_device_down_cause")
                == {"sw-floor1": "power", "sw-floor2": "lan"}
            ),
            log,
            40,  # LAN is concluded by elimination after it has held 20 s (SETTLE_SECONDS)
        )
        assert cut[key("erozgar_ups_on_battery", device="ups-rack")] == 1
        assert cut[key("erozgar_service_loss", cause="isp")] == 1
        assert cut[key("erozgar_service_loss", cause="power")] == 1
        assert cut[key("erozgar_service_loss", cause="lan")] == 1
        # Each cause's episode is on record once it has lasted 20 s (SETTLE_SECONDS).
        # The causes start seconds apart (a dark switch is concluded after its failed polls),
        # so wait for all three, not the first.
        expected = {"power": 1, "isp": 1, "lan": 1}
        settled = wait_for(port, "settled", lambda g: counts(g) == expected, log, 40)
        assert counts(settled) == expected

        # The battery runs low and the router goes dark with it: now power explains the WAN,
        # and the switch on the UPS too.
        loop.call(lambda: setattr(ups, "charge_pct", 4.0))
        loop.run(router.stop())
        dark = wait_for(
            port,
            "router dark from power",
            lambda g: (
                causes(g, "erozgar_wan_down_cause") == {"core-router/ether1/": "power"}
                and causes(g, "erozgar_device_down_cause")
                == {"sw-floor1": "power", "sw-floor2": "power", "core-router": "power"}
            ),
            log,
        )
        assert dark[key("erozgar_service_loss", cause="isp")] == 0
        assert dark[key("erozgar_service_loss", cause="lan")] == 0

        # Mains is back and the router answers again; the switches are still dark, as after a
        # cut while they boot: still the cut's, not the LAN's (for up to 10 minutes).
        loop.call(lambda: ups.set_mains(True))
        loop.call(lambda: router.set_oper("ether1", True))
        loop.run(router.start("127.0.0.1", router_port))
        back = wait_for(
            port,
            "router back, switches booting",
            lambda g: (
                causes(g, "erozgar_wan_down_cause") == {}
                and causes(g, "erozgar_device_down_cause")
                == {"sw-floor1": "power", "sw-floor2": "power"}
                # the UPS is polled on its own beat: the router may answer before it reports
                and g[key("erozgar_ups_on_battery", device="ups-rack")] == 0
            ),
            log,
        )
        assert counts(back) == {"power": 1, "isp": 1, "lan": 1}
    text = log.read_text()
    assert (
        "service lost: core-router ether1, cause isp: its wan port is down while "
        "core-router answers" in text
    )
    assert "cause now lan" not in text  # no booting switch, no router losing its UPS, was lan
    assert "Traceback" not in text
