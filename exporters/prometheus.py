"""Prometheus exposition of the agent's latest state, read afresh on every scrape.

Nothing here talks to a device: a scrape reads the snapshots the pollers left, so it is fast and
never fails because one device is down (that device's `erozgar_device_up` is 0 instead).
Rates are exported in bytes per second, Prometheus's base unit (promtool rejects "bits");
dashboards multiply by 8. Values are polled on a timer, so no sample carries a timestamp;
staleness shows in `erozgar_device_last_success_timestamp_seconds`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Iterator
from typing import TypeVar

from prometheus_client import ProcessCollector
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from agent.kinds import KINDS
from agent.state import AgentState, DeviceState

from .exposition import Assembler, Rendered, TextRegistry, render
from .families import Families
from .links import link_families
from .power import battery_families

_T = TypeVar("_T")
# How long a scrape waits for the loop to render the devices polled since their text was read.
RENDER_WAIT_SECONDS = 1.0
# What a device's text was rendered from (_rendered_from), and its families rendered.
_Entry = tuple[tuple[object, ...], list[Rendered]]


def build_registry(state: AgentState) -> TextRegistry:
    """A dedicated registry: our collector plus the agent process's own metrics."""
    registry = TextRegistry()
    registry.register(AgentCollector(state))
    ProcessCollector(namespace="erozgar", registry=registry)
    return registry


class AgentCollector(Collector):
    """Presents AgentState. Example output:

    erozgar_device_up{device="core-router",kind="snmp"} 1.0
    erozgar_interface_receive_bytes_per_second{device="core-router",interface="ether1"} 7.7e6
    erozgar_ups_on_battery{device="ups-rack"} 0.0
    """

    def __init__(self, state: AgentState) -> None:
        self.state = state
        self._rendered: dict[str, _Entry] = {}  # by device name
        self._read: set[str] = set()  # devices whose rendered text a scrape has read
        self._loop: asyncio.AbstractEventLoop | None = None  # where prerender runs

    def collect(self) -> Iterator[Metric]:
        out = Families()
        state = self.state
        _agent_info(out, state)
        for device in list(state.devices.values()):
            _device_families(out, device)
        if state.host is not None:
            _host(out, state)
        return iter([*out, *link_families(state)])

    def render_chunks(self) -> list[bytes]:
        """What generate_latest writes for collect(), byte for byte: each device's families as
        formatted once per change of its state, on the loop (exporters/exposition.py)."""
        text = Assembler()
        state = self.state
        text.add(render(_fresh(_agent_info, state)))
        for rendered in self._current(list(state.devices.values())):
            text.add(rendered)
        if state.host is not None:
            text.add(render(_fresh(_host, state)))
        text.add(render(link_families(state)))
        return text.chunks()

    def _current(self, devices: list[DeviceState]) -> list[list[Rendered]]:
        """Each device's text for a scrape, in the scrape's thread.

        A device prerender keeps rendered (its text was read since) is served as prerender left
        it: at most its period behind the latest poll. One prerender skipped (polled again
        before any scrape read its text) or never saw is rendered now, on the loop, while the
        scrape waits: formatting it in this thread would hold the GIL, and every UDP send or
        receive of the poll loop waits out the switch interval (5 ms) meanwhile. Only when the
        loop does not answer within RENDER_WAIT_SECONDS (or runs no more) is it formatted here.
        """
        cache = self._rendered
        wanted = [d for d in devices if self._unread_change(d, cache.get(d.name))]
        if wanted:
            self._render_on_loop(wanted)
        out = []
        for device in devices:
            entry = cache.get(device.name)
            if entry is None or self._unread_change(device, entry):
                out.append(render(_fresh(_device_families, device)))
            else:
                out.append(entry[1])
        # Read from now on. A render on the loop in between may lose its mark: prerender then
        # renders that device's next change once more, which costs time, never freshness.
        self._read.update(device.name for device in devices)
        return out

    def _unread_change(self, device: DeviceState, entry: _Entry | None) -> bool:
        """No text yet, or a change since the text was rendered that prerender leaves alone:
        no scrape read that text."""
        return entry is None or (
            device.name not in self._read and entry[0] != _rendered_from(device)
        )

    def _render_on_loop(self, devices: list[DeviceState]) -> None:
        """Render the devices on the prerender's loop and wait for it, up to a bound."""
        loop = self._loop
        if loop is None or loop.is_closed() or not loop.is_running():
            return
        try:
            if asyncio.get_running_loop() is loop:
                return  # called on the loop itself: waiting for it would wait forever
        except RuntimeError:
            pass  # the usual case: a scrape thread runs no loop
        try:
            future = asyncio.run_coroutine_threadsafe(self._render_all(devices), loop)
        except RuntimeError:  # closed since: the daemon is stopping
            return
        try:
            future.result(timeout=RENDER_WAIT_SECONDS)
        except (TimeoutError, concurrent.futures.CancelledError):
            future.cancel()  # what is left is formatted in the scrape's thread

    async def prerender(self) -> None:
        """Render every device whose state changed since it was last rendered and whose text a
        scrape has read since (or that has none), one device per turn of the event loop: a
        scrape then only assembles (rendering a hub's 2,500 switches takes seconds) and a poll
        waits for one device's rendering at most. A device polled again before any scrape read
        its text is left to the next scrape, which asks the loop for it (`_current`): when
        polls outnumber scrapes, most polls' text would be rendered for nobody. The cache is
        written on the loop alone, so a scrape thread never races it and the long-lived text
        is not scattered over the scrape threads' malloc arenas."""
        self._loop = asyncio.get_running_loop()
        devices = list(self.state.devices.values())
        read = self._read
        await self._render_all(
            [
                device
                for device in devices
                if device.name in read or device.name not in self._rendered
            ]
        )
        for name in self._rendered.keys() - {device.name for device in devices}:
            del self._rendered[name]  # gone after a reload
            read.discard(name)

    async def _render_all(self, devices: list[DeviceState]) -> None:
        """Render each device whose state changed since its text was rendered, one per turn."""
        for device in devices:
            entry = self._rendered.get(device.name)
            if entry is None or entry[0] != _rendered_from(device):
                # the key is read before the families: a change in between renders again
                key = _rendered_from(device)
                self._rendered[device.name] = (key, render(_fresh(_device_families, device)))
                self._read.discard(device.name)
                await asyncio.sleep(0)


