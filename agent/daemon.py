"""The daemon: config -> pollers on a schedule -> state -> HTTP endpoint, until a signal.

agent/schedule.py runs one job per device at the device's interval on the monotonic clock: a
slow device skips a beat instead of stacking polls, each poll is cut off at its budget, so one
dead device never delays another, and a jump of the wall clock changes nothing. SIGHUP or
POST /-/reload re-reads the config (agent/reload.py); agent/fleet.py keeps unchanged devices.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
import time
from pathlib import Path

from collectors.modbus.transport import GatewayPool
from collectors.snmp.client import SnmpSessions
from exporters.auth import AuthGate
from exporters.exposition import TextRegistry
from exporters.genset import CentrePowerCollector
from exporters.http import MetricsServer
from exporters.prometheus import build_registry
from exporters.runtime import RuntimeCollector
from exporters.service import ServiceCollector
from exporters.web_config import WebGuard

from . import __version__
from .checks.availability import AvailabilityCheck
from .checks.centre_power import CentrePower, power_view
from .checks.service import ServiceCheck, site_view
from .config import Config, DeviceSettings
from .fleet import Fleet, PollerFactory
from .kinds import Pools, configured, kind_of
from .poller import DevicePoller
from .reload import Reloader
from .schedule import MonotonicScheduler
from .state import AgentState, DeviceState

log = logging.getLogger(__name__)

# How often the losses of service are judged from the latest polls and probes (cheap: no I/O).
_SERVICE_SECONDS = 1.0
# How often /metrics text is rendered for the devices polled since a scrape read their text
# (exporters/prometheus.py AgentCollector.prerender).
_PRERENDER_SECONDS = 1.0


def poller_factory(sessions: SnmpSessions) -> PollerFactory:
    """Builds any device's poller; SNMP devices share `sessions`, Modbus ones the gateway pool."""

    def make(
        device: DeviceSettings, state: DeviceState, gateways: GatewayPool, state_dir: str
    ) -> DevicePoller:
        return kind_of(device).poller(device, state, Pools(sessions, gateways), state_dir)

    return make


def build(
    config: Config, sessions: SnmpSessions
) -> tuple[AgentState, list[tuple[DevicePoller, float]]]:
    """The state and one (poller, interval) per configured device, unscheduled."""
    state = AgentState(config.site.id, config.site.name, __version__)
    make, gateways = poller_factory(sessions), GatewayPool()
    pollers: list[tuple[DevicePoller, float]] = []
    for device in configured(config):
        device_state = state.devices[device.name] = DeviceState(device.name, kind_of(device).name)
        pollers.append((make(device, device_state, gateways, config.state_dir), device.interval))
    return state, pollers


