"""The status page's HTML: what the admin reads, and nothing from a device unescaped."""

from __future__ import annotations

from types import MappingProxyType

from agent.checks.access import AccessSummary
from agent.checks.power import UpsStatus
from agent.state import AgentState, DeviceState, RouterStatus
from exporters.status_page import ago, render_page, status_document


def test_ago_reads_like_a_person():
    assert [ago(None), ago(12.4), ago(300), ago(7200), ago(3 * 86400)] == [
        "never", "12 s ago", "5 min ago", "2 h ago", "3 days ago",
    ]  # fmt: skip


def ups_state(model: str, on_battery: bool) -> DeviceState:
    status = UpsStatus(
        on_battery=on_battery, low_battery=False, replace_battery=False,
        flags=MappingProxyType({"OB": 1} if on_battery else {"OL": 1}),
        values=MappingProxyType({"battery.charge": 64.0, "battery.runtime": 1500.0}),
        info=MappingProxyType({"device.model": model}), invalid_fields=(),
    )  # fmt: skip
    return DeviceState("ups-1", "modbus", up=True, reason="ok", last_success=1000.0, status=status)


def test_device_texts_are_escaped_and_states_shown():
    state = AgentState("S-1", "Centre <b>1</b>", "1.0")
    state.devices["ups-1"] = ups_state('<script>alert("x")</script>', on_battery=True)
    state.devices["sw"] = DeviceState("sw", "snmp", up=False, reason="timeout", message="a & b")
    page = render_page(state, now=1012.0)
    assert "<script>alert" not in page and "&lt;script&gt;alert(&quot;x&quot;)" in page
    assert "Centre &lt;b&gt;1&lt;/b&gt;" in page
    assert "On battery" in page and "charge 64%, runtime 25 min" in page
    assert "last answer 12 s ago" in page and "last answer never" in page
    assert "Down: timeout" in page and "a &amp; b" in page


def test_status_document_lists_ups_and_devices():
    state = AgentState("S-1", "", "1.0")
    state.devices["ups-1"] = ups_state("SMT1500", on_battery=False)
    doc = status_document(state, now=1005.0)
    assert doc["ups"][0]["on_battery"] is False and doc["ups"][0]["charge_percent"] == 64.0
    assert doc["devices"][0]["last_success_age_seconds"] == 5.0
    assert doc["links"] == []


def test_ups_in_self_test_is_shown_as_a_self_test_not_a_cut():
    state = AgentState("S-1", "Centre", "1.0")
    status = UpsStatus(
        on_battery=False, low_battery=False, replace_battery=False,
        flags=MappingProxyType({"OB": 1, "TEST": 1}),
        values=MappingProxyType({"battery.charge": 99.0}),
        info=MappingProxyType({}), invalid_fields=(), state="self_test",
    )  # fmt: skip
    state.devices["ups-1"] = DeviceState("ups-1", "modbus", up=True, status=status)
    page = render_page(state, now=1000.0)
    assert "Self-test" in page and "On battery" not in page
    assert status_document(state)["ups"][0]["power_state"] == "self_test"


def test_a_silent_ups_shows_no_stale_charge_only_its_ledger():
    state = AgentState("S-1", "Centre", "1.0")
    device = ups_state("SMT1500", on_battery=True)
    device.up, device.reason = False, "timeout"
    state.devices["ups-1"] = device
    ups = status_document(state, now=1005.0)["ups"][0]
    assert (ups["on_battery"], ups["charge_percent"], ups["runtime_seconds"]) == (None, None, None)
    assert "charge 64%" not in render_page(state, now=1005.0)


def test_the_centre_power_source_has_its_card():
    from agent.checks.centre_power import CentrePowerStatus

    state = AgentState("S-1", "Centre", "1.0")
    state.power = CentrePowerStatus(
        "generator",
        MappingProxyType({"generator": 5400.0, "battery": 120.0, "solar": 0.0, "grid": 36000.0}),
        MappingProxyType({}),
    )
    page = render_page(state, now=1000.0)
    assert "On generator" in page
    assert "since the agent started: generator 1.5 h, battery 2 min, grid 10.0 h" in page
    assert status_document(state)["power"]["source"] == "generator"


def test_a_switch_shows_how_many_workstations_are_connected():
    """The access-port summary on the page: the site admin sees it without per-port detail."""
    summary = AccessSummary(ports=48, ports_up=23, totals=MappingProxyType({}), busiest=())
    status = RouterStatus("sw", "", "1.3.6.1.4.1.9", 100.0, (), 1, 10, access=summary)
    state = AgentState("S-1", "Centre", "1.0")
    state.devices["sw-1"] = DeviceState("sw-1", "snmp", up=True, last_success=999.0, status=status)
    state.devices["sw-2"] = DeviceState("sw-2", "snmp", up=False, reason="timeout", status=status)
    doc = status_document(state, now=1000.0)
    assert [d["access_ports"] for d in doc["devices"]] == [{"up": 23, "present": 48}, None]
    assert "23 of 48 access ports up" in render_page(state, now=1000.0)
