"""The daemon: config -> pollers on a schedule -> state -> HTTP endpoint, until a signal.

apscheduler runs one job per device at the device's interval. `max_instances=1` and
`coalesce=True` mean a slow device skips a beat instead of stacking polls, and each poll is cut
off at its budget, so one dead device never delays another.
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from pysnmp.hlapi.v3arch.asyncio import SnmpEngine

from collectors.host import read_host
from collectors.modbus.collector import ModbusCollector
from collectors.modbus.profile import load_profile
from collectors.snmp.collector import SnmpCollector
from exporters.http import MetricsServer
from exporters.prometheus import build_registry

from . import __version__
from .config import Config, ModbusDevice, SnmpDevice
from .poller import DevicePoller, RouterJudge, UpsJudge
from .state import AgentState, DeviceState

log = logging.getLogger(__name__)

# Share of the interval a poll may take before it is cut off; the rest is slack for the loop.
_BUDGET_SHARE = 0.9
_MAX_START_JITTER_SECONDS = 2.0


def poll_budget(interval: float, timeout: float, retries: int) -> float:
    """Time one poll may take: most of the interval, but at least one request's full retry."""
    return max(interval * _BUDGET_SHARE, timeout * (retries + 1))


def snmp_poller(device: SnmpDevice, state: DeviceState, engine: SnmpEngine) -> DevicePoller:
    host, port = device.host_port
    collector = SnmpCollector(
        host,
        port,
        device.community.get_secret_value(),
        version=device.version,
        timeout=device.timeout,
        retries=device.retries,
        engine=engine,
    )
    budget = poll_budget(device.interval, device.timeout, device.retries)
    return DevicePoller(state, collector, RouterJudge(device), budget)


def modbus_poller(device: ModbusDevice, state: DeviceState) -> DevicePoller:
    host, port = device.host_port
    collector = ModbusCollector(
        host, port, device.unit, load_profile(device.profile), device.timeout, device.retries
    )
    budget = poll_budget(device.interval, device.timeout, device.retries)
    return DevicePoller(state, collector, UpsJudge(device.name), budget)


def build(
    config: Config, engine: SnmpEngine
) -> tuple[AgentState, list[tuple[DevicePoller, float]]]:
    """The state and one (poller, interval) per configured device."""
    state = AgentState(config.site.id, config.site.name, __version__)
    pollers: list[tuple[DevicePoller, float]] = []
    for snmp in config.snmp:
        device_state = state.devices[snmp.name] = DeviceState(snmp.name, "snmp")
        pollers.append((snmp_poller(snmp, device_state, engine), snmp.interval))
    for modbus in config.modbus:
        device_state = state.devices[modbus.name] = DeviceState(modbus.name, "modbus")
        pollers.append((modbus_poller(modbus, device_state), modbus.interval))
    return state, pollers


async def serve(config: Config, listen: tuple[str, int], stop: asyncio.Event) -> None:
    """Run until `stop` is set. Binding the listen port is the only fatal error."""
    # One SNMP engine for all devices: each new engine costs ~0.09 CPU-s of MIB set-up.
    engine = SnmpEngine()
    state, pollers = build(config, engine)
    scheduler = AsyncIOScheduler()
    server = MetricsServer(build_registry(state), *listen, healthy=lambda: scheduler.running)
    server.start()
    host, port = server.address
    log.info(
        "erozgar-agent %s for site %s: %d devices, metrics on http://%s:%d/metrics",
        __version__,
        config.site.id,
        len(pollers),
        host,
        port,
    )

    def refresh_host() -> None:
        state.host = read_host(config.host.filesystems)

    refresh_host()
    now = datetime.now().astimezone()
    scheduler.add_job(refresh_host, "interval", seconds=config.host.interval, id="host")
    for poller, interval in pollers:
        jitter = random.uniform(0, min(interval, _MAX_START_JITTER_SECONDS))
        scheduler.add_job(
            poller.poll,
            "interval",
            seconds=interval,
            id=f"poll:{poller.state.name}",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(interval)),
            next_run_time=now + timedelta(seconds=jitter),
        )
    scheduler.start()
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        scheduler.shutdown(wait=False)
        await asyncio.gather(*(poller.close() for poller, _ in pollers))
        engine.close_dispatcher()
        server.stop()


async def run_until_signal(config: Config, listen: tuple[str, int]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await serve(config, listen, stop)
