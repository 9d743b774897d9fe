"""Real-device acceptance against a real snmpsim: the golden tests of test_snmp_golden.py.

tests/unit/test_snmp_golden.py replays each recording in-process; here the same test runs with
snmpsim serving the same files, so both must match the same tests/fixtures/snmp/<name>/
expected.prom (which also shows that the replay answers as snmpsim does). `pytest -m slow` also
runs every network/* recording of snmpsim-data once (it decompresses and indexes 1.3 GB:
minutes, so deselected by default).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from collectors.readings import PollError
from collectors.snmp.client import SnmpSessions
from collectors.snmp.collector import SnmpCollector
from tests.integration.conftest import Recording, SnmpPeer, serve_recordings, snmpsim_data
from tests.snmp_replay import recording_name
from tests.unit.test_snmp_golden import test_recording_matches_golden_file  # noqa: F401 (run here)

pytestmark = pytest.mark.integration


@pytest.fixture
def recordings(snmpsim: dict[str, Recording]) -> dict[str, Recording]:
    return snmpsim


@pytest.fixture
def sessions() -> SnmpSessions:
    return SnmpSessions()


@pytest.fixture(scope="module")
def every_recording() -> Iterator[list[tuple[str, SnmpPeer]]]:
    """snmpsim serving every network/* recording of snmpsim-data (slow: `pytest -m slow`)."""
    files = sorted((snmpsim_data() / "network").glob("*/*.snmprec*"))
    kinds = {recording_name(f): f.parent.name for f in files}

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
