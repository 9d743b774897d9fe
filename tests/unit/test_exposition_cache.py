"""The fast /metrics text (cached per device state, rendered ahead on the loop, streamed) against
prometheus_client's own rendering of the same registry: byte for byte, on a state with every kind
of family, after polls, and through the endpoint plain and gzipped in many pieces."""

from __future__ import annotations

import asyncio
import gzip
import threading
import time
import urllib.request
import zlib
from dataclasses import replace
from types import MappingProxyType

from prometheus_client import generate_latest

from agent import daemon
from agent.checks.bandwidth import InterfaceStatus
from agent.checks.battery import BatteryReport
from agent.checks.link_quality import RTT_BUCKETS, LinkStatus, TargetStatus
from agent.checks.power import UpsStatus
from agent.checks.wan import WanStatus
from agent.state import AgentState, DeviceState, RouterStatus
from collectors.readings import HealthSample, HostReading
from exporters import exposition, prometheus
from exporters.exposition import TextRegistry
from exporters.http import MetricsServer
from exporters.prometheus import build_registry


def _port(name: str, role: str, n: int) -> InterfaceStatus:
    return InterfaceStatus(
        name, role, True, n % 3 != 0, 1e9, 64, 10**12 + n, 2 * 10**11 + n, 8e6 * n, 1e6 * n,
        1e8, 2e7 if role == "wan" else None, n, 0, 2 * n, None, 1.5, 0.0, 0.001, None, 0.0, 0.25,
    )  # fmt: skip


def _router(name: str, ports: int, seed: int) -> RouterStatus:
    return RouterStatus(
        f"{name}.lan",
        "Cisco IOS\r\n  Version 15.2",
        "1.3.6.1.4.1.9.1.1",
        1234.5 + seed,
        tuple(_port(f"Gi0/{p}", "wan" if p == 1 else "", p + seed) for p in range(1, ports + 1)),
        4,
        ports * 9,
        WanStatus(("Gi0/1", "Gi0/2"), "Gi0/1", seed),
        1,
        (HealthSample("cpu_ratio", "", 0.12), HealthSample("temperature_celsius", "inlet", 31.0),
         HealthSample("temperature_celsius", "inlet", 99.0), HealthSample("fan_ok", "fan 1", 1)),
        "cisco-ios",
        (("device_restart", 1), ("implausible", 2 + seed)),
    )  # fmt: skip


def _ups() -> tuple[UpsStatus, BatteryReport]:
    status = UpsStatus(
        True, False, False,
        MappingProxyType({"OL": 0, "OB": 1, "LB": 0}),
        MappingProxyType({"battery.charge": 87.0, "ups.load": 41.0, "input.voltage": 0.0,
                          "vendor.unknown": 3.0}),
        MappingProxyType({"device.mfr": "APC", "device.model": 'Smart-UPS "1500"'}),
        ("battery.temperature",),
    )  # fmt: skip
    report = BatteryReport(
        3, 1800.0, ((60.0, 1), (600.0, 2), (float("inf"), 3)), 1900.0, 300.0, 0.25, 600.0,
        1500.0, 900.0, 0.8, 2, 0.9, 0.3, 0.05, 1.1, 3600.0, 1, "passed", 86400.0,
        {"corrupt": 1},
    )  # fmt: skip
    return status, report


def _state() -> AgentState:
    state = AgentState("ISB-001", 'Islamabad "main"', "0.1.0")
    for n, name in enumerate(("core-router", "sw-1", "sw-2")):
        device = DeviceState(name, "snmp", up=True, reason="ok", last_success=1.7e9,
                             poll_duration=0.2 + n)  # fmt: skip
        device.status = _router(name, 4 if n == 0 else 26, n)
        device.invalid_samples["ifSpeed"] = n
        state.devices[name] = device
    dead = DeviceState("sw-dead", "snmp", up=False, reason="timeout")
    dead.errors["timeout"] = 4
    state.devices[dead.name] = dead
    ups = DeviceState("ups-rack", "modbus", up=True, reason="ok", last_success=1.7e9)
    ups.status, ups.battery = _ups()
    state.devices[ups.name] = ups
    state.host = HostReading({"user": 10.0, "idle": 99.5}, 2, 0.5, 4e9, 2e9, 1.6e9,
                             {"/": (1e11, 5e10)}, {"eth0": (1e6, 2e6)})  # fmt: skip
    target = TargetStatus("gateway", "10.0.0.1", "icmp", 3, 2, 0.002, 0.003, 0.004, 0.001, 30,
                          1, (0,) * 3 + (20,) * (len(RTT_BUCKETS) - 2), 0.09, "denied",
                          "ICMP not permitted", (("denied", 2),))  # fmt: skip
    state.links["ptcl"] = LinkStatus(
        "ptcl", "PTCL", "core-router", "Gi0/1", True, (target,), 1.7e9, 2.0
    )
    return state


