"""Loss of service and its cause (power, ISP, LAN): pure logic on frozen views, no device."""

import logging

import pytest

from agent.checks.service import (
    Equipment,
    ServiceCheck,
    ServiceStatus,
    SiteView,
    Supply,
    WanPath,
    classify,
    device_cause,
    path_cause,
)

ON_MAINS = Supply("ups-rack", True, False, False, 100.0)
ON_BATTERY = Supply("ups-rack", True, True, False, 64.0)  # a cut, charge left
LOW = Supply("ups-rack", True, True, True, 18.0)  # a cut, the UPS says the end is near
EMPTY = Supply("ups-rack", True, True, False, 0.0)  # no LB flag, but nothing left
SILENT_ON_BATTERY = Supply("ups-rack", False, True, False, 3.0)  # it shut down
SILENT_ON_MAINS = Supply("ups-rack", False, False, False, 100.0)


def site(*supplies: Supply) -> dict[str, Supply]:
    return {s.name: s for s in supplies}


def router(answering: bool | None, powered_by: str | None = "ups-rack") -> Equipment:
    return Equipment("core-router", answering, powered_by)


PTCL = WanPath("ptcl", "core-router", "ether1", probes_up=False, port_down=False)


def cause(path: WanPath, equipment: Equipment, *supplies: Supply) -> str | None:
    judged = path_cause(path, {equipment.name: equipment}, site(*supplies))
    return None if judged is None else judged[0]


def test_wan_down_during_a_cut_with_charge_left_is_the_isp():
    """The case the old inhibition silenced: the router answers on its UPS, the line is dead."""
    assert cause(PTCL, router(True), ON_BATTERY) == "isp"
    port = WanPath("", "core-router", "ether1", probes_up=None, port_down=True)
    assert cause(port, router(True), ON_BATTERY) == "isp"


def test_router_answering_means_isp_whatever_the_ups_says():
    # An answering router has power, even when its UPS is low: what failed is past its port.
    for supply in (ON_MAINS, ON_BATTERY, LOW, EMPTY):
        assert cause(PTCL, router(True), supply) == "isp", supply


def test_router_silent_when_its_ups_ran_out_is_power():
    for supply in (LOW, EMPTY, SILENT_ON_BATTERY):
        assert cause(PTCL, router(False), supply) == "power", supply


def test_router_silent_while_its_ups_has_charge_or_mains_is_lan():
    for supply in (ON_MAINS, ON_BATTERY, SILENT_ON_MAINS):
        assert cause(PTCL, router(False), supply) == "lan", supply


def test_a_router_on_mains_alone_goes_dark_with_the_grid():
    on_mains = router(False, powered_by="mains")
    assert cause(PTCL, on_mains, ON_BATTERY) == "power"  # the UPS says mains is lost
    assert cause(PTCL, on_mains, ON_MAINS) == "lan"


def test_without_powered_by_every_ups_must_have_run_out():
    unknown = router(False, powered_by=None)
    office = Supply("ups-office", True, True, False, 70.0)
    office_out = Supply("ups-office", True, True, True, 10.0)
    assert cause(PTCL, unknown, LOW, office) == "lan"  # it may be on the office UPS
    assert cause(PTCL, unknown, LOW, office_out) == "power"
    assert cause(PTCL, unknown) == "lan"  # no UPS at all: nothing tells a cut


def test_the_named_ups_decides_not_the_others():
    office_out = Supply("ups-office", True, True, True, 5.0)
    assert cause(PTCL, router(False), ON_BATTERY, office_out) == "lan"
    assert cause(PTCL, router(False, "ups-office"), ON_BATTERY, office_out) == "power"


def test_a_link_without_a_router_is_the_isp_unless_every_ups_ran_out():
    bare = WanPath("nayatel", "", "", probes_up=False, port_down=False)
    assert path_cause(bare, {}, site(ON_BATTERY))[0] == "isp"
    assert path_cause(bare, {}, site(LOW))[0] == "power"
    # A named router not polled yet is no evidence either way.
    assert cause(PTCL, router(None), ON_BATTERY) == "isp"


def test_a_path_that_is_up_is_no_loss():
    up = WanPath("ptcl", "core-router", "ether1", probes_up=True, port_down=False)
    assert cause(up, router(True), ON_BATTERY) is None
    unprobed = WanPath("", "core-router", "ether1", probes_up=None, port_down=False)
    assert cause(unprobed, router(False), LOW) is None  # the device loss covers the router


def test_a_silent_ups_explains_itself_only_if_it_was_on_battery():
    ups = Equipment("ups-rack", False, ups=True)
    assert device_cause(ups, site(SILENT_ON_BATTERY))[0] == "power"
    assert device_cause(ups, site(SILENT_ON_MAINS))[0] == "lan"
    never_read = Equipment("ups-new", False, ups=True)
    assert device_cause(never_read, site(ON_BATTERY))[0] == "lan"


def test_classify_lists_paths_and_devices_with_their_causes():
    view = SiteView(
        supplies=(ON_BATTERY,),
        equipment=(
            router(True),
            Equipment("sw-floor1", False, "mains"),
            Equipment("sw-floor2", False, "ups-rack"),
            Equipment("ups-rack", True, ups=True),
        ),
        paths=(PTCL, WanPath("", "core-router", "ether2", None, port_down=False)),
    )
    got = {(loss.kind, loss.link or loss.device, loss.cause) for loss in classify(view)}
    assert got == {
        ("wan", "ptcl", "isp"),
        ("device", "sw-floor1", "power"),
        ("device", "sw-floor2", "lan"),
    }


