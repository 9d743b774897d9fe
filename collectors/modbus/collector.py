"""ModbusCollector: read a UPS's or generator controller's register blocks over Modbus and
decode them with its profile.

    collector = ModbusCollector("10.0.0.20", 502, 1, load_profile("apc-smart-ups"), 3.0, 2)
    reading = await collector.poll()
    reading.values  -> {"battery.charge": 87.0, "battery.runtime": 2400.0, ...}
    reading.flags   -> frozenset({"OL"})
    reading.requests -> 3 (one FC03 per block, plus any retries)

One request per profile block, every poll. The wire is a `Gateway` (collectors/modbus/transport):
Modbus TCP by default, or RTU on a serial port or over TCP when one is passed in; devices on the
same gateway share it, so their requests queue on one connection. The connection is opened on
the first poll and kept, because UPS cards and gateways accept few connections; after any
transport error it is closed so the next poll starts clean. That connection is the only state
kept between polls.
"""

from __future__ import annotations

import logging

from collectors.modbus.decode import DecodePlan
from collectors.modbus.inverter import inverter_reading
from collectors.modbus.profile import ModbusProfile
from collectors.modbus.transport import EXCEPTIONS, Gateway, Link
from collectors.readings import GensetReading, InverterReading, UpsReading

log = logging.getLogger(__name__)

__all__ = ["EXCEPTIONS", "ModbusCollector"]


class ModbusCollector:
    """One UPS: one unit id behind a Modbus TCP endpoint, a serial port or a serial gateway."""

    def __init__(
        self,
        host: str,
        port: int,
        unit: int,
        profile: ModbusProfile,
        timeout: float,
        retries: int,
        *,
        gateway: Gateway | None = None,
    ) -> None:
        self.unit = unit
        self._plan = DecodePlan(profile)
        self.gateway = gateway or Gateway(Link("tcp", host, port), timeout=timeout, retries=retries)
        self._where = f"{self.gateway.link} unit {unit}"

    @classmethod
    def on_gateway(cls, gateway: Gateway, unit: int, profile: ModbusProfile) -> ModbusCollector:
        """A UPS behind a (possibly shared) gateway; its link, timeout and retries apply."""
        link = gateway.link
        return cls(
            link.address, link.port, unit, profile, gateway.timeout, gateway.retries,
            gateway=gateway,
        )  # fmt: skip

    async def poll(self) -> UpsReading | GensetReading | InverterReading:
        """Read every block once into its role's reading; raise PollError with a reason label
        on failure."""
        image, requests = await self.read_image()
        decoded = self._plan.decode(image, requests)
        return inverter_reading(decoded) if self._plan.profile.role == "inverter" else decoded

    async def read_image(self) -> tuple[dict[tuple[str, int], int], int]:
        """The raw registers of every profile block, undecoded, and the requests sent.

        `check` re-decodes one image with other byte orders and profiles to say which would
        make implausible values plausible.
        """
        image: dict[tuple[str, int], int] = {}
        requests = 0
        for block in self._plan.profile.blocks:
            words, sent = await self.gateway.read(
                block.table, block.address, block.count, unit=self.unit, where=self._where
            )
            requests += sent
            image.update(((block.table, block.address + i), w) for i, w in enumerate(words))
        log.debug("%s: read %d registers in %d requests", self._where, len(image), requests)
        return image, requests

    async def close(self) -> None:
        """Close the gateway's connection (after any request in flight); the next poll reopens."""
        await self.gateway.close()
