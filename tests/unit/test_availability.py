"""The outage ledger and the availability check: what is on record after losses, restarts,
crashes and clock steps (agent/ledger.py, agent/checks/availability.py)."""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType

from agent.checks.availability import AvailabilityCheck
from agent.checks.capacity import CapacityResult
from agent.checks.service import CAUSES, Loss, ServiceStatus, Supply
from agent.ledger import LEDGER_FILE, Ledger, OutageRecord

LINKS = {"ptcl": "PTCL", "nayatel": "Nayatel"}
WALL = 1_780_000_000.0  # some Unix time in 2026
MAINS = (Supply("ups-rack", True, False, False, 100.0),)
EMPTY = (Supply("ups-rack", True, True, False, 4.0),)


def status(*losses: Loss) -> ServiceStatus:
    causes = {loss.cause for loss in losses}
    return ServiceStatus(
        tuple(losses),
        MappingProxyType({c: c in causes for c in CAUSES}),
        MappingProxyType(dict.fromkeys(CAUSES, 0)),
    )


ISP_DOWN = Loss("wan", "ptcl", "core-router", "ether1", "isp", "probes get no answer")
SWITCH_DARK = Loss("device", "", "sw-floor1", "", "lan", "no answer")


def run(check: AvailabilityCheck, spans: list[tuple[float, float, ServiceStatus]], wall=WALL):
    """Feed `check` one status a second over each (from, to) span of monotonic seconds."""
    totals = None
    for start, end, seen in spans:
        t = start
        while t < end:
            totals = check.update(seen, MAINS, LINKS, t, wall + t)
            t += 1.0
    return totals


def outages(state_dir: Path) -> list[OutageRecord]:
    return [r for r in Ledger(state_dir / LEDGER_FILE).records() if isinstance(r, OutageRecord)]


def test_an_isp_outage_is_on_record_with_its_link_isp_and_length(tmp_path: Path) -> None:
    check = AvailabilityCheck(tmp_path)
    check.start(LINKS, 0.0, WALL)
    totals = run(check, [(0, 100, status()), (100, 400, status(ISP_DOWN)), (400, 410, status())])
    (record,) = outages(tmp_path)
    assert (record.cause, record.link, record.isp, record.device) == (
        "isp",
        "ptcl",
        "PTCL",
        "core-router",
    )
    assert record.start == WALL + 100 and record.seconds == 300.0
    assert totals.links["ptcl"]["isp"] == 300.0 and totals.links["nayatel"]["isp"] == 0.0
    assert totals.site["isp"] == 300.0 and totals.site["lan"] == 0.0


def test_a_flicker_shorter_than_the_settle_time_is_not_on_record(tmp_path: Path) -> None:
    check = AvailabilityCheck(tmp_path)
    check.start(LINKS, 0.0, WALL)
    totals = run(check, [(0, 10, status(ISP_DOWN)), (10, 20, status())])
    assert outages(tmp_path) == []
    assert totals.site["isp"] == 0.0


def test_the_counters_rise_while_a_loss_goes_on_and_survive_a_restart(tmp_path: Path) -> None:
    check = AvailabilityCheck(tmp_path)
    check.start(LINKS, 0.0, WALL)
    during = run(check, [(0, 200, status(SWITCH_DARK))])
    assert during.site["lan"] >= 120.0  # counted at the heartbeats, not only at the end
    check.stop(200.0, WALL + 200)
    again = AvailabilityCheck(tmp_path)
    again.start(LINKS, 0.0, WALL + 230)  # a restart of 30 s: no gap on record
    totals = again.totals(LINKS)
    assert totals.site["lan"] == 220.0 and totals.site["agent"] == 0.0  # began 20 s before
    (record,) = outages(tmp_path)
    assert (record.cause, record.device, record.seconds) == ("lan", "sw-floor1", 220.0)


def test_a_crash_closes_the_open_loss_at_its_last_heartbeat_and_no_counter_goes_back(
    tmp_path: Path,
) -> None:
    check = AvailabilityCheck(tmp_path)
    check.start(LINKS, 0.0, WALL)
    exported = run(check, [(0, 150, status(ISP_DOWN))])  # then kill -9: no stop()
    again = AvailabilityCheck(tmp_path)
    again.start(LINKS, 0.0, WALL + 150)
    after = again.totals(LINKS)
    assert after.links["ptcl"]["isp"] >= exported.links["ptcl"]["isp"] > 0
    (record,) = outages(tmp_path)
    assert record.cause == "isp" and record.seconds == after.links["ptcl"]["isp"]
    assert record.end <= WALL + 150


def test_the_time_the_agent_was_off_is_an_agent_loss_for_the_site_and_every_link(
    tmp_path: Path,
) -> None:
    check = AvailabilityCheck(tmp_path)
    check.start(LINKS, 0.0, WALL)
    check.stop(10.0, WALL + 10)
    again = AvailabilityCheck(tmp_path)
    again.start(LINKS, 0.0, WALL + 10 + 3600)
    totals = again.totals(LINKS)
    assert totals.site["agent"] == 3600.0
    assert totals.links["ptcl"]["agent"] == totals.links["nayatel"]["agent"] == 3600.0
    (record,) = outages(tmp_path)
    assert (record.kind, record.cause, record.start, record.end) == (
        "site", "agent", WALL + 10, WALL + 3610,
    )  # fmt: skip


