"""Counter maths: wraps, restarts, implausible deltas. Pure logic, no device."""

import logging
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.checks.bandwidth import (
    DEFAULT_CAPACITY_BPS,
    BandwidthCheck,
    InterfaceStatus,
    counter_delta,
)
from agent.config import InterfaceSettings
from collectors.readings import InterfaceSample, SnmpReading

GBIT = 1e9


def reading(
    uptime_ticks: int, rx: int, tx: int, bits: int = 64, speed: float = GBIT
) -> SnmpReading:
    port = InterfaceSample(
        index=1,
        name="ether1",
        descr="ether1",
        alias="",
        oper_up=True,
        admin_up=True,
        speed_bps=speed,
        in_octets=rx,
        out_octets=tx,
        counter_bits=bits,
    )
    return SnmpReading("r", "", "1.3.6.1.4.1.14988.1", uptime_ticks, (port,))


def test_counter_delta_plain_and_wraps():
    assert counter_delta(100, 250, 64) == 150
    assert counter_delta(2**32 - 100, 50, 32) == 150
    assert counter_delta(500, 100, 64) is None  # a 64-bit counter going back is a reset


def test_rate_from_two_polls():
    check = BandwidthCheck("r")
    check.update(reading(1000, 0, 0), now=100.0)
    (port,) = check.update(reading(2500, 12_500_000, 2_500_000), now=115.0)
    assert port.receive_bps == 12_500_000 * 8 / 15
    assert port.transmit_bps == 2_500_000 * 8 / 15
    assert port.receive_bytes_total == 12_500_000


def test_32bit_wrap_is_counted_once_not_as_a_spike():
    check = BandwidthCheck("r")
    start = 2**32 - 1_000_000
    check.update(reading(1000, start, 0, bits=32), now=0.0)
    (port,) = check.update(reading(2000, 4_000_000, 0, bits=32), now=10.0)
    assert port.receive_bytes_total == start + 5_000_000
    assert port.receive_bps == 5_000_000 * 8 / 10


def test_ambiguous_32bit_wrap_is_refused_and_counted():
    check = BandwidthCheck("r")
    check.update(reading(1000, 10, 0, bits=32), now=0.0)
    # 60 s at 1 Gb/s could hold almost two wraps: no rate is invented.
    (port,) = check.update(reading(7000, 20, 0, bits=32), now=60.0)
    assert port.receive_bps is None
    assert port.receive_bytes_total == 10
    assert check.rejected["wrap_ambiguous"] == 2  # both directions


def test_device_restart_adds_bytes_since_boot_without_spike():
    check = BandwidthCheck("r")
    check.update(reading(500_000, 9_000_000_000, 0), now=0.0)
    # The router rebooted (power cut): uptime 20 s, counters restarted from zero.
    (port,) = check.update(reading(2000, 1_000_000, 0), now=60.0)
    assert check.restarts == 1
    assert port.receive_bytes_total == 9_000_000_000 + 1_000_000
    assert port.receive_bps == 1_000_000 * 8 / 20
    (port,) = check.update(reading(3500, 2_000_000, 0), now=75.0)
    assert port.receive_bytes_total == 9_000_000_000 + 2_000_000


def test_delta_above_port_speed_is_rejected():
    check = BandwidthCheck("r")
    check.update(reading(1000, 0, 0, speed=100e6), now=0.0)
    (port,) = check.update(reading(2000, 10**12, 0, speed=100e6), now=10.0)
    assert port.receive_bps is None
    assert check.rejected["above_ceiling"] == 1


def test_utilization_uses_contract_then_port_speed():
    wan = InterfaceSettings(name="ether1", role="wan", capacity_down_mbps=100, capacity_up_mbps=20)
    check = BandwidthCheck("r", {"ether1": wan})
    check.update(reading(1000, 0, 0), now=0.0)
    (port,) = check.update(reading(2000, 62_500_000, 12_500_000), now=10.0)
    assert port.role == "wan"
    assert port.utilization("receive") == 0.5  # 50 Mb/s of 100
    assert port.utilization("transmit") == 0.5  # 10 Mb/s of 20
    plain = BandwidthCheck("r")
    plain.update(reading(1000, 0, 0), now=0.0)
    (port,) = plain.update(reading(2000, 62_500_000, 0), now=10.0)
    assert port.utilization("receive") == 0.05  # against the 1 Gb/s port speed


def port_reading(uptime_ticks: int, rx: int, **extra: int | None) -> SnmpReading:
    base = reading(uptime_ticks, rx, 0).interfaces[0]
    return SnmpReading("r", "", "1.3.6.1.4.1.14988.1", uptime_ticks, (replace(base, **extra),))


