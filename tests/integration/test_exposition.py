"""The exposition a scrape returns: values, one device down not failing the rest, promtool lint."""

from __future__ import annotations

import subprocess

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agent.checks.bandwidth import BandwidthCheck
from agent.config import InterfaceSettings
from agent.poller import UpsJudge
from agent.state import AgentState, DeviceState, RouterStatus
from collectors.readings import InterfaceSample, SnmpReading, UpsReading
from exporters.prometheus import build_registry

from .conftest import require


def _router_state() -> DeviceState:
    wan = InterfaceSettings(name="ether1", role="wan", capacity_down_mbps=100, capacity_up_mbps=20)
    check = BandwidthCheck("core-router", {"ether1": wan})

    def reading(ticks: int, rx: int, tx: int) -> SnmpReading:
        port = InterfaceSample(
            1,
            "ether1",
            "ether1",
            'ISP "fibre"',
            True,
            True,
            1e9,
            rx,
            tx,
            64,
            in_errors=3,
            out_errors=0,
            in_discards=1,
            out_discards=2,
        )
        return SnmpReading(
            "rb4011", "RouterOS RB4011", "1.3.6.1.4.1.14988.1", ticks, (port,), 2, 40
        )

    check.update(reading(100, 1_000, 2_000), now=0.0)
    ports = check.update(reading(1600, 1_000 + 62_500_000, 2_000 + 12_500_000), now=10.0)
    state = DeviceState(
        "core-router", "snmp", up=True, reason="ok", last_success=1.7e9, poll_duration=0.25
    )
    state.status = RouterStatus(
        "rb4011", "RouterOS RB4011", "1.3.6.1.4.1.14988.1", 16.0, ports, 2, 40,
        counter_rejections=(("wrap_ambiguous", 2),),
    )  # fmt: skip
    return state


def _ups_state() -> DeviceState:
    state = DeviceState("ups-rack", "modbus", up=True, reason="ok", last_success=1.7e9)
    reading = UpsReading(
        values={
            "battery.charge": 87.0,
            "battery.runtime": 2280.0,
            "ups.load": 41.0,
            "input.voltage": 0.0,
            "output.voltage": 230.0,
            "output.frequency": 50.0,
        },
        info={"device.mfr": "APC", "device.model": "Smart-UPS SMT1500", "device.serial": "AS123"},
        flags=frozenset({"OB"}),
        known_flags=frozenset({"OL", "OB", "LB", "RB"}),
        invalid=("battery.temperature",),
    )
    UpsJudge("ups-rack").apply(reading, 0.0, state)
    return state


def _exposition() -> str:
    state = AgentState("ISB-001", "e-Rozgar Center Islamabad", "0.1.0")
    for device in (_router_state(), _ups_state()):
        state.devices[device.name] = device
    dead = DeviceState("sw-floor1", "snmp", up=False, reason="timeout")
    dead.errors["timeout"] = 4
    state.devices[dead.name] = dead
    return generate_latest(build_registry(state)).decode()


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def test_values_a_dashboard_reads():
    s = _samples(_exposition())
    wan = {"device": "core-router", "interface": "ether1", "role": "wan"}
    assert value(s, "erozgar_device_up", device="core-router", kind="snmp") == 1
    assert value(s, "erozgar_device_up", device="sw-floor1", kind="snmp") == 0
    assert value(s, "erozgar_device_down_reason", device="sw-floor1", reason="timeout") == 1
    assert value(s, "erozgar_device_poll_errors_total", device="sw-floor1", reason="timeout") == 4
    assert value(s, "erozgar_interface_receive_bytes_per_second", **wan) == 50e6 / 8
    assert value(s, "erozgar_interface_utilization_ratio", **wan, direction="receive") == 0.5
    assert value(s, "erozgar_interface_utilization_ratio", **wan, direction="transmit") == 0.5
    assert value(s, "erozgar_interface_receive_bytes_total", **wan) == 1_000 + 62_500_000
    assert value(s, "erozgar_interface_errors_total", **wan, direction="receive") == 3
    rejected = value(
        s, "erozgar_interface_rejected_deltas_total", device="core-router", reason="wrap_ambiguous"
    )
    assert rejected == 2
    assert value(s, "erozgar_ups_on_battery", device="ups-rack") == 1
    assert value(s, "erozgar_ups_status", device="ups-rack", flag="OB") == 1
    assert value(s, "erozgar_ups_status", device="ups-rack", flag="OL") == 0
    assert value(s, "erozgar_ups_battery_charge_ratio", device="ups-rack") == 0.87
    assert value(s, "erozgar_ups_load_ratio", device="ups-rack") == pytest.approx(0.41)
    assert value(s, "erozgar_ups_battery_runtime_seconds", device="ups-rack") == 2280
    assert (
        value(
            s,
            "erozgar_device_invalid_samples_total",
            device="ups-rack",
            field="battery.temperature",
        )
        == 1
    )
    info = {
        "device": "ups-rack",
        "manufacturer": "APC",
        "model": "Smart-UPS SMT1500",
        "serial": "AS123",
        "firmware": "",
        "battery_date": "",
    }
    assert value(s, "erozgar_ups_info", **info) == 1
    assert (
        value(
            s,
            "erozgar_agent_info",
            version="0.1.0",
            site="ISB-001",
            site_name="e-Rozgar Center Islamabad",
        )
        == 1
    )


def test_promtool_finds_nothing_to_lint(tmp_path):
    promtool = require("promtool")
    result = subprocess.run(
        [promtool, "check", "metrics"], input=_exposition(), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout + result.stderr == ""
