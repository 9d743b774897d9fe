"""UPS over SNMP against the UPS recordings of snmpsim-data, and through the real poll path.

Each recording has tests/fixtures/snmp-ups/<name>/expected.yaml: the UPS profile detection
picks (null: not a UPS), the NUT values, identity, flags and invalid fields the recording
implies. EROZGAR_UPDATE_GOLDEN=1 rewrites them; review the diff against the .snmprec lines.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest

from agent.config import parse_config
from agent.healthcheck import check_snmp
from agent.poller import DevicePoller, RouterJudge
from agent.snmp_plan import PlannedSnmpCollector
from agent.state import AgentState, DeviceState
from agent.verdict import DeviceVerdict
from collectors.readings import SnmpReading
from collectors.snmp.client import SnmpSessions
from collectors.snmp.collector import SnmpCollector
from exporters.prometheus import build_registry
from exporters.status_page import status_document

from .conftest import Recording, SnmpPeer

FIXTURES = Path(__file__).parent.parent / "fixtures" / "snmp-ups"
UPDATE = os.environ.get("EROZGAR_UPDATE_GOLDEN") == "1"
UPS_RECORDINGS = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())


def poll(peer: SnmpPeer) -> SnmpReading:
    return asyncio.run(SnmpCollector(peer.host, peer.port, peer.community, timeout=5).poll())


def summary(reading: SnmpReading) -> dict[str, Any]:
    ups = reading.ups
    if ups is None:
        return {"ups": None, "interfaces": len(reading.interfaces)}
    return {
        "ups": {
            "values": dict(sorted(ups.values.items())),
            "info": dict(sorted(ups.info.items())),
            "flags": sorted(ups.flags),
            "invalid": sorted(ups.invalid),
        },
        "interfaces": len(reading.interfaces),
    }


def device_metrics(peer: SnmpPeer) -> tuple[str, DeviceState, AgentState]:
    """One poll through PlannedSnmpCollector, RouterJudge, DevicePoller and /metrics' registry."""
    config = parse_config(
        {
            "site": {"id": "ups"},
            "snmp": [{"name": "ups-card", "address": f"{peer.host}:{peer.port}",
                      "community": peer.community, "timeout": 5}],
        }
    )  # fmt: skip
    device = config.snmp[0]
    state = AgentState("ups", "", "test")
    device_state = state.devices["ups-card"] = DeviceState("ups-card", "snmp")
    collector = PlannedSnmpCollector(
        SnmpCollector(peer.host, peer.port, peer.community, timeout=5), device
    )
    asyncio.run(DevicePoller(device_state, collector, RouterJudge(device), 60).poll())
    return generate_latest(build_registry(state)).decode(), device_state, state


def sample(metrics: str, name: str) -> float | None:
    for line in metrics.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


@pytest.mark.parametrize("name", UPS_RECORDINGS)
def test_ups_recording_matches_golden_file(snmpsim: dict[str, Recording], name: str) -> None:
    assert name in snmpsim, f"add the recording UPS/{name} to RECORDINGS in conftest.py"
    got = summary(poll(snmpsim[name].peer))
    expected = FIXTURES / name / "expected.yaml"
    if UPDATE:
        expected.write_text(yaml.safe_dump(got, sort_keys=False, allow_unicode=True))
    assert got == yaml.safe_load(expected.read_text())


@pytest.mark.parametrize(
    "name", [n for n in UPS_RECORDINGS if yaml.safe_load((FIXTURES / n / "expected.yaml")
                                                          .read_text())["ups"]]
)  # fmt: skip
def test_ups_recording_exports_ups_metrics_without_sentinels(
    snmpsim: dict[str, Recording], name: str
) -> None:
    metrics, state, _ = device_metrics(snmpsim[name].peer)
    assert state.up, state.message
    ups_lines = [line for line in metrics.splitlines() if line.startswith("erozgar_ups_")]
    assert sample(metrics, "erozgar_ups_on_battery") == 0.0  # every recording is on mains
    assert sample(metrics, "erozgar_ups_status") is not None
    assert ups_lines
    assert not [line for line in ups_lines if float(line.rsplit(" ", 1)[1]) == -1]
    # the card's own ports are still there: a UPS card is also an SNMP device
    assert sample(metrics, 'erozgar_device_up{device="ups-card",kind="snmp"}') == 1.0


def test_eaton_through_device_poller_shows_charge_and_mains(
    snmpsim: dict[str, Recording],
) -> None:
    metrics, state, agent = device_metrics(snmpsim["eaton-93e-80"].peer)
    assert state.up, state.message
    # upsEstimatedChargeRemaining 100, upsOutputSource 3 (normal), upsBatteryVoltage 5210
    assert sample(metrics, "erozgar_ups_battery_charge_ratio") == 1.0
    assert sample(metrics, "erozgar_ups_on_battery") == 0.0
    assert sample(metrics, "erozgar_ups_battery_voltage_volts") == 521.0
    assert sample(metrics, "erozgar_ups_battery_runtime_seconds") == 1092 * 60
    assert 'erozgar_ups_status{device="ups-card",flag="OL"} 1.0' in metrics
    assert 'model="EATON 93E 80"' in metrics
    assert 'erozgar_interface_oper_up{device="ups-card"' in metrics
    # the status page lists it among the UPS, like a Modbus one
    [card] = status_document(agent)["ups"]
    assert (card["name"], card["model"]) == ("ups-card", "EATON 93E 80")
    assert card["charge_percent"] == 100


def test_huawei_unknowns_are_counted_not_exported(snmpsim: dict[str, Recording]) -> None:
    metrics, state, _ = device_metrics(snmpsim["huawei-gse200m"].peer)
    assert state.up, state.message
    # the card answers -1 for charge, runtime and temperature: no sample, a count instead
    assert sample(metrics, "erozgar_ups_battery_charge_ratio") is None
    assert sample(metrics, "erozgar_ups_battery_runtime_seconds") is None
    for field in ("battery.charge", "battery.runtime", "battery.temperature"):
        line = f'erozgar_device_invalid_samples_total{{device="ups-card",field="{field}"}} 1.0'
        assert line in metrics
    assert sample(metrics, "erozgar_ups_load_ratio") == 0.08  # upsOutputPercentLoad 8


def test_check_shows_a_ups_card_without_ports_as_a_ups_not_a_failed_router(
    snmpsim: dict[str, Recording],
) -> None:
    peer = snmpsim["huawei-gse200m"].peer  # UPS-MIB only, no IF-MIB rows
    config = parse_config(
        {
            "site": {"id": "ups"},
            "snmp": [{"name": "ups-card", "address": f"{peer.host}:{peer.port}",
                      "community": peer.community, "timeout": 5}],
        }
    )  # fmt: skip

    async def run() -> DeviceVerdict:
        sessions = SnmpSessions()
        try:
            return await check_snmp(config.snmp[0], sessions, sample_seconds=0)
        finally:
            await sessions.close()

    verdict = asyncio.run(run())
    steps = {step.name: step for step in verdict.checks}
    assert steps["ups"].detail == "UPS over SNMP: UPS5000"
    assert steps["battery"].status == "PASS"
    assert "interfaces" not in steps
    assert verdict.status != "FAIL"