def test_port_discontinuity_counts_from_its_time_without_spike():
    check = BandwidthCheck("r")
    check.update(port_reading(100_000, 5_000_000_000, discontinuity_ticks=0), now=0.0)
    # a line card reset 10 s before this poll: its counter restarted, the device did not
    (port,) = check.update(port_reading(101_500, 2_000_000, discontinuity_ticks=100_500), now=15.0)
    assert check.restarts == 0
    assert check.rejected["port_discontinuity"] == 1
    assert port.receive_bytes_total == 5_000_000_000 + 2_000_000
    assert port.receive_bps == 2_000_000 * 8 / 10


def test_saturated_seconds_add_up_per_direction_and_threshold():
    lan = InterfaceSettings(name="ether1", capacity_down_mbps=10, saturation_threshold=0.8)
    check = BandwidthCheck("r", {"ether1": lan})
    check.update(reading(1000, 0, 0), now=0.0)
    (port,) = check.update(reading(2000, 11_250_000, 0), now=10.0)  # 9 Mb/s of 10: saturated
    assert (port.receive_saturated_seconds, port.transmit_saturated_seconds) == (10.0, 0.0)
    (port,) = check.update(reading(3000, 16_250_000, 0), now=20.0)  # 4 Mb/s: not
    assert port.receive_saturated_seconds == 10.0
    (port,) = check.update(reading(4000, 27_500_000, 0), now=30.0)
    assert port.receive_saturated_seconds == 20.0


def test_error_and_discard_ratios_are_shares_of_packets_between_polls():
    check = BandwidthCheck("r")
    first = dict(in_errors=10, in_discards=0, in_packets=1000, out_errors=0, out_packets=None)
    check.update(port_reading(1000, 0, **first), now=0.0)
    (port,) = check.update(
        port_reading(2000, 0, in_errors=20, in_discards=30, in_packets=1960, out_errors=0,
                     out_packets=None), now=10.0,
    )  # fmt: skip
    assert port.in_error_ratio == 10 / (10 + 960)
    assert port.in_discard_ratio == 30 / (30 + 960)
    assert port.out_error_ratio is None  # no packet counter: no ratio invented


def test_rate_uses_when_the_counters_were_read_not_when_the_poll_ended():
    check = BandwidthCheck("r")
    check.update(replace(reading(1000, 0, 0), read_at=100.0), now=100.5)  # names walked after
    (port,) = check.update(replace(reading(2000, 10_000_000, 0), read_at=110.0), now=110.1)
    assert port.receive_bps == 10_000_000 * 8 / 10


def test_each_row_is_timed_by_its_own_answer():
    """A big table spans several GETBULK answers: a row read 0.4 s before the poll ended must
    not have its bytes divided by the poll's timing."""
    from dataclasses import replace

    check = BandwidthCheck("r")
    first = reading(1000, 0, 0)
    early = replace(first.interfaces[0], read_at=100.0)
    check.update(replace(first, interfaces=(early,)), now=100.4)
    second = reading(2500, 15_000_000, 0)
    early = replace(second.interfaces[0], read_at=110.0)
    (port,) = check.update(replace(second, interfaces=(early,)), now=110.9)
    assert port.receive_bps == 15_000_000 * 8 / 10.0  # not / 10.5


# --- issue 11: a delta is believed only when it is physically possible ----------------------


def sample(name: str, rx: int, tx: int = 0, *, index: int = 1, speed: float | None = GBIT,
           bits: int = 64, if_type: int | None = None) -> InterfaceSample:  # fmt: skip
    return InterfaceSample(index, name, name, "", True, True, speed, rx, tx, bits, if_type=if_type)


def device(uptime_ticks: int, *ports: InterfaceSample, fastest: float | None = None) -> SnmpReading:
    return SnmpReading("r", "", "", uptime_ticks, ports, fastest_port_bps=fastest)


def ether(rx: int = 0) -> InterfaceSample:
    return sample("ether1", rx, index=1, speed=100e6, if_type=6)


def pppoe(rx: int, *, index: int = 20, bits: int = 64) -> InterfaceSample:
    """MikroTik's PPPoE client: ifType ppp(23), ifSpeed 0 and ifHighSpeed 0."""
    return sample("pppoe-out1", rx, index=index, speed=0.0, bits=bits, if_type=23)


def by_name(statuses: tuple[InterfaceStatus, ...]) -> dict[str, InterfaceStatus]:
    return {s.name: s for s in statuses}


