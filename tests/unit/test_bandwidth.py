"""Counter maths: wraps, restarts, implausible deltas. Pure logic, no device."""

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
