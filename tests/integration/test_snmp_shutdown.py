"""The agent stopping while an SNMPv3 answer is on its way: no traceback in the log.

pysnmp (the SNMPv3 transport) queues each datagram it reads on the loop; closing the engine
right after one was read made asyncio log "Exception in callback ... Unregistered transport"
(seen in bench/soak.py runs, at every stop that raced a slow device's late answer).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pysnmp.hlapi.v3arch.asyncio import SnmpEngine, UdpTransportTarget

from collectors.readings import PollError
from collectors.snmp.client import UsmAuth
from collectors.snmp.v3 import PysnmpTransport, close_engine
from simulators.snmp_router import SimInterface, SimulatedRouter

pytestmark = pytest.mark.integration


def test_close_engine_delivers_an_answer_already_read() -> None:
    async def go() -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        errors: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _, context: errors.append(context))
        router = SimulatedRouter("r", [SimInterface("ether1", 1e9, 1e6, 1e6)], community="c")
        host, port = await router.start("127.0.0.1", 0)
        engine = SnmpEngine()
        try:
            transport = await PysnmpTransport.create(
                host, port, UsmAuth("u"), timeout=0.2, retries=0, engine=engine
            )
            with pytest.raises(PollError):  # the v2c simulator ignores v3; the socket is open
                await transport.discover_engine_id()
            udp = engine.transport_dispatcher.get_transport(UdpTransportTarget.TRANSPORT_DOMAIN)
            # a late answer read off the socket just before the agent stops
            udp.datagram_received(b"\x30\x00", (host, port))
            await close_engine(engine)
            await asyncio.sleep(0.05)  # anything still queued runs now
        finally:
            await router.stop()
        return errors

    errors = asyncio.run(go())
    assert errors == [], [str(e.get("exception") or e.get("message")) for e in errors]