def test_speedless_port_is_capped_by_the_fastest_physical_port():
    """pppoe-out1 reports no speed: the device's fastest physical port (100 Mb/s) x 1.5
    bounds it; terabytes per second are refused, 90 Mb/s is believed."""
    check = BandwidthCheck("r")
    check.update(device(1000, ether(), pppoe(0)), now=0.0)
    ports = by_name(check.update(device(2500, ether(), pppoe(10**13)), now=15.0))
    assert ports["pppoe-out1"].receive_bps is None
    assert ports["pppoe-out1"].receive_bytes_total == 0
    assert check.rejected["above_ceiling"] == 1
    ports = by_name(check.update(device(4000, ether(), pppoe(10**13 + 168_750_000)), now=30.0))
    assert ports["pppoe-out1"].receive_bps == 90e6


def test_speedless_ports_without_type_use_the_fastest_port_with_a_speed():
    """No ifType read (an older recording): any port with a speed bounds the speedless one."""
    check = BandwidthCheck("r")
    slow = sample("ether1", 0, speed=100e6)
    check.update(device(1000, slow, sample("lte1", 0, index=2, speed=0.0)), now=0.0)
    ports = by_name(check.update(device(2500, slow, sample("lte1", 10**12, index=2, speed=0.0)),
                                 now=15.0))  # fmt: skip
    assert ports["lte1"].receive_bps is None
    assert check.rejected["above_ceiling"] == 1


def test_the_fastest_port_of_the_whole_table_counts_when_ports_filters_it_out():
    """`ports:` kept only pppoe-out1: the reading says the device's fastest port (the name
    cache) is 1 Gb/s, so 1 Gb/s of PPPoE traffic is believed, and 2 Gb/s is not."""
    check = BandwidthCheck("r")
    check.update(device(1000, pppoe(0), fastest=GBIT), now=0.0)
    (port,) = check.update(device(2000, pppoe(1_250_000_000), fastest=GBIT), now=10.0)
    assert port.receive_bps == GBIT
    (port,) = check.update(device(3000, pppoe(1_250_000_000 + 2_500_000_000), fastest=GBIT),
                           now=20.0)  # fmt: skip
    assert port.receive_bps is None


def test_no_speed_anywhere_falls_back_to_the_documented_default():
    check = BandwidthCheck("r")
    check.update(device(1000, pppoe(0)), now=0.0)
    (port,) = check.update(device(2000, pppoe(int(DEFAULT_CAPACITY_BPS / 8 * 10))), now=10.0)
    assert port.receive_bps == DEFAULT_CAPACITY_BPS
    (port,) = check.update(device(3000, pppoe(int(DEFAULT_CAPACITY_BPS / 8 * 10 * 3))), now=20.0)
    assert port.receive_bps is None  # twice the default: above 1.5 x
    assert check.rejected["above_ceiling"] == 1


def test_contract_times_margin_is_the_ceiling_and_overrides_a_made_up_speed():
    """A Cisco Dialer reports its `bandwidth` (56 kb/s) as ifSpeed; the contract says 100 Mb/s:
    150 Mb/s is believed (under 2 x 100), 300 Mb/s is not."""
    wan = InterfaceSettings(name="Dialer1", role="wan", capacity_down_mbps=100)
    check = BandwidthCheck("r", {"Dialer1": wan})
    dialer = sample("Dialer1", 0, speed=56_000.0, if_type=23)
    check.update(device(1000, dialer), now=0.0)
    (port,) = check.update(device(2000, replace(dialer, in_octets=187_500_000)), now=10.0)
    assert port.receive_bps == 150e6
    (port,) = check.update(device(3000, replace(dialer, in_octets=187_500_000 * 3)), now=20.0)
    assert port.receive_bps is None


def test_a_tunnels_made_up_speed_is_raised_to_the_fastest_physical_port():
    """Cisco Tunnel0: ifSpeed 100 kb/s (its configured bandwidth), real traffic 10 Mb/s."""
    check = BandwidthCheck("r")
    tunnel = sample("Tunnel0", 0, index=30, speed=100_000.0, if_type=131)
    check.update(device(1000, ether(), tunnel), now=0.0)
    ports = check.update(device(2000, ether(), replace(tunnel, in_octets=12_500_000)), now=10.0)
    assert by_name(ports)["Tunnel0"].receive_bps == 10e6
    # ... and its made-up speed is no capacity: 10 Mb/s is not "100 times full", saturated
    assert by_name(ports)["Tunnel0"].receive_capacity_bps is None
    assert by_name(ports)["Tunnel0"].utilization("receive") is None
    assert by_name(ports)["Tunnel0"].receive_saturated_seconds == 0.0