def _text(registry: TextRegistry) -> str:
    return b"".join(map(exposition.unpack, registry.render_chunks())).decode()


def _without_process(text: str) -> str:
    """Process metrics (CPU seconds, memory) move between two renderings."""
    return "".join(line for line in text.splitlines(True) if "erozgar_process_" not in line)


def test_cached_text_is_what_prometheus_client_writes():
    state = _state()
    registry = build_registry(state)
    first = _text(registry)
    assert _without_process(first) == _without_process(generate_latest(registry).decode())
    assert first.count("# TYPE erozgar_interface_receive_bytes_total counter\n") == 1
    assert 'erozgar_device_cpu_ratio{device="sw-2"} 0.12\n' in first


def test_a_new_snapshot_or_a_device_going_down_shows_after_the_next_prerender():
    state = _state()
    registry = build_registry(state)
    asyncio.run(registry.prerender())  # fills the cache
    router = state.devices["sw-1"]
    assert isinstance(router.status, RouterStatus)
    ports = (replace(router.status.interfaces[0], receive_bps=4e6), *router.status.interfaces[1:])
    router.status = replace(router.status, interfaces=ports)
    ups = state.devices["ups-rack"]
    ups.up, ups.reason = False, "refused"
    ups.errors["refused"] += 1
    state.devices["core-router"].poll_duration = 7.25  # a poll that changed no snapshot
    del state.devices["sw-2"]
    asyncio.run(registry.prerender())  # the loop's turn after the polls
    text = _text(registry)
    assert _without_process(text) == _without_process(generate_latest(registry).decode())
    assert 'interface="Gi0/1",role="wan"} 500000.0\n' in text  # 4e6 bit/s, in bytes
    assert 'erozgar_device_poll_duration_seconds{device="core-router"} 7.25\n' in text
    assert 'erozgar_device_poll_errors_total{device="ups-rack",reason="refused"} 1.0\n' in text
    assert "erozgar_ups_on_battery{" not in text  # a down UPS shows no stale power values
    assert 'device="sw-2"' not in text


def test_the_endpoint_serves_it_plain_and_gzipped():
    state = _state()
    server = MetricsServer(build_registry(state), "127.0.0.1", 0, healthy=lambda: True)
    server.start()
    try:
        url = f"http://127.0.0.1:{server.address[1]}/metrics"
        with urllib.request.urlopen(url) as answer:
            plain = answer.read().decode()
            assert answer.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(request) as answer:
            assert answer.headers["Content-Encoding"] == "gzip"
            unzipped = gzip.decompress(answer.read()).decode()
    finally:
        server.stop()
    assert _without_process(plain) == _without_process(unzipped)
    assert 'erozgar_device_up{device="sw-dead",kind="snmp"} 0.0' in plain


def _hub(switches: int) -> AgentState:
    state = AgentState("HUB-1", "hub", "0.1.0")
    for n in range(switches):
        device = DeviceState(f"hub-{n:03d}", "snmp", up=True, reason="ok", last_success=1.7e9,
                             poll_duration=0.01 * n)  # fmt: skip
        device.status = _router(device.name, 24, n)
        state.devices[device.name] = device
    return state


def _get(url: str, gzipped: bool) -> tuple[bytes, str | None, str | None]:
    headers = {"Accept-Encoding": "gzip"} if gzipped else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as answer:
        return answer.read(), answer.headers["Content-Length"], answer.headers["Content-Encoding"]


def test_a_body_larger_than_a_batch_is_streamed_whole_plain_and_gzipped(monkeypatch):
    monkeypatch.setattr(exposition, "BATCH_BYTES", 1 << 20)
    state = _hub(60)  # about 3 MB of text: written in several batches and a part
    registry = build_registry(state)
    expected = _without_process(generate_latest(registry).decode())
    assert len(expected) > 2 * exposition.BATCH_BYTES
    server = MetricsServer(registry, "127.0.0.1", 0, healthy=lambda: True)
    server.start()
    try:
        url = f"http://127.0.0.1:{server.address[1]}/metrics"
        plain, plain_length, plain_encoding = _get(url, gzipped=False)
        zipped, zipped_length, zipped_encoding = _get(url, gzipped=True)
    finally:
        server.stop()
    assert (plain_encoding, zipped_encoding) == (None, "gzip")
    assert (int(plain_length or 0), int(zipped_length or 0)) == (len(plain), len(zipped))
    assert _without_process(plain.decode()) == expected
    assert _without_process(gzip.decompress(zipped).decode()) == expected
    assert len(zipped) < len(plain) / 5