async def serve(
    config: Config,
    listen: tuple[str, int],
    stop: asyncio.Event,
    *,
    config_path: str | Path | None = None,  # given: SIGHUP and POST /-/reload re-read it
    web_config_file: str | None = None,  # --web.config.file; else the config's key
) -> None:
    """Run until `stop` is set. Binding the listen port is the only fatal error (a broken web
    config file is caught before: exporters.web_config.WebConfigError)."""
    sessions = SnmpSessions()  # one for all SNMP devices (it keeps the v3 agents' clocks)
    state = AgentState(config.site.id, config.site.name, __version__)
    scheduler = MonotonicScheduler()
    # the ledger is the site's, not a device's: a reload keeps it (and its state_dir)
    availability = AvailabilityCheck(config.state_dir)
    fleet = Fleet(state, scheduler, poller_factory(sessions), availability.record_capacity)
    web_file = web_config_file or config.web_config_file
    gate = AuthGate(WebGuard(web_file)) if web_file else None

    def applied(new: Config) -> None:
        """Settings a reload cannot move while running: say so instead of ignoring them."""
        old = reloader.config
        if new.listen_host_port != old.listen_host_port:
            log.warning("listen: the change takes effect at the next restart")
        new_web = web_config_file or new.web_config_file
        if gate is not None and new_web is not None:
            gate.guard.path = Path(new_web)  # read on the next request
        elif new_web != web_file:
            log.warning("web_config_file: turning it on or off takes effect at the next restart")

    reloader = Reloader(config_path, fleet, config, on_applied=applied)
    loop = asyncio.get_running_loop()

    def reload_from_http() -> tuple[bool, str]:
        return asyncio.run_coroutine_threadsafe(reloader.reload(), loop).result(timeout=60)

    registry = build_registry(state)
    registry.register(RuntimeCollector(reloader.status, scheduler, gate))
    registry.register(ServiceCollector(state))
    registry.register(CentrePowerCollector(state))
    service, power = ServiceCheck(), CentrePower()
    availability.start(_isps(config), time.monotonic(), time.time())

    async def judge_service() -> None:  # on the loop, where the pollers write the state
        now = time.monotonic()
        view = site_view(state, reloader.config)
        state.service = service.update(view, now)
        state.availability = availability.update(
            state.service, view.supplies, _isps(reloader.config), now, time.time()
        )
        state.power = power.update(power_view(state, reloader.config), now)

    scheduler.add_job(judge_service, "interval", seconds=_SERVICE_SECONDS, id="service")
    server = MetricsServer(
        registry, *listen, healthy=lambda: scheduler.running, state=state, gate=gate,
        reload=reload_from_http if config_path is not None else None,
    )  # fmt: skip
    server.start()
    await fleet.apply(config)
    host, port = server.address
    scheme = "https" if gate is not None and gate.guard.current().ssl_context else "http"
    log.info(
        "erozgar-agent %s for site %s: %d devices, metrics on %s://%s:%d/metrics",
        __version__,
        config.site.id,
        len(state.devices),
        scheme,
        host,
        port,
    )
    if not (gate is not None and gate.guard.current().config.requires_auth):
        _warn_if_not_loopback(host)
    pending: set[asyncio.Task[tuple[bool, str]]] = set()

    def hangup() -> None:
        task = asyncio.create_task(reloader.reload())
        pending.add(task)
        task.add_done_callback(pending.discard)

    if config_path is not None:
        loop.add_signal_handler(signal.SIGHUP, hangup)
    scheduler.start()
    prerender = asyncio.create_task(_keep_rendered(registry), name="metrics-prerender")
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        prerender.cancel()
        if config_path is not None:
            loop.remove_signal_handler(signal.SIGHUP)
        scheduler.shutdown(wait=False)
        availability.stop(time.monotonic(), time.time())
        await fleet.close()
        await sessions.close()
        server.stop()


def _isps(config: Config) -> dict[str, str | None]:
    """Each configured link and the ISP that sells it."""
    return {link.name: link.isp for link in config.links}


async def _keep_rendered(registry: TextRegistry) -> None:
    """Renders /metrics text on the loop as polls replace the state, so a scrape only assembles
    it (a device no scrape read since its last rendering waits for the next scrape's request).
    It also tells the collector which loop the scrapes' requests go to. Not a scheduler job: its
    runs would count as polls in the start-delay figures."""
    while True:
        try:
            await registry.prerender()
        except Exception:  # a bug in one family: the scrape renders it again and shows it
            log.exception("rendering /metrics ahead of the scrape failed")
        await asyncio.sleep(_PRERENDER_SECONDS)


def _warn_if_not_loopback(host: str) -> None:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        log.warning(
            "the endpoint on %s answers anyone who can reach it, without authentication; "
            "set web_config_file (basic_auth_users or client certificates) or listen on "
            "127.0.0.1",
            host,
        )


async def run_until_signal(
    config: Config,
    listen: tuple[str, int],
    *,
    config_path: str | Path | None = None,
    web_config_file: str | None = None,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await serve(config, listen, stop, config_path=config_path, web_config_file=web_config_file)