def test_cleared_32bit_counter_is_a_reset_not_a_wrap():
    """A PPPoE reconnect cleared a 32-bit counter from 3e9 to 1e6: read as a wrap it would be
    690 Mb/s on a device whose fastest port is 100 Mb/s. A reset: counted, no rate, no bytes."""
    check = BandwidthCheck("r")
    check.update(device(1000, ether(), pppoe(3_000_000_000, bits=32)), now=0.0)
    ports = by_name(check.update(device(2500, ether(), pppoe(1_000_000, bits=32)), now=15.0))
    assert ports["pppoe-out1"].receive_bps is None
    assert ports["pppoe-out1"].receive_bytes_total == 3_000_000_000
    assert check.rejected["counter_reset"] == 1
    ports = by_name(check.update(device(4000, ether(), pppoe(19_750_000, bits=32)), now=30.0))
    assert ports["pppoe-out1"].receive_bps == 10e6
    assert ports["pppoe-out1"].receive_bytes_total == 3_000_000_000 + 18_750_000


def test_32bit_wrap_within_the_ceiling_is_still_a_wrap():
    check = BandwidthCheck("r")
    check.update(device(1000, ether(), pppoe(2**32 - 1_000_000, bits=32)), now=0.0)
    ports = by_name(check.update(device(2500, ether(), pppoe(17_750_000, bits=32)), now=15.0))
    assert ports["pppoe-out1"].receive_bps == 10e6
    assert check.rejected == {}


def test_snmp_agent_restart_with_counters_going_on_keeps_the_rate():
    """snmpd restarted: sysUpTime fell to 10 s, the interface counters kept counting. The 9 GB
    counted since the router booted are not traffic of the last 15 s."""
    check = BandwidthCheck("r")
    check.update(device(500_000, ether(9_000_000), pppoe(9_000_000_000)), now=0.0)
    ports = by_name(check.update(device(1000, ether(27_750_000), pppoe(9_018_750_000)), now=15.0))
    for name, before in (("ether1", 9_000_000), ("pppoe-out1", 9_000_000_000)):
        assert ports[name].receive_bps == 10e6
        assert ports[name].receive_bytes_total == before + 18_750_000
    assert check.restarts == 1
    assert check.rejected == {}


def test_device_restart_adds_bytes_since_boot_only_when_plausible():
    check = BandwidthCheck("r")
    check.update(device(500_000, ether(), pppoe(9_000_000_000)), now=0.0)
    # rebooted 20 s ago: pppoe-out1 counted 25 MB since, ether1 0
    ports = by_name(check.update(device(2000, ether(), pppoe(25_000_000)), now=60.0))
    assert ports["pppoe-out1"].receive_bytes_total == 9_025_000_000
    assert ports["pppoe-out1"].receive_bps == 25_000_000 * 8 / 20
    check = BandwidthCheck("r")
    check.update(device(500_000, ether(), pppoe(9_000_000_000)), now=0.0)
    # went back, but 5 GB in 20 s of uptime is 2 Gb/s on a 100 Mb/s router: not since boot
    ports = by_name(check.update(device(2000, ether(), pppoe(5_000_000_000)), now=60.0))
    assert ports["pppoe-out1"].receive_bps is None
    assert ports["pppoe-out1"].receive_bytes_total == 9_000_000_000
    assert check.rejected["restart_implausible"] == 1


def test_a_32bit_counter_that_went_back_with_sysuptime_is_a_restart_never_a_wrap():
    """After a 5-minute power cut a wrap would be plausible over the gap, and add 1.3 GB."""
    check = BandwidthCheck("r")
    check.update(device(500_000, ether(), pppoe(3_000_000_000, bits=32)), now=0.0)
    ports = by_name(check.update(device(3000, ether(), pppoe(1_000_000, bits=32)), now=300.0))
    assert ports["pppoe-out1"].receive_bytes_total == 3_001_000_000
    assert ports["pppoe-out1"].receive_bps == 1_000_000 * 8 / 30


def test_sysuptime_rolling_over_after_497_days_is_not_a_restart():
    check = BandwidthCheck("r")
    check.update(device(2**32 - 500, ether(), pppoe(9_000_000_000)), now=0.0)
    ports = by_name(check.update(device(1000, ether(), pppoe(9_018_750_000)), now=15.0))
    assert check.restarts == 0
    assert ports["pppoe-out1"].receive_bps == 10e6
    assert ports["pppoe-out1"].receive_bytes_total == 9_018_750_000
    # the same fall without the 497 days behind it is a restart
    check = BandwidthCheck("r")
    check.update(device(200_000_000, ether(), pppoe(0)), now=0.0)
    check.update(device(1000, ether(), pppoe(0)), now=15.0)
    assert check.restarts == 1


