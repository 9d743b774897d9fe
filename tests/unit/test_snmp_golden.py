"""snmpsim-data recordings of real devices through the collector, checks and exporter, replayed.

Every folder under tests/fixtures/snmp/ is one recording (its name is the recording's file name);
its expected.prom holds the agent's metrics for that device after one poll, without timing-
dependent lines (tests/golden.py). Every folder under tests/fixtures/snmp-ups/ has expected.yaml:
the UPS profile detection picks (null: not a UPS), the NUT values, identity, flags and invalid
fields the recording implies. EROZGAR_UPDATE_GOLDEN=1 rewrites both kinds; review the diff
against the .snmprec lines.

Here the recordings are replayed in-process (tests/snmp_replay.py): no snmpsim, a poll takes
milliseconds. tests/integration/test_snmp_acceptance.py and test_snmp_ups.py run these same
tests against a real snmpsim serving the same files, by giving them other `recordings` and
`sessions` fixtures: both paths must match the same golden files.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest

from agent.commission.snmp import check_snmp
from agent.config import parse_config
from agent.poller import DevicePoller, RouterJudge
from agent.snmp_plan import PlannedSnmpCollector
from agent.state import AgentState, DeviceState
from agent.verdict import DeviceVerdict
from collectors.readings import SnmpReading
from collectors.snmp.client import SnmpSessions
from collectors.snmp.collector import (
    IF_ADMIN_STATUS,
    IF_DESCR,
    IF_NAME,
    IF_OPER_STATUS,
    IF_SPEED,
    SnmpCollector,
)
from exporters.prometheus import build_registry
from exporters.status_page import status_document
from tests.golden import UPDATE, assert_golden, device_exposition
from tests.snmp_replay import (
    RECORDINGS,
    Recording,
    ReplaySessions,
    SnmpPeer,
    load,
    recording_name,
    recording_path,
)

FIXTURES = Path(__file__).parents[1] / "fixtures"
ROUTERS = sorted(p.name for p in (FIXTURES / "snmp").iterdir() if p.is_dir())
UPS_RECORDINGS = sorted(p.name for p in (FIXTURES / "snmp-ups").iterdir() if p.is_dir())
UPS_CARDS = [
    name
    for name in UPS_RECORDINGS
    if yaml.safe_load((FIXTURES / "snmp-ups" / name / "expected.yaml").read_text())["ups"]
]


@pytest.fixture(scope="module")
def recordings() -> dict[str, Recording]:
    """Each recording under its name, which is also its community, as snmpsim serves them."""
    paths = [recording_path(relative) for relative in RECORDINGS]
    return {
        recording_name(path): Recording(SnmpPeer("127.0.0.1", 161, recording_name(path)), path)
        for path in paths
    }


@pytest.fixture
def sessions(recordings: dict[str, Recording]) -> SnmpSessions:
    return ReplaySessions(recording.path for recording in recordings.values())


def collector(peer: SnmpPeer, sessions: SnmpSessions) -> SnmpCollector:
    return SnmpCollector(
        peer.host, peer.port, peer.community, timeout=5, retries=1, sessions=sessions
    )


def polled_state(
    peer: SnmpPeer, sessions: SnmpSessions, name: str
) -> tuple[AgentState, DeviceState]:
    """One poll through PlannedSnmpCollector, RouterJudge and DevicePoller into the state."""
    config = parse_config(
        {
            "site": {"id": "golden"},
            "snmp": [{"name": name, "address": f"{peer.host}:{peer.port}",
                      "community": peer.community, "timeout": 5, "retries": 1}],
        }
    )  # fmt: skip
    device = config.snmp[0]
    state = AgentState("golden", "", "test")
    device_state = state.devices[name] = DeviceState(name, "snmp")
    planned = PlannedSnmpCollector(collector(peer, sessions), device)
    asyncio.run(DevicePoller(device_state, planned, RouterJudge(device), 60).poll())
    return state, device_state


def recorded_names(path: Path) -> list[str]:
    """Interface names as the recording implies them: ifName, else ifDescr, else if<index>,
    made unique with #index like the collector does."""
    recorded = load(path)
    indexes = {
        index
        for column in (IF_DESCR, IF_SPEED, IF_ADMIN_STATUS, IF_OPER_STATUS)
        for index in recorded.column(column)
    }
    if_names, if_descrs = recorded.column(IF_NAME), recorded.column(IF_DESCR)

    def text(value: object) -> str:
        return value.rstrip("\x00").strip() if isinstance(value, str) else ""

    names = {i: text(if_names.get(i)) or text(if_descrs.get(i)) or f"if{i}" for i in indexes}
    counts = Counter(names.values())
    return sorted(f"{n}#{i}" if counts[n] > 1 else n for i, n in names.items())


