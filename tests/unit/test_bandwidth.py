"""Counter maths: wraps, restarts, implausible deltas. Pure logic, no device."""

from dataclasses import replace

from agent.bandwidth import BandwidthCheck, counter_delta
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
    assert check.rejected["above_speed"] == 1


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
