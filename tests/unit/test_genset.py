"""Generator controllers: the judged state of a reading, the start watch after a mains loss,
the centre's power source, and the genset kind's config and exports."""

from __future__ import annotations

import asyncio
from types import MappingProxyType

import pytest

from agent.checks.centre_power import SOURCES, CentrePower, PowerView, mains_lost, power_source
from agent.checks.genset import ON_LOAD_WATTS, StartWatch, genset_status
from agent.config import ConfigError, parse_config
from agent.kinds import KINDS, Pools
from agent.state import AgentState, DeviceState
from collectors.modbus.decode import DecodePlan
from collectors.modbus.encode import encode_image
from collectors.modbus.profile import available_profiles, load_profile
from collectors.modbus.transport import GatewayPool
from collectors.readings import GensetReading
from collectors.snmp.client import SnmpSessions
from exporters.genset import EXPORTED_INFO, GENSET_VALUES
from exporters.status_page import render_page
from simulators.genset import SimulatedGenset
from simulators.ups import SimulatedUps

KNOWN = frozenset({"RUNNING", "SHUTDOWN", "TRIP", "WARNING"})


def reading(flags: set[str], power: float = 0.0, known: frozenset[str] = KNOWN) -> GensetReading:
    return GensetReading({"output.power": power}, {}, frozenset(flags), known)


# --- one reading -----------------------------------------------------------------------------


def test_running_with_output_is_on_load() -> None:
    status = genset_status(reading({"RUNNING"}, power=4200.0))
    assert status.running and status.on_load
    assert status.mains_available is None  # the map has no mains bit


def test_running_idle_is_not_on_load() -> None:
    status = genset_status(reading({"RUNNING"}, power=ON_LOAD_WATTS - 1))
    assert status.running and not status.on_load


def test_output_without_a_running_engine_is_not_on_load() -> None:
    assert not genset_status(reading(set(), power=4200.0)).on_load


def test_a_breaker_bit_decides_on_load_when_the_map_has_one() -> None:
    known = KNOWN | {"ON_LOAD", "MAINS_OK"}
    closed = genset_status(reading({"RUNNING", "ON_LOAD"}, power=0.0, known=known))
    assert closed.on_load and closed.mains_available is False
    opened = genset_status(reading({"RUNNING", "MAINS_OK"}, power=4200.0, known=known))
    assert not opened.on_load and opened.mains_available is True


def test_alarms_cover_every_class_the_map_reports() -> None:
    status = genset_status(reading({"WARNING"}))
    assert dict(status.alarms) == {"shutdown": 0, "electrical_trip": 0, "warning": 1}
    assert dict(genset_status(reading(set(), known=frozenset({"RUNNING"}))).alarms) == {}


# --- the start watch ---------------------------------------------------------------------------


def test_start_delay_is_from_the_mains_loss_to_on_load() -> None:
    watch = StartWatch("genset", 120.0)
    assert watch.update(False, False, 100.0).waiting_since is None
    assert watch.update(True, False, 101.0).waiting_since == 101.0
    watch.update(True, False, 110.0)
    record = watch.update(False, True, 115.0)  # the UPSes see the generator as mains
    assert record.start_delay_seconds == pytest.approx(14.0)
    assert record.start_failures == 0 and record.waiting_since is None


def test_mains_back_a_moment_before_the_genset_is_polled_on_load_is_its_start() -> None:
    """The UPSes see the generator as their input before the controller's next poll."""
    watch = StartWatch("genset", 120.0, settle_seconds=1.5)
    watch.update(True, False, 0.0)
    assert watch.update(False, False, 4.0).waiting_since == 0.0  # UPS back on line first
    record = watch.update(False, True, 5.0)
    assert record.start_delay_seconds == pytest.approx(5.0)
    watch.update(True, False, 10.0)
    watch.update(False, False, 11.0)  # the grid returned: no generator by the settle time
    assert watch.update(False, False, 12.5).waiting_since is None


def test_no_load_within_the_timeout_counts_one_failure_per_loss() -> None:
    watch = StartWatch("genset", 120.0)
    watch.update(True, False, 0.0)
    assert watch.update(True, False, 119.0).start_failures == 0
    assert watch.update(True, False, 120.0).start_failures == 1
    assert watch.update(True, False, 300.0).start_failures == 1  # the same loss
    late = watch.update(False, True, 310.0)  # a late start is still measured
    assert late.start_delay_seconds == pytest.approx(310.0) and late.start_failures == 1
    watch.update(False, False, 400.0)
    watch.update(True, False, 500.0)  # a second loss
    assert watch.update(True, False, 620.0).start_failures == 2


