"""Real-device acceptance: snmpsim recordings through the real collector, checks and exporter.

Every folder under tests/fixtures/snmp/ is one recording served by the snmpsim fixture (its
name is the recording's file name); its expected.prom holds the agent's metrics for that
device after one poll, without timing-dependent lines (poll duration and wire counts, uptime,
timestamps). Regenerate after a deliberate change with EROZGAR_UPDATE_GOLDEN=1 and review the
diff. `pytest -m slow` also runs every network/* recording of snmpsim-data once (it
decompresses and indexes 1.3 GB: minutes, so deselected by default).
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from agent.config import parse_config
from agent.poller import DevicePoller, RouterJudge
from agent.snmp_plan import PlannedSnmpCollector
from agent.state import AgentState, DeviceState
from collectors.readings import PollError
from collectors.snmp.collector import SnmpCollector
from exporters.prometheus import AgentCollector
from tests.integration.conftest import Recording, SnmpPeer, serve_recordings, snmpsim_data
from tests.integration.test_snmp_collector import IF_ENTRY, IFX_ENTRY, column, read_snmprec

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parents[1] / "fixtures" / "snmp"
UPDATE = os.environ.get("EROZGAR_UPDATE_GOLDEN") == "1"
# Lines that depend on timing or on the responder, not on the device.
VOLATILE = (
    "erozgar_device_poll_duration_seconds",
    "erozgar_device_last_success_timestamp_seconds",
    "erozgar_device_uptime_seconds",
    "erozgar_snmp_poll_",
)


def fixture_names() -> list[str]:
    return sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())


def agent_metrics(peer: SnmpPeer) -> tuple[str, DeviceState]:
    """One poll through collector, RouterJudge and AgentCollector; the device's sample lines."""
    config = parse_config(
        {
            "site": {"id": "golden"},
            "snmp": [
                {"name": "dut", "address": f"{peer.host}:{peer.port}", "community": peer.community,
                 "timeout": 5, "retries": 1}
            ],
        }
    )  # fmt: skip
    device = config.snmp[0]
    state = AgentState("golden", "", "test")
    device_state = state.devices["dut"] = DeviceState("dut", "snmp")
    collector = PlannedSnmpCollector(
        SnmpCollector(peer.host, peer.port, peer.community, timeout=5, retries=1), device
    )
    asyncio.run(DevicePoller(device_state, collector, RouterJudge(device), 60).poll())
    registry = CollectorRegistry()
    registry.register(AgentCollector(state))
    lines = [
        line
        for line in generate_latest(registry).decode().splitlines()
        if 'device="dut"' in line and not line.startswith(VOLATILE)
    ]
    return "\n".join(sorted(lines)) + "\n", device_state


def recorded_names(path: Path) -> list[str]:
    """Interface names as the recording implies them: ifName, else ifDescr, else if<index>,
    made unique with #index like the collector does."""
    values = read_snmprec(path)
    indexes = (
        set(column(values, IF_ENTRY + "2."))
        | set(column(values, IF_ENTRY + "5."))
        | set(column(values, IF_ENTRY + "7."))
        | set(column(values, IF_ENTRY + "8."))
    )
    if_names, if_descrs = column(values, IFX_ENTRY + "1."), column(values, IF_ENTRY + "2.")

    def text(value: object) -> str:
        return value.rstrip("\x00").strip() if isinstance(value, str) else ""

    names = {i: text(if_names.get(i)) or text(if_descrs.get(i)) or f"if{i}" for i in indexes}
    counts = Counter(names.values())
    return sorted(f"{n}#{i}" if counts[n] > 1 else n for i, n in names.items())


@pytest.mark.parametrize("name", fixture_names())
def test_recording_matches_golden_file(snmpsim: dict[str, Recording], name: str) -> None:
    assert name in snmpsim, f"add the recording {name} to RECORDINGS in conftest.py"
    recording = snmpsim[name]
    metrics, device_state = agent_metrics(recording.peer)
    assert device_state.up, device_state.message
    # every port has a saturated-seconds line, so the interface labels are all the ports
    exported = {
        line.split('interface="', 1)[1].split('"', 1)[0]
        for line in metrics.splitlines()
        if 'interface="' in line
    }
    assert sorted(exported) == recorded_names(recording.path)
    expected = FIXTURES / name / "expected.prom"
    if UPDATE:
        expected.write_text(metrics)
    assert expected.exists(), f"no {expected}: run with EROZGAR_UPDATE_GOLDEN=1 and review it"
    assert metrics == expected.read_text()


@pytest.fixture(scope="module")
def every_recording() -> Iterator[list[tuple[str, SnmpPeer]]]:
    """snmpsim serving every network/* recording of snmpsim-data (slow: `pytest -m slow`)."""
    files = sorted((snmpsim_data() / "network").glob("*/*.snmprec*"))
    kinds = {f.name.removesuffix(".bz2").removesuffix(".snmprec"): f.parent.name for f in files}

    def c3560(served: dict[str, Recording]) -> list[SnmpPeer]:
        # a recording without sysName never "answers": wait for one that has it
        return [served["cisco-c3560"].peer]

    with serve_recordings(files, c3560, 900) as served:
        yield [(f"{kinds[name]}/{name}", r.peer) for name, r in sorted(served.items())]


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_every_network_recording_polls_or_fails_cleanly(
    every_recording: list[tuple[str, SnmpPeer]],
) -> None:
    outcomes: dict[str, str] = {}
    for name, peer in every_recording:
        collector = SnmpCollector(peer.host, peer.port, peer.community, timeout=10, retries=1)
        try:
            reading = asyncio.run(collector.poll())
        except PollError as exc:
            outcomes[name] = f"PollError {exc.reason}: {exc}"
        else:
            outcomes[name] = f"{len(reading.interfaces)} interfaces, {reading.requests} requests"
    print("\n".join(f"{name}: {outcome}" for name, outcome in sorted(outcomes.items())))
    assert len(outcomes) == len(every_recording)