def _count_renders(monkeypatch) -> list[str]:
    """The names of the families exporters.prometheus formats from now on, in order."""
    rendered: list[str] = []
    original = prometheus.render

    def counting(families):
        out = original(families)
        rendered.extend(name for name, _, _ in out)
        return out

    monkeypatch.setattr(prometheus, "render", counting)
    return rendered


def test_prerendered_devices_are_not_rendered_again_by_the_scrape(monkeypatch):
    state = _hub(5)
    registry = build_registry(state)
    asyncio.run(registry.prerender())
    rendered = _count_renders(monkeypatch)
    _text(registry)
    assert "erozgar_interface_receive_bytes_total" not in rendered
    assert "erozgar_device_up" not in rendered
    state.devices["hub-003"].status = _router("hub-003", 24, 99)  # a poll since the last look
    asyncio.run(registry.prerender())
    assert rendered.count("erozgar_device_up") == 1  # that device alone
    rendered.clear()
    text = _text(registry)
    assert rendered.count("erozgar_device_up") == 0
    assert _without_process(text) == _without_process(generate_latest(registry).decode())


def test_the_daemon_keeps_the_text_rendered_while_polls_go_on(monkeypatch):
    """agent/daemon.py's prerender task, at a hub (scraped more often than each device is
    polled): a device whose text a scrape read is rendered on the loop when it is polled, before
    the next scrape, which then formats no device at all."""
    monkeypatch.setattr(daemon, "_PRERENDER_SECONDS", 0.01)
    state = _hub(3)
    registry = build_registry(state)
    rendered = _count_renders(monkeypatch)

    async def polls_then_scrape() -> str:
        task = asyncio.create_task(daemon._keep_rendered(registry))
        await asyncio.sleep(0.05)
        await asyncio.to_thread(_text, registry)  # a scrape reads every device's text
        state.devices["hub-001"].status = _router("hub-001", 24, 42)  # a poll
        state.devices["hub-001"].poll_duration = 3.5
        await asyncio.sleep(0.05)
        rendered.clear()
        text = await asyncio.to_thread(_text, registry)  # the scrape thread
        task.cancel()
        return text

    text = asyncio.run(polls_then_scrape())
    assert "erozgar_device_up" not in rendered
    assert 'erozgar_device_poll_duration_seconds{device="hub-001"} 3.5\n' in text
    assert _without_process(text) == _without_process(generate_latest(registry).decode())


def _poll(state: AgentState, name: str, n: int) -> None:
    """What a poll leaves: a new snapshot and its duration."""
    state.devices[name].status = _router(name, 24, n)
    state.devices[name].poll_duration = n / 100


def test_a_device_polled_many_times_between_scrapes_is_rendered_for_the_scrapes_alone(
    monkeypatch,
):
    """Polls every second, a scrape every minute: the text of most polls would be rendered for
    nobody. Prerender renders a device's change only once a scrape read its text; the next
    scrape asks the loop for the rest, and still sees the latest poll's values."""
    monkeypatch.setattr(daemon, "_PRERENDER_SECONDS", 0.01)
    state = _hub(3)
    registry = build_registry(state)
    rendered: list[str] = []  # the thread of each device's rendering
    original = prometheus.render

    def on_thread(families):
        out = original(families)
        if any(name == "erozgar_device_up" for name, _, _ in out):
            rendered.append(threading.current_thread().name)
        return out

    monkeypatch.setattr(prometheus, "render", on_thread)

    async def polls_between_scrapes() -> list[str]:
        task = asyncio.create_task(daemon._keep_rendered(registry))
        await asyncio.sleep(0.05)
        texts = [await asyncio.to_thread(_text, registry)]
        for scrape in range(2):
            rendered.clear()
            for n in range(10):
                _poll(state, "hub-001", 10 * scrape + n + 1)
                await asyncio.sleep(0.03)  # prerender's turns between polls
            texts.append(await asyncio.to_thread(_text, registry))
            assert 1 <= len(rendered) <= 2  # not once per poll
            assert set(rendered) == {threading.main_thread().name}  # on the loop
        task.cancel()
        return texts

    texts = asyncio.run(polls_between_scrapes())
    assert 'erozgar_device_poll_duration_seconds{device="hub-001"} 0.1\n' in texts[1]
    assert 'erozgar_device_poll_duration_seconds{device="hub-001"} 0.2\n' in texts[2]
    assert _without_process(texts[2]) == _without_process(generate_latest(registry).decode())


