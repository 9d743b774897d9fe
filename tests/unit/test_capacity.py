"""Capacity tests: when one may run, what its result says against the contract, what survives a
restart, and how iperf3 is asked and read. Pure logic, no network."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from agent.checks.capacity import (
    Budget,
    CapacityCheck,
    CapacityResult,
    busiest,
    contract_bps,
    describe,
    due,
    estimate_bytes,
    spread_of,
    window_day,
)
from agent.config import CapacityTestSettings, ConfigError, parse_config
from agent.persist import JsonStateFile
from collectors.capacity import Endpoint, iperf3_command, parse_iperf3
from collectors.probe import UNBOUND, Binding

PKT = datetime.fromisoformat("2026-11-30T00:00:00+05:00").tzinfo  # Pakistan: UTC+5


def at(clock: str, day: str = "2026-11-30") -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}:00").replace(tzinfo=PKT)


def settings(**keys: object) -> CapacityTestSettings:
    return CapacityTestSettings.model_validate({"iperf3": "192.0.2.9", **keys})


NOTHING_USED = Budget("")


def check(test: CapacityTestSettings, now: datetime, budget: Budget = NOTHING_USED, **kw: object):
    options = {"estimate_bytes": 100_000_000, "busy": None, "on_battery": False, **kw}
    return due(test, now, budget, **options)  # type: ignore[arg-type]


def test_runs_only_inside_the_local_window():
    test = settings()  # 02:00-05:00
    assert check(test, at("01:59")).why == "outside the window 02:00-05:00"
    assert check(test, at("02:00")).run
    assert check(test, at("04:59")).run
    assert not check(test, at("05:00")).run


def test_a_window_across_midnight_counts_against_the_day_it_began():
    test = settings(window="23:00-01:00")
    assert window_day(test, at("23:30")) == at("23:30").date()
    assert str(window_day(test, at("00:30", "2026-12-01"))) == "2026-11-30"
    done = Budget("2026-11-30", runs=1)
    assert check(test, at("00:30", "2026-12-01"), done).why == "1 of 1 runs done today"
    assert check(test, at("23:10", "2026-12-01"), done).run  # the next night's window


def test_runs_spread_over_the_window_and_stop_at_runs_per_day():
    test = settings(runs_per_day=3)  # slots at 02:00, 03:00, 04:00
    one = Budget("2026-11-30", runs=1, bytes=1)
    assert check(test, at("02:30"), one).why == "run 2 is due later in the window"
    assert check(test, at("03:00"), one).run
    assert not check(test, at("04:30"), Budget("2026-11-30", runs=3)).run
    assert check(test, at("02:00", "2026-12-01"), Budget("2026-11-30", runs=3)).run  # new day


def test_a_fleet_spreads_its_start_over_the_first_half_of_each_slot():
    test = settings(runs_per_day=2)  # slots of 90 minutes from 02:00 and 03:30
    assert not check(test, at("02:44"), spread=0.99).run  # starts at 02:44:33
    assert check(test, at("02:45"), spread=0.99).run
    assert check(test, at("02:00"), spread=0.0).run
    second = Budget("2026-11-30", runs=1)
    assert not check(test, at("03:40"), second, spread=0.5).run  # starts at 03:52:30
    assert check(test, at("03:53"), second, spread=0.5).run
    shares = [spread_of(f"SITE-{n:03}", "ptcl") for n in range(200)]
    assert all(0 <= share < 1 for share in shares)
    assert spread_of("SITE-001", "ptcl") == spread_of("SITE-001", "ptcl")  # stable
    assert max(shares) - min(shares) > 0.9  # spread over the whole range


def test_no_test_that_could_pass_the_days_byte_budget():
    test = settings(runs_per_day=4, max_bytes_per_day=250_000_000)
    spent = Budget("2026-11-30", runs=1, bytes=200_000_000)
    decision = check(test, at("03:00"), spent, estimate_bytes=100_000_000)
    assert not decision.run
    assert decision.why.startswith("the day's budget: 200000000 of 250000000 bytes used")
    assert check(test, at("03:00"), spent, estimate_bytes=50_000_000).run


def test_waits_while_the_line_is_busy_or_the_centre_on_battery():
    test = settings(busy_threshold=0.3)
    assert check(test, at("02:10"), busy=0.45).why.startswith("the line is busy (45% of its")
    assert check(test, at("02:10"), busy=0.29).run
    assert check(test, at("02:10"), on_battery=True).why == "the centre is on battery"


def test_busiest_keeps_only_the_last_minutes():
    samples = deque([(0.0, 0.9), (200.0, 0.2), (290.0, 0.1)])
    assert busiest(samples, 300.0, 5) == 0.9
    assert busiest(samples, 360.0, 5) == 0.2  # the 0.9 at t=0 is over 5 min old
    assert busiest(deque(), 0.0, 5) is None


def test_estimate_from_the_contract_else_the_previous_test():
    test = settings(duration=10)
    # 100 + 20 Mb/s for 10 s is 150 MB; an ISP may burst to twice its contract
    assert estimate_bytes(test, (100e6, 20e6), 7) == 300_000_000
    assert estimate_bytes(test, (None, None), 7) == 7


def result(down: float | None, up: float | None, error: str = "") -> CapacityResult:
    return CapacityResult("ptcl", "PTCL", 1.7e9, "iperf3", down, up, 0.025, 100e6, 20e6,
                          150_000_000, error)  # fmt: skip


def test_verdict_against_the_contract_share():
    assert result(95e6, 19e6).verdict(0.8) == "pass"
    assert result(79e6, 19e6).verdict(0.8) == "below"  # either direction under 80 %
    assert result(95e6, 15e6).verdict(0.8) == "below"
    assert result(95e6, None, "link ptcl: upload: refused").verdict(0.8) == "error"
    assert result(79e6, 19e6).ratio("download") == pytest.approx(0.79)


def test_describe_says_rates_contract_and_verdict():
    assert describe(result(95e6, 15e6), 0.8) == (
        "link ptcl: download 95.0 of 100.0 (95%) Mb/s, upload 15.0 of 20.0 (75%) Mb/s, "
        "latency under load 25.0 ms, 150.0 MB by iperf3: BELOW 80% OF THE CONTRACT"
    )
    refused = "link ptcl: unable to connect to server: Connection refused"
    failed = CapacityResult("ptcl", None, 1.0, "", None, None, None, None, None, 0, refused)
    assert describe(failed, 0.8) == (
        "link ptcl: unable to connect to server: Connection refused (FAIL)"
    )


LINK = {"name": "ptcl", "device": "r", "interface": "ether1",
        "targets": [{"name": "gw", "address": "10.0.0.1"}]}  # fmt: skip


def config_with(port: dict, test: dict):
    return parse_config({
        "site": {"id": "S"},
        "snmp": [{"name": "r", "address": "10.0.0.1", "community": "c",
                  "interfaces": [{"name": "ether1", "role": "wan", **port}]}],
        "links": [{**LINK, "capacity_test": {"iperf3": "192.0.2.9", **test}}],
    })  # fmt: skip


def test_contract_from_the_router_port_else_the_test_block():
    config = config_with({"capacity_down_mbps": 100, "capacity_up_mbps": 20}, {})
    assert contract_bps(config, config.links[0]) == (100e6, 20e6)
    config = config_with({}, {"capacity_down_mbps": 50, "capacity_up_mbps": 10})
    assert contract_bps(config, config.links[0]) == (50e6, 10e6)
    with pytest.raises(ConfigError) as caught:
        config_with({"capacity_down_mbps": 100}, {"capacity_down_mbps": 50})
    assert caught.value.problems == [
        "config: links[0].capacity_test.capacity_down_mbps: r port ether1 states the contract "
        "already; give it in one place"
    ]


def test_a_speed_test_url_carries_no_password():
    with pytest.raises(ConfigError) as caught:
        config_with({}, {"download_url": "https://u:secret-pass@speed.example.pk/10MB.bin"})
    assert caught.value.problems == [
        "config: links[0].capacity_test.download_url: no user:password@ here: the speed-test "
        "server takes no login"
    ]


def test_budget_counters_and_results_survive_a_restart(tmp_path: Path):
    config = config_with({"capacity_down_mbps": 100, "capacity_up_mbps": 20}, {})
    link, path = config.links[0], tmp_path / "capacity-ptcl.json"
    first = CapacityCheck(link, JsonStateFile(path))
    first.record(result(95e6, 19e6), at("02:05").date())
    first.record(result(None, None, "link ptcl: refused"), at("03:05").date())
    again = CapacityCheck(link, JsonStateFile(path))
    assert again.budget == Budget("2026-11-30", runs=2, bytes=300_000_000)
    status = again.status()
    assert status.latest == result(None, None, "link ptcl: refused")
    assert status.last_success == result(95e6, 19e6)
    assert status.tests == (("iperf3", "error", 1), ("iperf3", "pass", 1))
    assert status.bytes_total == 300_000_000
    # the next day starts a fresh budget
    again.record(result(95e6, 19e6), at("02:05", "2026-12-01").date())
    assert again.budget == Budget("2026-12-01", runs=1, bytes=150_000_000)


def test_a_corrupt_state_file_is_set_aside(tmp_path: Path):
    config = config_with({}, {})
    path = tmp_path / "capacity-ptcl.json"
    path.write_text(json.dumps({"version": 1, "budget": {"day": 3}}))
    store = JsonStateFile(path)
    fresh = CapacityCheck(config.links[0], store)
    assert fresh.budget == Budget("") and store.errors["corrupt"] == 1
    assert list(tmp_path.glob("capacity-ptcl.json.corrupt-*"))


def test_iperf3_command_binds_reverses_and_keeps_the_password_off_it():
    endpoint = Endpoint(("192.0.2.9", 5201), username="erozgar", password="s3cret-pass",
                        rsa_public_key_path="/etc/k.pem")  # fmt: skip
    down = iperf3_command("iperf3", endpoint, "download", 10, Binding("10.0.0.2", None, "wan0"))
    assert down[:8] == ["iperf3", "-c", "192.0.2.9", "-p", "5201", "-J", "-t", "10"]
    assert "-R" in down
    assert down[down.index("-B") + 1] == "10.0.0.2"
    assert down[down.index("--bind-dev") + 1] == "wan0"
    assert down[down.index("--username") + 1] == "erozgar"
    assert "s3cret-pass" not in " ".join(down)
    assert "-R" not in iperf3_command("iperf3", endpoint, "upload", 10, UNBOUND)


def test_parse_iperf3_reads_the_receivers_rate_or_its_error():
    good = {"end": {"sum_sent": {"bytes": 25_000_000, "bits_per_second": 2.1e7},
                    "sum_received": {"bytes": 24_900_000, "bits_per_second": 1.99e7}}}  # fmt: skip
    leg = parse_iperf3(json.dumps(good))
    assert (leg.bps, leg.bytes, leg.error) == (1.99e7, 25_000_000, "")
    refused = {"start": {}, "end": {}, "error": "unable to connect to server: Connection refused"}
    leg = parse_iperf3(json.dumps(refused))
    assert (leg.bps, leg.error) == (None, "unable to connect to server: Connection refused")
    assert (
        parse_iperf3("iperf3: error - boom\n").error == "iperf3 gave no JSON: iperf3: error - boom"
    )


def test_a_reload_adds_replaces_and_removes_the_links_test_job(tmp_path: Path):
    from agent.fleet import Fleet
    from agent.schedule import MonotonicScheduler
    from agent.state import AgentState

    def with_test(**test: object):
        link = {**LINK, "device": None, "interface": None}
        if test:
            link["capacity_test"] = {"iperf3": "192.0.2.9", **test}
        return parse_config(
            {"site": {"id": "S"}, "state_dir": str(tmp_path), "links": [link]}
        )  # fmt: skip

    async def scenario() -> list[str]:
        state = AgentState("S", "", "0")
        fleet = Fleet(state, MonotonicScheduler(), lambda *args: None)  # type: ignore[arg-type,return-value]
        seen, before = [], None
        configs = (with_test(), with_test(duration=5), with_test(duration=5),
                   with_test(duration=6), with_test())  # fmt: skip
        for config in configs:
            await fleet.apply(config)
            job = fleet.scheduler.get_job("capacity:ptcl")
            if job is None:
                seen.append(f"none, exported: {'ptcl' in state.capacity}")
                continue
            tester = job.func.__self__  # type: ignore[attr-defined]
            kept = "kept" if tester is before else "new"
            seen.append(f"{kept} {tester.test.duration:g} s, exported: {'ptcl' in state.capacity}")
            before = tester
        return seen

    assert asyncio.run(scenario()) == [
        "none, exported: False",  # no capacity_test: no job
        "new 5 s, exported: True",
        "kept 5 s, exported: True",  # unchanged: the same tester (its samples, its budget)
        "new 6 s, exported: True",  # changed: a tester with the new settings
        "none, exported: False",  # removed, and its metrics gone
    ]


def test_the_daemon_job_waits_on_battery_and_while_the_port_is_busy(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    """CapacityTester reads the power source and the port's utilisation from the agent's
    state; neither case starts a test (which would fail here: nothing listens on port 9)."""
    from types import MappingProxyType

    from agent.checks.bandwidth import InterfaceStatus
    from agent.checks.capacity import CapacityTester
    from agent.checks.centre_power import CentrePowerStatus
    from agent.state import AgentState, DeviceState, RouterStatus

    now = datetime.now()
    start = now - timedelta(minutes=31)  # past the fleet spread of its one run
    window = f"{start:%H:%M}-{start + timedelta(hours=1):%H:%M}"
    config = parse_config({
        "site": {"id": "S"}, "state_dir": str(tmp_path),
        "snmp": [{"name": "r", "address": "10.0.0.1", "community": "c",
                  "interfaces": [{"name": "ether1", "role": "wan", "capacity_down_mbps": 100,
                                  "capacity_up_mbps": 20}]}],
        "links": [{**LINK, "capacity_test": {"iperf3": "127.0.0.1:9", "window": window}}],
    })  # fmt: skip
    state = AgentState("S", "", "0")
    port = InterfaceStatus(
        "ether1", "wan", True, True, 1e9, 64, 0, 0, 40e6, 1e6, 100e6, 20e6,
        None, None, None, None,
    )  # fmt: skip
    router = RouterStatus("r", "", "", 1.0, (port,), 1, 1)
    state.devices["r"] = DeviceState("r", "snmp", up=True, status=router)
    state.power = CentrePowerStatus("battery", MappingProxyType({}), MappingProxyType({}))
    tester = CapacityTester(config.links[0], config, state)
    caplog.set_level(logging.INFO, logger="agent.checks.capacity")
    assert asyncio.run(tester.run()) is None
    state.power = CentrePowerStatus("grid", MappingProxyType({}), MappingProxyType({}))
    assert asyncio.run(tester.run()) is None
    assert [r.getMessage() for r in caplog.records] == [
        "link ptcl: capacity test waits: the centre is on battery",
        "link ptcl: capacity test waits: the line is busy (40% of its contract within 5 min, "
        "threshold 30%)",
    ]


def test_the_daemon_job_hands_each_finished_test_to_the_ledger(tmp_path: Path):
    """What the tester ran, failed or not, reaches `record` (the outage ledger, for the
    monthly report) as the check keeps it: nothing listens on port 9, so the test fails."""
    from agent.checks.capacity import CapacityTester
    from agent.state import AgentState

    start = datetime.now() - timedelta(minutes=31)  # past the fleet spread of its one run
    window = f"{start:%H:%M}-{start + timedelta(hours=1):%H:%M}"
    link = {**LINK, "device": None, "interface": None, "isp": "PTCL"}
    test = {"iperf3": "127.0.0.1:9", "window": window, "capacity_down_mbps": 100}
    config = parse_config({"site": {"id": "S"}, "state_dir": str(tmp_path),
                           "links": [{**link, "capacity_test": test}]})  # fmt: skip
    recorded: list[CapacityResult] = []
    tester = CapacityTester(config.links[0], config, AgentState("S", "", "0"), recorded.append)
    result = asyncio.run(tester.run())
    assert result is not None and result.error.startswith("link ptcl: ")
    assert recorded == [result]
    assert (result.link, result.isp, result.contract_down_bps) == ("ptcl", "PTCL", 100e6)
    assert asyncio.run(tester.run()) is None  # one run a day: not again
    assert recorded == [result]