def test_off_after_the_ups_ran_nearly_empty_is_a_power_loss(tmp_path: Path) -> None:
    check = AvailabilityCheck(tmp_path)
    check.start(LINKS, 0.0, WALL)
    check.update(status(), EMPTY, LINKS, 1.0, WALL + 1)  # then the box dies with its UPS
    again = AvailabilityCheck(tmp_path)
    again.start(LINKS, 0.0, WALL + 1801)
    assert again.totals(LINKS).site["power"] == 1800.0
    assert [r.cause for r in outages(tmp_path)] == ["power"]


def test_an_ntp_step_mid_outage_changes_neither_its_length_nor_the_counters(
    tmp_path: Path,
) -> None:
    check = AvailabilityCheck(tmp_path)
    check.start(LINKS, 0.0, WALL)
    run(check, [(0, 100, status(ISP_DOWN))])
    totals = run(check, [(100, 200, status(ISP_DOWN)), (200, 201, status())], wall=WALL + 3600)
    (record,) = outages(tmp_path)
    assert record.seconds == 200.0 and record.end - record.start == 200.0
    assert totals.site["isp"] == 200.0


def test_a_clock_set_back_at_start_puts_no_gap_on_record(tmp_path: Path) -> None:
    check = AvailabilityCheck(tmp_path)
    check.start(LINKS, 0.0, WALL)
    check.stop(1.0, WALL + 1)
    again = AvailabilityCheck(tmp_path)
    again.start(LINKS, 0.0, 86400.0)  # a box without RTC boots in 1970
    assert again.totals(LINKS).site["agent"] == 0.0
    assert outages(tmp_path) == []


def test_the_ledger_skips_a_torn_line_reads_an_outage_once_and_compacts(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / LEDGER_FILE)
    old = OutageRecord(WALL - 500 * 86400, 60.0, "isp", "wan", "ptcl", "PTCL")
    new = OutageRecord(WALL, 60.0, "power", "device", device="sw-floor1")
    test = CapacityResult("ptcl", "PTCL", WALL + 5, "iperf3", 95e6, 19e6, 0.04, 100e6, 20e6, 9, "")
    for record in (old, new, new, test):
        assert ledger.append(record)
    with open(ledger.path, "a") as handle:
        handle.write('{"type":"outage","start":"x","seconds":1,"cause":"isp","kind":"wan"}\n')
        handle.write('{"type":"outage","start":17')  # the power went mid-write
    assert list(ledger.records()) == [old, new, test]
    assert ledger.errors["torn"] == 2
    ledger.compact(WALL + 10)
    assert list(ledger.records()) == [new, test]
    lines = ledger.path.read_text().splitlines()
    assert [json.loads(line)["type"] for line in lines] == ["outage", "capacity"]
    outages_in, tests_in = ledger.between(WALL - 30, WALL + 30)
    assert outages_in == [new] and [t.download_bps for t in tests_in] == [95e6]


def test_a_lan_loss_counts_from_when_it_began_not_from_when_it_was_concluded(
    tmp_path: Path,
) -> None:
    """The service check reports a LAN loss once it has held SETTLE_SECONDS (20 s)."""
    check = AvailabilityCheck(tmp_path)
    check.start(LINKS, 0.0, WALL)
    totals = run(check, [(0, 100, status()), (100, 110, status(SWITCH_DARK)), (110, 111, status())])
    (record,) = outages(tmp_path)
    assert (record.cause, record.start, record.seconds) == ("lan", WALL + 80, 30.0)
    assert totals.site["lan"] == 30.0


def test_a_power_loss_that_becomes_lan_is_not_counted_twice(tmp_path: Path) -> None:
    dark = Loss("device", "", "sw-floor1", "", "power", "its UPS ran out")
    check = AvailabilityCheck(tmp_path)
    check.start(LINKS, 0.0, WALL)
    run(check, [(0, 100, status(dark)), (100, 150, status(SWITCH_DARK)), (150, 151, status())])
    assert [(r.cause, r.start, r.seconds) for r in outages(tmp_path)] == [
        ("power", WALL, 100.0),
        ("lan", WALL + 100, 50.0),
    ]


def test_a_capacity_result_goes_into_the_ledger_for_the_report(tmp_path: Path) -> None:
    check = AvailabilityCheck(tmp_path)
    test = CapacityResult("ptcl", None, WALL, "http", 40e6, None, None, 100e6, None, 5, "no up")
    assert check.record_capacity(test)
    assert list(Ledger(tmp_path / LEDGER_FILE).records()) == [test]


def test_a_saved_state_that_makes_no_sense_starts_afresh(tmp_path: Path) -> None:
    (tmp_path / "availability.json").write_text(
        json.dumps({"wall": "x", "site": [1], "links": [], "open": [{"cause": "isp"}, 3]})
    )
    check = AvailabilityCheck(tmp_path)
    check.start(LINKS, 0.0, WALL)
    assert check.totals(LINKS).site["isp"] == 0.0
    (tmp_path / "availability.json").write_text(
        json.dumps({"open": [{"cause": "isp", "kind": "wan", "link": "ptcl", "isp": "PTCL",
                              "device": "", "interface": "", "start": "x", "counted": "y"}]})
    )  # fmt: skip
    AvailabilityCheck(tmp_path).start(LINKS, 0.0, WALL)
    assert outages(tmp_path) == []