def test_mains_back_before_the_timeout_is_no_failure() -> None:
    watch = StartWatch("genset", 120.0)
    watch.update(True, False, 0.0)
    record = watch.update(False, False, 30.0)
    assert record.start_failures == 0 and record.start_delay_seconds is None
    assert watch.update(False, False, 500.0).start_failures == 0


# --- the centre's power source -----------------------------------------------------------------


def feeds(*items: tuple[str, str, bool]) -> tuple[tuple[str, str, bool], ...]:
    return items


MAINS = feeds(("ups", "grid", True), ("ups", "battery", False), ("gen", "generator", False))
CUT = feeds(("ups", "grid", False), ("ups", "battery", True), ("gen", "generator", False))
# the UPS sees the generator as mains again
ON_GENERATOR = feeds(("ups", "grid", True), ("ups", "battery", False), ("gen", "generator", True))


@pytest.mark.parametrize(
    ("view", "source"),
    [(MAINS, "grid"), (CUT, "battery"), (ON_GENERATOR, "generator"), ((), None)],
)
def test_power_source_ranks_generator_battery_grid(view: tuple, source: str | None) -> None:
    assert power_source(view) == source


def test_one_ups_on_battery_puts_the_centre_on_battery() -> None:
    two = feeds(("a", "grid", True), ("a", "battery", False), ("b", "grid", False),
                ("b", "battery", True))  # fmt: skip
    assert power_source(two) == "battery" and mains_lost(two)


def test_a_further_source_is_one_more_feed() -> None:
    """A source that SOURCES does not rank yet is ignored, never mistaken for another."""
    assert power_source(feeds(("inv", "wind", True))) is None


def test_solar_ranks_after_the_batteries_and_before_the_grid() -> None:
    """An inverter whose load PV carries: solar while the UPSes are on mains; in a cut the
    batteries are what the centre runs on (and the inverter's lost grid starts the watch)."""
    day = feeds(("ups", "grid", True), ("inv", "solar", True), ("inv", "grid", True))
    assert power_source(day) == "solar" and not mains_lost(day)
    cut = feeds(("ups", "battery", True), ("ups", "grid", False), ("inv", "solar", True),
                ("inv", "grid", False))  # fmt: skip
    assert power_source(cut) == "battery" and mains_lost(cut)


def test_centre_power_counts_time_on_each_source_and_watches_the_start() -> None:
    power = CentrePower()
    timeouts = MappingProxyType({"gen": (120.0, 0.0)})
    power.update(PowerView(MAINS, timeouts), 0.0)
    power.update(PowerView(CUT, timeouts), 10.0)  # mains lost at 10
    power.update(PowerView(CUT, timeouts), 20.0)
    status = power.update(PowerView(ON_GENERATOR, timeouts), 25.0)
    assert status.source == "generator"
    assert status.starts["gen"].start_delay_seconds == pytest.approx(15.0)
    status = power.update(PowerView(MAINS, timeouts), 85.0)
    assert dict(status.seconds) == pytest.approx(
        {"grid": 10.0, "battery": 15.0, "generator": 60.0, "solar": 0.0}
    )
    assert tuple(status.seconds) == SOURCES


def test_a_silent_genset_through_a_cut_is_a_start_failure() -> None:
    power = CentrePower()
    timeouts = MappingProxyType({"gen": (60.0, 0.0)})
    cut_without_genset = feeds(("ups", "grid", False), ("ups", "battery", True))
    power.update(PowerView(cut_without_genset, timeouts), 0.0)
    status = power.update(PowerView(cut_without_genset, timeouts), 61.0)
    assert status.starts["gen"].start_failures == 1


# --- the kind ------------------------------------------------------------------------------------


def test_genset_config_defaults_to_gencomm_on_unit_10() -> None:
    config = parse_config({"site": {"id": "s"}, "genset": [{"name": "gen", "address": "10.0.0.9"}]})
    genset = config.genset[0]
    assert (genset.profile, genset.unit, genset.start_timeout_seconds) == ("dse-gencomm", 10, 120)
    assert KINDS["genset"].config is type(genset)


def test_a_genset_shares_a_serial_gateway_only_with_the_same_framing() -> None:
    with pytest.raises(ConfigError, match=r"genset\[0\]\.transport: modbus\[0\] \(ups\)"):
        parse_config(
            {"site": {"id": "s"},
             "modbus": [{"name": "ups", "address": "10.0.0.9:4001", "transport": "rtu-over-tcp"}],
             "genset": [{"name": "gen", "address": "10.0.0.9:4001"}]}
        )  # fmt: skip


GENSET_PROFILES = [n for n in available_profiles() if load_profile(n).role == "genset"]


def test_gencomm_is_packaged() -> None:
    assert "dse-gencomm" in GENSET_PROFILES


