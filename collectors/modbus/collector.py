"""ModbusCollector: read a UPS's register blocks over Modbus TCP and decode them with its profile.

    collector = ModbusCollector("10.0.0.20", 502, 1, load_profile("apc-smart-ups"), 3.0, 2)
    reading = await collector.poll()
    reading.values  -> {"battery.charge": 87.0, "battery.runtime": 2400.0, ...}
    reading.flags   -> frozenset({"OL"})
    reading.requests -> 3 (one FC03 per block, plus any retries)

One request per profile block, every poll. The TCP connection is opened on the first poll and
kept, because UPS cards accept few connections; after any transport error it is closed so the
next poll starts clean. That connection is the only state kept between polls.
"""

from __future__ import annotations

import asyncio
import logging
import socket

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusIOException

from collectors.modbus.decode import DecodePlan
from collectors.modbus.profile import Block, ModbusProfile
from collectors.readings import PollError, UpsReading

log = logging.getLogger(__name__)

# Modbus application protocol 1.1b3, section 7, with what to check for each.
EXCEPTIONS: dict[int, tuple[str, str]] = {
    1: ("illegal function", "check the profile's register table (holding/input)"),
    2: ("illegal data address", "check that the profile matches this model and firmware"),
    3: ("illegal data value", "check the profile's block sizes"),
    4: ("device failure", "the device could not read its own data; restart its network card"),
    6: ("device busy", "poll less often or stop other Modbus masters"),
    10: ("gateway path unavailable", "check the gateway's routing for this unit id"),
    11: ("gateway target failed to respond", "check the unit id and the serial link"),
}

# pymodbus 3.16 raises ModbusIOException both for "no answer after retries" and for answers from
# the wrong unit or transaction; only the text tells them apart (transaction/transaction.py).
_NO_RESPONSE = "No response received"


class ModbusCollector:
    """One UPS behind one Modbus TCP endpoint and unit id."""

    def __init__(
        self,
        host: str,
        port: int,
        unit: int,
        profile: ModbusProfile,
        timeout: float,
        retries: int,
    ) -> None:
        self.host = host
        self.port = port
        self.unit = unit
        self.timeout = timeout
        self.retries = retries
        self._plan = DecodePlan(profile)
        self._client: AsyncModbusTcpClient | None = None
        host_part = f"[{host}]" if ":" in host else host
        self._where = f"{host_part}:{port} unit {unit}"

    async def poll(self) -> UpsReading:
        """Read every block once; raise PollError with a reason label on failure."""
        client = await self._connect()
        image: dict[tuple[str, int], int] = {}
        requests = 0
        for block in self._plan.profile.blocks:
            words, sent = await self._read(client, block)
            requests += sent
            image.update(((block.table, block.address + i), w) for i, w in enumerate(words))
        log.debug("%s: read %d registers in %d requests", self._where, len(image), requests)
        return self._plan.decode(image, requests)

    async def close(self) -> None:
        self._drop()

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def _connect(self) -> AsyncModbusTcpClient:
        if self._client is not None and self._client.connected:
            return self._client
        self._drop()  # a connection the peer closed; start again
        # reconnect_delay=0: pymodbus would otherwise reconnect in a background task on its own
        # schedule; we reconnect on the next poll instead.
        client = AsyncModbusTcpClient(
            self.host,
            port=self.port,
            timeout=self.timeout,
            retries=self.retries,
            reconnect_delay=0,
        )
        loop = asyncio.get_running_loop()
        started = loop.time()
        if not await client.connect():
            client.close()
            raise await self._connect_error(loop.time() - started)
        self._client = client
        return client

    async def _connect_error(self, elapsed: float) -> PollError:
        """Classify a failed connect. pymodbus logs the OSError and returns only False."""
        if elapsed >= 0.95 * self.timeout:
            return self._connect_timeout()
        # It failed fast, so nothing was established; one plain connect recovers the errno.
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), self.timeout
            )
        except ConnectionRefusedError:
            return PollError(
                "refused",
                f"{self._where}: connection refused; check the port and that Modbus TCP is "
                "enabled on the UPS network card",
            )
        except TimeoutError:
            return self._connect_timeout()
        except socket.gaierror as exc:
            return PollError(
                "unreachable",
                f"{self._where}: cannot resolve host ({exc.strerror}); check the name",
            )
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            return PollError(
                "unreachable", f"{self._where}: {reason}; check the address and the network path"
            )
        writer.close()
        return PollError(
            "unreachable",
            f"{self._where}: connect failed once, then worked; the card may be out of "
            "connection slots, check for other Modbus masters",
        )

    def _connect_timeout(self) -> PollError:
        return PollError(
            "timeout",
            f"{self._where}: no TCP connection within {self.timeout:g} s; check the address, "
            "routing and firewall",
        )

    async def _read(self, client: AsyncModbusTcpClient, block: Block) -> tuple[list[int], int]:
        """Words of one block and the number of requests it took (1 + retries)."""
        span = f"{block.table} {block.address}+{block.count}"
        read = (
            client.read_holding_registers
            if block.table == "holding"
            else client.read_input_registers
        )
        try:
            response = await read(block.address, count=block.count, device_id=self.unit)
        except ModbusIOException as exc:
            self._drop()
            if _NO_RESPONSE in exc.string:
                raise PollError(
                    "timeout",
                    f"{self._where}: no answer to {span} within {self.timeout:g} s "
                    f"({self.retries} retries); check the unit id and that Modbus is enabled",
                ) from None
            raise PollError(
                "protocol",
                f"{self._where}: answer to {span} did not match the request; check that only "
                "one device answers at this address",
            ) from None
        except ConnectionException:
            self._drop()
            raise await self._connect_error(0.0) from None
        except asyncio.CancelledError:
            self._drop()  # an answer may still be in flight; do not let it meet the next request
            raise
        if response.isError():
            code = response.exception_code
            meaning, hint = EXCEPTIONS.get(code, ("unknown exception", "see the device manual"))
            raise PollError(
                f"exception_{code}",
                f"{self._where}: Modbus exception {code} ({meaning}) reading {span}; {hint}",
            )
        words = list(response.registers)
        if len(words) != block.count:
            self._drop()  # framing may be off; do not trust the rest of this stream
            raise PollError(
                "decode",
                f"{self._where}: answer to {span} carried {len(words)} registers; check that "
                "the device really speaks Modbus TCP on this port",
            )
        return words, 1 + response.retries