def _rendered_from(device: DeviceState) -> tuple[object, ...]:
    """Everything a device's families are made of. Pollers replace status and battery whole,
    never change them in place, so comparing them is an identity check."""
    return (device.kind, device.up, device.reason, device.poll_duration, device.last_success,
            device.status, device.battery, tuple(device.errors.items()),
            tuple(device.invalid_samples.items()))  # fmt: skip


def _fresh(build: Callable[[Families, _T], None], subject: _T) -> Families:
    out = Families()
    build(out, subject)
    return out


def _agent_info(out: Families, state: AgentState) -> None:
    out.info("agent", "The agent's version and site.", []).add_metric(
        [], {"version": state.version, "site": state.site_id, "site_name": state.site_name}
    )


def _device_families(out: Families, device: DeviceState) -> None:
    _device_health(out, device)
    _snapshot_families(out, device)


def _snapshot_families(out: Families, device: DeviceState) -> None:
    """Families that change only when a poll replaces the device's status or battery report.

    What the device reported is exported only while it answers: a silent router's last port
    states and rates are not true now (its WAN port "down" would alert on a dead router). The
    agent's own ledgers (outages, battery health) stay; counters resume where they were.
    """
    if device.status is not None and device.up:
        KINDS[device.kind].metrics(out, device.name, device.status)
    if device.battery is not None:
        battery_families(out, device.name, device.battery)


def _device_health(out: Families, device: DeviceState) -> None:
    name = device.name
    out.gauge(
        "device_up", "1 if the latest poll of the device succeeded, else 0.", ["device", "kind"]
    ).add_metric([name, device.kind], 1.0 if device.up else 0.0)
    if device.up is False:
        out.gauge(
            "device_down_reason",
            "1 for the reason the latest poll failed (timeout, refused, auth, exception_N, ...).",
            ["device", "reason"],
        ).add_metric([name, device.reason], 1.0)
    if device.poll_duration is not None:
        out.gauge(
            "device_poll_duration_seconds", "How long the latest poll took.", ["device"]
        ).add_metric([name], device.poll_duration)
    if device.last_success is not None:
        out.gauge(
            "device_last_success_timestamp_seconds",
            "Unix time of the latest successful poll.",
            ["device"],
        ).add_metric([name], device.last_success)
    errors = out.counter(
        "device_poll_errors_total", "Failed polls, by reason.", ["device", "reason"]
    )
    for reason, count in sorted(device.errors.items()):
        errors.add_metric([name, reason], count)
    invalid = out.counter(
        "device_invalid_samples_total",
        "Values dropped as 'not available' or implausible, by field.",
        ["device", "field"],
    )
    for field, count in sorted(device.invalid_samples.items()):
        invalid.add_metric([name, field], count)


def _host(out: Families, state: AgentState) -> None:
    host = state.host
    assert host is not None
    cpu = out.counter("host_cpu_seconds_total", "CPU time of the agent's box, by mode.", ["mode"])
    for mode, seconds in sorted(host.cpu_seconds.items()):
        cpu.add_metric([mode], seconds)
    out.gauge("host_cpus", "Logical CPUs of the agent's box.", []).add_metric([], host.cpu_count)
    out.gauge("host_load1", "One-minute load average of the agent's box.", []).add_metric(
        [], host.load1
    )
    out.gauge("host_memory_total_bytes", "Memory of the agent's box.", []).add_metric(
        [], host.memory_total_bytes
    )
    out.gauge(
        "host_memory_available_bytes", "Memory available for new work on the agent's box.", []
    ).add_metric([], host.memory_available_bytes)
    out.gauge("host_boot_time_seconds", "Unix time the agent's box booted.", []).add_metric(
        [], host.boot_time_seconds
    )
    if host.clock_synchronized is not None:
        out.gauge(
            "host_clock_synchronized",
            "1 if the kernel says NTP keeps the box's clock synchronised (adjtimex), else 0.",
            [],
        ).add_metric([], float(host.clock_synchronized))
    size = out.gauge("host_filesystem_size_bytes", "Filesystem size.", ["mountpoint"])
    free = out.gauge("host_filesystem_available_bytes", "Filesystem space free.", ["mountpoint"])
    for path, (total, available) in sorted(host.filesystems.items()):
        size.add_metric([path], total)
        free.add_metric([path], available)
    rx = out.counter("host_network_receive_bytes_total", "Bytes received by a NIC.", ["interface"])
    tx = out.counter("host_network_transmit_bytes_total", "Bytes sent by a NIC.", ["interface"])
    for nic, (received, sent) in sorted(host.network.items()):
        rx.add_metric([nic], received)
        tx.add_metric([nic], sent)
