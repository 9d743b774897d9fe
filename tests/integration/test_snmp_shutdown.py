"""The agent stopping while an SNMPv3 poll waits for its answer: no traceback in the log and
no socket left open.

With pysnmp, closing the shared engine right after a datagram was read made asyncio log
"Exception in callback ... Unregistered transport" (seen in bench/soak.py runs). usm.py has one
socket per poll (udp.py); a cancelled poll must close it, and so must a poll that ends in the
engine discovery.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

import pytest

from collectors.readings import PollError
from collectors.snmp.client import SnmpSessions, UsmAuth
from collectors.snmp.collector import SnmpCollector
from simulators.snmp_router import SimInterface, SimulatedRouter

pytestmark = pytest.mark.integration


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_cancelled_or_failed_v3_poll_leaves_no_traceback_and_no_socket() -> None:
    async def go() -> tuple[list[dict[str, Any]], int, int]:
        loop = asyncio.get_running_loop()
        errors: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _, context: errors.append(context))
        # a v2c simulator: it ignores SNMPv3, so a v3 poll waits in the engine discovery
        router = SimulatedRouter("r", [SimInterface("ether1", 1e9, 1e6, 1e6)], community="c")
        host, port = await router.start("127.0.0.1", 0)
        sessions = SnmpSessions()
        usm = UsmAuth("u", "SHA", "authpass-u", "AES", "privpass-u")
        before = open_descriptors()
        try:
            waiting = SnmpCollector(
                host, port, version="3", usm=usm, timeout=5, retries=0, sessions=sessions
            )
            poll = asyncio.create_task(waiting.poll())
            await asyncio.sleep(0.2)
            poll.cancel()  # the agent stopping
            with contextlib.suppress(asyncio.CancelledError):
                await poll
            silent = SnmpCollector(
                host, port, version="3", usm=usm, timeout=0.2, retries=0, sessions=sessions
            )
            with pytest.raises(PollError):
                await silent.poll()
            await sessions.close()
            await asyncio.sleep(0.05)  # anything still queued runs now
            after = open_descriptors()
        finally:
            await router.stop()
        return errors, before, after

    errors, before, after = asyncio.run(go())
    assert errors == [], [str(e.get("exception") or e.get("message")) for e in errors]
    assert after == before