def test_renumbered_port_continues_by_name_without_a_spike():
    """pppoe-out1 came back as ifIndex 21 with a new session's counters (32-bit): no wrap is
    read into it, the bytes since it came back are added, the rate resumes next poll."""
    check = BandwidthCheck("r")
    check.update(device(100_000, ether(), pppoe(3_000_000_000, bits=32)), now=0.0)
    ports = by_name(check.update(device(101_500, ether(), pppoe(1_000_000, index=21, bits=32)),
                                 now=15.0))  # fmt: skip
    assert ports["pppoe-out1"].receive_bps is None
    assert ports["pppoe-out1"].receive_bytes_total == 3_001_000_000
    assert check.rejected == {"port_reappeared": 1}
    ports = by_name(check.update(device(103_000, ether(), pppoe(19_750_000, index=21, bits=32)),
                                 now=30.0))  # fmt: skip
    assert ports["pppoe-out1"].receive_bps == 10e6


def test_port_missing_from_a_poll_comes_back_as_a_restart():
    """The PPPoE row vanished while the session was down, then came back, same ifIndex."""
    check = BandwidthCheck("r")
    check.update(device(100_000, ether(), pppoe(3_000_000_000, bits=32)), now=0.0)
    check.update(device(101_500, ether()), now=15.0)
    ports = by_name(check.update(device(103_000, ether(), pppoe(500_000, bits=32)), now=30.0))
    assert ports["pppoe-out1"].receive_bytes_total == 3_000_500_000
    assert ports["pppoe-out1"].receive_bps is None


def test_counter64_going_backwards_is_never_a_wrap():
    check = BandwidthCheck("r")
    check.update(device(1000, ether(), pppoe(5_000_000)), now=0.0)
    ports = by_name(check.update(device(2500, ether(), pppoe(4_000_000)), now=15.0))
    assert ports["pppoe-out1"].receive_bps is None
    assert ports["pppoe-out1"].receive_bytes_total == 5_000_000
    assert check.rejected["counter_reset"] == 1


def test_a_port_without_counters_this_poll_exports_no_stale_rate():
    check = BandwidthCheck("r")
    check.update(device(1000, ether(0)), now=0.0)
    check.update(device(2000, ether(12_500_000)), now=10.0)
    (port,) = check.update(device(3000, replace(ether(), in_octets=None)), now=20.0)
    assert port.receive_bps is None
    assert port.receive_bytes_total == 12_500_000


def test_each_refusal_is_logged_once_while_it_lasts(caplog):
    caplog.set_level(logging.INFO, logger="agent.checks.bandwidth")
    check = BandwidthCheck("core")
    check.update(device(1000, ether(), pppoe(0)), now=0.0)
    for step in range(1, 4):  # three polls of a counter running at 8 Tb/s
        check.update(
            device(1000 + step * 1500, ether(), pppoe(step * 15 * 10**12)), now=step * 15.0
        )
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert refused == [
        "core: pppoe-out1 receive: delta refused (above_ceiling): the delta would be "
        "15000000000000 bytes in 15.0 s, 8 Tb/s, above the port's ceiling of 150 Mb/s; "
        "not counted as traffic"
    ]
    assert check.rejected["above_ceiling"] == 3
    check.update(device(7000, ether(), pppoe(45 * 10**12 + 1000)), now=60.0)  # believable
    check.update(device(8500, ether(), pppoe(60 * 10**12)), now=75.0)
    assert len([r for r in caplog.records if "refused" in r.getMessage()]) == 2


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 2**64 - 1),  # raw counter
            st.integers(0, 2**32 - 1),  # sysUpTime ticks
            st.floats(0.5, 600),  # seconds since the previous poll
            st.integers(20, 22),  # ifIndex of pppoe-out1
            st.booleans(),  # 32-bit counters
        ),
        min_size=2,
        max_size=12,
    )
)
def test_no_exported_rate_is_ever_above_the_ceiling(polls):
    check = BandwidthCheck("r")
    now = 0.0
    for raw, ticks, gap, index, narrow in polls:
        now += gap
        bits = 32 if narrow else 64
        port = pppoe(raw % 2**bits, index=index, bits=bits)
        rate = by_name(check.update(device(ticks, ether(), port), now=now))["pppoe-out1"]
        assert rate.receive_bps is None or rate.receive_bps <= 100e6 * 1.5 * (1 + 1e-9)