@pytest.mark.parametrize("name", GENSET_PROFILES)
def test_decoded_values_are_exported_or_listed_with_a_reason(name: str) -> None:
    profile = load_profile(name)
    names = {f.name for f in profile.fields} | set(profile.info)
    exported = set(GENSET_VALUES) | EXPORTED_INFO
    silent = sorted(names - exported - set(profile.not_exported))
    assert not silent, f"{name}: decoded but neither exported nor in not_exported: {silent}"
    assert not set(profile.not_exported) & exported


def test_status_page_shows_the_genset_card() -> None:
    status = genset_status(
        GensetReading(
            {"output.power": 4200.0, "fuel.level": 18.0, "engine.battery.voltage": 27.4},
            {"generator.mode": "auto", "engine.state": "running"},
            frozenset({"RUNNING", "SHUTDOWN"}),
            KNOWN,
        )
    )
    state = AgentState("S-1", "", "1.0")
    state.devices["gen"] = DeviceState("gen", "genset", up=True, reason="ok", status=status)
    page = render_page(state, now=1000.0)
    assert "On load" in page and "mode auto, fuel 18%, 4.2 kW, battery 27.4 V" in page
    assert "alarm: shutdown" in page
    state.devices["gen"].up = False  # what a silent controller last said is not shown
    assert "No answer" in render_page(state, now=1000.0)


def test_the_simulator_serves_the_map_the_agent_reads() -> None:
    """simulators/genset.py through the real profile: cut, start after the delay, cool down."""
    now = [1000.0]
    genset = SimulatedGenset(start_delay_seconds=15.0, clock=lambda: now[0])
    ups = SimulatedUps(clock=lambda: now[0])
    genset.feed(ups)
    plan = DecodePlan(load_profile("dse-gencomm"))

    def status() -> tuple[bool, bool, str]:
        values, flags = genset.truth()
        judged = genset_status(plan.decode(encode_image(plan.profile, values, flags)))
        return judged.running, judged.on_load, str(ups.truth()["ups.status"])

    assert status() == (False, False, "OL")
    genset.set_mains(False)
    now[0] += 14.0
    assert status() == (False, False, "OB")
    now[0] += 2.0
    assert status() == (True, True, "OL")  # the UPS sees the generator as its input
    genset.set_mains(True)
    now[0] += 30.0
    assert status() == (True, False, "OL")  # cooling down off load
    now[0] += 60.0
    assert status() == (False, False, "OL")
    genset.fail_to_start = True
    genset.set_mains(False)
    now[0] += 20.0
    assert genset.truth()[1] == {"SHUTDOWN"} and ups.truth()["ups.status"] == "OB"


@pytest.mark.parametrize(
    ("section", "profile", "message"),
    [
        ("genset", "apc-smart-ups", "apc-smart-ups has role ups: configure this device under "
         "modbus:, not genset:"),
        ("modbus", "dse-gencomm", "dse-gencomm has role genset: configure this device under "
         "genset:, not modbus:"),
    ],
)  # fmt: skip
def test_a_profile_of_the_other_role_is_a_config_error(
    section: str, profile: str, message: str
) -> None:
    """A UPS map under genset: (or a generator's under modbus:) is a config mistake, named by
    validate with its key, never a UPS judged from a generator's registers."""
    with pytest.raises(ConfigError) as raised:
        parse_config(
            {"site": {"id": "s"},
             section: [{"name": "d", "address": "127.0.0.1", "profile": profile}]}
        )  # fmt: skip
    assert raised.value.problems == [f"config: {section}[0].profile: {message}"]


def test_check_says_whether_the_generator_is_ready_to_start() -> None:
    """`erozgar-agent check` for a genset: it answers, and a shutdown alarm keeps it from
    starting on the next mains loss."""

    async def verdicts() -> list[list[tuple[str, str]]]:
        genset = SimulatedGenset(start_delay_seconds=0.0, fail_to_start=True)
        host, port = await genset.start()
        config = parse_config(
            {"site": {"id": "s"}, "genset": [{"name": "gen", "address": f"{host}:{port}"}]}
        )
        found = []
        try:
            for _ in range(2):
                pools = Pools(SnmpSessions(), GatewayPool())
                verdict = await KINDS["genset"].check(config.genset[0], pools, 1.0)
                found.append([(step.name, step.status) for step in verdict.checks])
                genset.set_mains(False)  # the cut: it fails to start, a shutdown alarm
        finally:
            await genset.stop()
        return found

    ready, alarmed = asyncio.run(verdicts())
    assert ready == [("tcp connect", "PASS"), ("modbus answer", "PASS"), ("ready to start", "PASS")]
    assert alarmed[-1] == ("ready to start", "FAIL")
