"""Golden tests: recorded `upsc` dumps of real UPS through NutCollector, checks and exporter.

Each tests/fixtures/nut/<model>.dev (see the README there) is served by a small upsd on
loopback (tests/nut_replay.py) and polled by the daemon's own nut_poller; the device's lines on
/metrics must equal <model>.expected.prom (tests/golden.py; EROZGAR_UPDATE_GOLDEN=1 rewrites).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agent.config import parse_config
from agent.kinds.nut import nut_poller
from agent.state import AgentState, DeviceState
from tests.golden import assert_golden, poll_once
from tests.nut_replay import UpsdReplay, read_dev

FIXTURES = Path(__file__).parents[1] / "fixtures" / "nut"
DUMPS = sorted(FIXTURES.glob("*.dev"))


def test_dev_files_read_as_dummy_ups_reads_them(tmp_path: Path) -> None:
    dev = tmp_path / "quirks.dev"
    dev.write_text(
        "# a comment\n"
        "\n"
        "battery.charge.low: 10\t#COMMENT: after the value\n"
        "device.model:  CP 1000D\n"
        'ups.test.result: "Done and passed"\n'
        "#RW:battery.charge.low:STRING:10\n"
    )
    assert read_dev(dev) == [
        ("battery.charge.low", "10"),
        ("device.model", "CP 1000D"),
        ("ups.test.result", "Done and passed"),
    ]


@pytest.mark.parametrize("dump", DUMPS, ids=[dump.stem for dump in DUMPS])
def test_upsc_dump_exports_expected_metrics(dump: Path) -> None:
    async def exposition() -> str:
        server = UpsdReplay({"ups": read_dev(dump)})
        host, port = await server.start()
        config = parse_config(
            {
                "site": {"id": "golden"},
                "nut": [{"name": "dut", "address": f"{host}:{port}", "ups": "ups"}],
            }
        )
        state = AgentState("golden", "", "test")
        device_state = state.devices["dut"] = DeviceState("dut", "nut")
        try:
            return await poll_once(nut_poller(config.nut[0], device_state), state, "dut")
        finally:
            await server.stop()

    assert_golden(dump.with_name(f"{dump.stem}.expected.prom"), asyncio.run(exposition()))
