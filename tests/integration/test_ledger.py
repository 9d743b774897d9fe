"""The outage ledger through the real `erozgar-agent run` process, under libfaketime: an ISP
outage (the link's TCP target stops answering) is on record with its real length although NTP
steps the wall clock an hour in the middle of it, the seconds lost survive a restart, and the
ten minutes the agent was off are on record as the agent's."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .test_faults import start_agent, stepped_clock, stop_agent
from .test_service_loss import Samples, key, samples

pytestmark = pytest.mark.integration


class IspLine:
    """The far end of the link: a TCP port the probes connect to. A refused connect proves the
    path works (collectors/probe.py), so the line dies by no longer accepting: the listen
    queue fills and further SYNs go unanswered, as on a dead line."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.up, self.closed = True, False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.closed:
            if not self.up:
                time.sleep(0.05)
                continue
            with contextlib.suppress(TimeoutError):
                self.sock.accept()[0].close()

    def close(self) -> None:
        self.closed = True
        self.thread.join()
        self.sock.close()


def wait(port: int, what: str, ok: Callable[[Samples], bool], seconds: float = 30) -> Samples:
    deadline = time.monotonic() + seconds
    got: Samples = {}
    while time.monotonic() < deadline:
        try:
            got = samples(port)
        except OSError:  # not listening yet
            got = {}
        if got and ok(got):
            return got
        time.sleep(0.2)
    pytest.fail(f"{what}: not within {seconds} s; last scrape: {got}")


def lost(got: Samples, cause: str) -> float:
    return got[key("erozgar_link_unavailable_seconds_total", link="ptcl", cause=cause)]


def test_an_isp_outage_and_the_agents_own_gap_survive_ntp_steps_and_restarts(
    tmp_path: Path,
) -> None:
    offset, env = stepped_clock(tmp_path)
    isp = IspLine()
    config = {
        "site": {"id": "LDG-001"},
        "state_dir": str(tmp_path),
        "links": [
            {
                "name": "ptcl",
                "isp": "PTCL",
                "interval": 1,
                "count": 1,
                "timeout": 0.3,
                "targets": [{"name": "edge", "address": "127.0.0.1", "tcp_port": isp.port}],
            }
        ],
    }
    port, process = start_agent(config, tmp_path, env)
    try:
        wait(port, "the link up", lambda g: g.get(key("erozgar_link_up", link="ptcl")) == 1)
        isp.up = False  # the ISP's line dies
        down = time.monotonic()
        wait(port, "the loss", lambda g: g.get(key("erozgar_service_loss", cause="isp")) == 1)
        time.sleep(5)
        offset.write_text("+3600\n")  # NTP steps the wall clock an hour, mid-outage
        time.sleep(max(0.0, 24 - (time.monotonic() - down)))
        isp.up = True
        back = wait(port, "the outage on record", lambda g: lost(g, "isp") > 0)
        length = time.monotonic() - down
        assert 20 <= lost(back, "isp") <= length + 2, back
        assert back[key("erozgar_service_loss_seconds_total", cause="isp")] == lost(back, "isp")
    finally:
        log = stop_agent(process)
    assert "Traceback" not in log, log[-3000:]

    offset.write_text("+4200\n")  # the box was off for ten minutes (of wall clock)
    port, process = start_agent(config, tmp_path, env)
    try:
        agent_key = key("erozgar_link_unavailable_seconds_total", link="ptcl", cause="agent")
        again = wait(port, "the counters", lambda g: agent_key in g)
        assert lost(again, "isp") == lost(back, "isp")  # kept across the restart
        assert 600 <= lost(again, "agent") <= 620
        assert again[key("erozgar_service_loss_seconds_total", cause="agent")] == lost(
            again, "agent"
        )
    finally:
        log = stop_agent(process)
        isp.close()
    assert "the agent was not running for" in log
    records = [json.loads(line) for line in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    assert [(r["cause"], r["link"], r["isp"]) for r in records] == [
        ("isp", "ptcl", "PTCL"),
        ("agent", "", ""),
    ]
    outage = records[0]
    assert outage["seconds"] == lost(back, "isp")
    # the wall clock stepped an hour during it; the record did not
    assert 20 <= outage["seconds"] <= length + 2