@pytest.mark.parametrize("name", ROUTERS)
def test_recording_matches_golden_file(
    recordings: dict[str, Recording], sessions: SnmpSessions, name: str
) -> None:
    assert name in recordings, f"add the recording {name} to RECORDINGS in tests/snmp_replay.py"
    recording = recordings[name]
    state, device_state = polled_state(recording.peer, sessions, "dut")
    assert device_state.up, device_state.message
    metrics = device_exposition(state, "dut")
    # every port has a saturated-seconds line, so the interface labels are all the ports
    exported = {
        line.split('interface="', 1)[1].split('"', 1)[0]
        for line in metrics.splitlines()
        if 'interface="' in line
    }
    assert sorted(exported) == recorded_names(recording.path)
    assert_golden(FIXTURES / "snmp" / name / "expected.prom", metrics)


# --- UPS over SNMP ------------------------------------------------------------------------


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


def ups_metrics(peer: SnmpPeer, sessions: SnmpSessions) -> tuple[str, DeviceState, AgentState]:
    """One poll of a UPS card, and the whole /metrics registry after it."""
    state, device_state = polled_state(peer, sessions, "ups-card")
    return generate_latest(build_registry(state)).decode(), device_state, state


def sample(metrics: str, name: str) -> float | None:
    for line in metrics.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


@pytest.mark.parametrize("name", UPS_RECORDINGS)
def test_ups_recording_matches_golden_file(
    recordings: dict[str, Recording], sessions: SnmpSessions, name: str
) -> None:
    assert name in recordings, f"add the recording UPS/{name} to RECORDINGS in tests/snmp_replay.py"
    got = summary(asyncio.run(collector(recordings[name].peer, sessions).poll()))
    expected = FIXTURES / "snmp-ups" / name / "expected.yaml"
    if UPDATE:
        expected.write_text(yaml.safe_dump(got, sort_keys=False, allow_unicode=True))
    assert got == yaml.safe_load(expected.read_text())


@pytest.mark.parametrize("name", UPS_CARDS)
def test_ups_recording_exports_ups_metrics_without_sentinels(
    recordings: dict[str, Recording], sessions: SnmpSessions, name: str
) -> None:
    metrics, state, _ = ups_metrics(recordings[name].peer, sessions)
    assert state.up, state.message
    ups_lines = [line for line in metrics.splitlines() if line.startswith("erozgar_ups_")]
    assert sample(metrics, "erozgar_ups_on_battery") == 0.0  # every recording is on mains
    assert sample(metrics, "erozgar_ups_status") is not None
    assert ups_lines
    assert not [line for line in ups_lines if float(line.rsplit(" ", 1)[1]) == -1]
    # the card's own ports are still there: a UPS card is also an SNMP device
    assert sample(metrics, 'erozgar_device_up{device="ups-card",kind="snmp"}') == 1.0


def test_eaton_through_device_poller_shows_charge_and_mains(
    recordings: dict[str, Recording], sessions: SnmpSessions
) -> None:
    metrics, state, agent = ups_metrics(recordings["eaton-93e-80"].peer, sessions)
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


def test_huawei_unknowns_are_counted_not_exported(
    recordings: dict[str, Recording], sessions: SnmpSessions
) -> None:
    metrics, state, _ = ups_metrics(recordings["huawei-gse200m"].peer, sessions)
    assert state.up, state.message
    # the card answers -1 for charge, runtime and temperature: no sample, a count instead
    assert sample(metrics, "erozgar_ups_battery_charge_ratio") is None
    assert sample(metrics, "erozgar_ups_battery_runtime_seconds") is None
    for field in ("battery.charge", "battery.runtime", "battery.temperature"):
        line = f'erozgar_device_invalid_samples_total{{device="ups-card",field="{field}"}} 1.0'
        assert line in metrics
    assert sample(metrics, "erozgar_ups_load_ratio") == 0.08  # upsOutputPercentLoad 8


def test_check_shows_a_ups_card_without_ports_as_a_ups_not_a_failed_router(
    recordings: dict[str, Recording], sessions: SnmpSessions
) -> None:
    peer = recordings["huawei-gse200m"].peer  # UPS-MIB only, no IF-MIB rows
    config = parse_config(
        {
            "site": {"id": "ups"},
            "snmp": [{"name": "ups-card", "address": f"{peer.host}:{peer.port}",
                      "community": peer.community, "timeout": 5}],
        }
    )  # fmt: skip

    async def run() -> DeviceVerdict:
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