def view(supply: Supply, router_up: bool, probes_up: bool) -> SiteView:
    path = WanPath("ptcl", "core-router", "ether1", probes_up, port_down=False)
    return SiteView((supply,), (router(router_up), Equipment("ups-rack", True, ups=True)), (path,))


def causes(status: ServiceStatus) -> dict[str, str]:
    return {str(loss): loss.cause for loss in status.losses}


def test_check_counts_each_cause_once_per_settled_episode_and_logs_changes(
    caplog: pytest.LogCaptureFixture,
):
    check = ServiceCheck(settle_seconds=20, boot_seconds=600)
    with caplog.at_level(logging.INFO, logger="agent.checks.service"):
        quiet = check.update(view(ON_MAINS, True, True), now=0)
        isp = check.update(view(ON_BATTERY, True, False), now=10)
        check.update(view(ON_BATTERY, True, False), now=35)  # settled: counted, not logged
        power = check.update(view(LOW, False, False), now=40)  # battery ran out, router dark
        check.update(view(LOW, False, False), now=70)
        back = check.update(view(ON_MAINS, True, True), now=300)
        blip = check.update(view(ON_MAINS, True, False), now=310)  # 5 s of ISP loss: no count
        after = check.update(view(ON_MAINS, True, True), now=315)
    assert dict(quiet.active) == {"power": False, "isp": False, "lan": False}
    assert dict(isp.active) == {"power": False, "isp": True, "lan": False}
    assert dict(power.active) == {"power": True, "isp": False, "lan": False}
    assert dict(back.active) == dict(quiet.active)
    assert dict(blip.active) == {"power": False, "isp": True, "lan": False}
    assert dict(after.counts) == {"power": 1, "isp": 1, "lan": 0}
    assert [r.getMessage() for r in caplog.records] == [
        "service lost: ptcl (core-router ether1), cause isp: its probes get no answer while "
        "core-router answers (it has power and the LAN works)",
        "service lost: ptcl (core-router ether1), cause now power: its probes get no answer and "
        "core-router does not answer: its UPS ups-rack has run out",
        "service lost: core-router, cause power: its UPS ups-rack has run out",
        "service back: ptcl (core-router ether1) (was power)",
        "service back: core-router (was power)",
        "service lost: ptcl (core-router ether1), cause isp: its probes get no answer while "
        "core-router answers (it has power and the LAN works)",
        "service back: ptcl (core-router ether1) (was isp)",
    ]


def test_a_router_the_cut_darkened_stays_power_while_it_boots_then_is_the_lan():
    check = ServiceCheck(settle_seconds=20, boot_seconds=600)
    check.update(view(LOW, False, False), now=0)
    booting = check.update(view(ON_MAINS, False, False), now=100)  # mains back, still dark
    assert causes(booting) == {"ptcl (core-router ether1)": "power", "core-router": "power"}
    assert booting.losses[1].why == "dark since the power cut (its UPS ups-rack is on mains)"
    stuck = check.update(view(ON_MAINS, False, False), now=700)  # 10 minutes on: not booting
    assert causes(stuck) == {"ptcl (core-router ether1)": "lan", "core-router": "lan"}
    # A router that boots while the line stays dead: the ISP's, at once.
    check = ServiceCheck(settle_seconds=20, boot_seconds=600)
    check.update(view(LOW, False, False), now=0)
    booted = check.update(view(ON_MAINS, True, False), now=100)
    assert causes(booted) == {"ptcl (core-router ether1)": "isp"}


def test_a_router_dying_a_poll_before_its_ups_reads_empty_is_not_a_lan_loss_on_record():
    """The router times out while the UPS's latest reading still shows charge: "lan" by
    elimination for one UPS poll, then "power". LAN is not concluded before it has held the
    settle time, so nothing is reported (or logged) as LAN; only the power loss is counted."""
    check = ServiceCheck(settle_seconds=20, boot_seconds=600)
    check.update(view(ON_BATTERY, True, True), now=0)
    early = check.update(view(ON_BATTERY, False, False), now=1)
    assert causes(early) == {}
    later = check.update(view(SILENT_ON_BATTERY, False, False), now=6)
    assert set(causes(later).values()) == {"power"}
    done = check.update(view(SILENT_ON_BATTERY, False, False), now=60)
    assert dict(done.counts) == {"power": 1, "isp": 0, "lan": 0}


def test_a_lan_loss_is_reported_once_it_has_held_the_settle_time(caplog):
    check = ServiceCheck(settle_seconds=20, boot_seconds=600)
    with caplog.at_level(logging.INFO, logger="agent.checks.service"):
        assert causes(check.update(view(ON_MAINS, False, False), now=0)) == {}
        assert causes(check.update(view(ON_MAINS, False, False), now=19)) == {}
        held = check.update(view(ON_MAINS, False, False), now=20)
    assert set(causes(held).values()) == {"lan"}
    assert [r.getMessage().split(":")[0] for r in caplog.records] == ["service lost"] * 2