def test_a_scrape_the_busy_loop_does_not_answer_formats_the_latest_poll_itself(monkeypatch):
    """The loop stuck in a long computation: after RENDER_WAIT_SECONDS the scrape formats the
    device in its own thread rather than serve the text of an older poll."""
    monkeypatch.setattr(prometheus, "RENDER_WAIT_SECONDS", 0.05)
    state = _hub(2)
    registry = build_registry(state)

    async def scrape_while_blocked() -> str:
        await registry.prerender()
        await asyncio.to_thread(_text, registry)
        _poll(state, "hub-001", 5)
        await registry.prerender()  # read before: rendered
        _poll(state, "hub-001", 7)  # nobody read the text of 5: left to the scrape
        scrape = asyncio.ensure_future(asyncio.to_thread(_text, registry))
        await asyncio.sleep(0.01)  # the scrape thread starts
        time.sleep(0.3)  # the loop does not turn
        return await scrape

    text = asyncio.run(scrape_while_blocked())
    assert 'erozgar_device_poll_duration_seconds{device="hub-001"} 0.07\n' in text


def test_the_cached_text_is_held_compressed_and_a_gzip_scrape_is_one_member():
    """A hub's text is over 100 MB: the cache holds it as deflate segments, and a gzip scrape
    chains them into a single gzip member (curl --compressed reads only the first member)."""
    state = _hub(20)
    registry = build_registry(state)
    asyncio.run(registry.prerender())
    pieces = registry.render_chunks()
    plain = b"".join(map(exposition.unpack, pieces))
    held = sum(len(piece) for piece in pieces)
    assert held < len(plain) / 5
    body = b"".join(exposition.gzip_body(pieces))
    reader = zlib.decompressobj(31)  # a single gzip member, CRC and length checked
    assert reader.decompress(body) == plain
    assert (reader.eof, reader.unused_data) == (True, b"")
    assert gzip.decompress(body) == plain


def test_the_own_formatter_writes_what_prometheus_client_writes_for_awkward_families():
    """exporters/exposition.py formats families itself (prometheus_client's Sample objects cost
    about 4.4 us each): escapes, special values, timestamps, every type, OpenMetrics-only
    samples, byte for byte as generate_latest writes them."""
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        InfoMetricFamily,
        SummaryMetricFamily,
    )

    gauge = GaugeMetricFamily("erozgar_odd", 'Back\\slash,\nnew line "quoted"', labels=["b", "a"])
    for n, value in enumerate((float("nan"), float("inf"), -float("inf"), 1e22, 1234567.0, -0.0)):
        gauge.add_metric([f'x\\y\n"{n}"', "é ü"], value)
    gauge.add_metric(["stamped", "z"], 2.5, timestamp=1.7e9 + 0.123)
    counter = CounterMetricFamily("erozgar_bytes", "Bytes.", labels=["port"])
    counter.add_metric(["Gi0/1"], 10**15)
    created = CounterMetricFamily("erozgar_made", "With _created.", labels=["port"])
    created.add_metric(["Gi0/1"], 3, created=1.7e9)
    info = InfoMetricFamily("erozgar_thing", "Identity.", labels=["device"])
    info.add_metric(["sw"], {"descr": 'Cisco "IOS"\\15'})
    histogram = HistogramMetricFamily("erozgar_rtt_seconds", "RTT.", labels=["target"])
    histogram.add_metric(["gw"], [("0.005", 1), ("+Inf", 3)], 0.02)
    summary = SummaryMetricFamily("erozgar_poll_seconds", "Polls.", labels=["device"])
    summary.add_metric(["sw"], 4, 1.5)
    unlabelled = GaugeMetricFamily("erozgar_plain", "No labels.", value=7)
    families = [gauge, counter, created, info, histogram, summary, unlabelled]
    for family in families:
        ((_, header, samples),) = exposition.render([family])
        written = exposition.unpack(header) + exposition.unpack(samples)
        assert written == generate_latest(exposition._One(family)), family.name
