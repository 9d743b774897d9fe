"""Probes on real sockets: loopback, and a pair of network namespaces this module creates.

The namespaces ("near" probes, "far" answers) are joined by a veth pair with 10.x addresses
that exist only inside them. In "far", an nftables rule drops a share of the echo requests
and a small responder (the kernel's own echo is switched off there) answers the rest after a
set delay, so the test knows what loss, delay and jitter were injected. (This kernel has no
netem qdisc; nft's random numgen drops packets in the kernel just the same.)
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agent.config import parse_config
from agent.kinds.snmp import snmp_poller
from agent.state import AgentState, DeviceState, RouterStatus
from collectors.probe import Binding, ProbeTarget, probe
from collectors.readings import PollError
from collectors.snmp.client import SnmpSessions
from exporters.prometheus import build_registry
from simulators.snmp_router import SimInterface, SimulatedRouter

from .conftest import HOST, require

pytestmark = pytest.mark.integration

NEAR_ADDRESS, FAR_ADDRESS = "10.213.7.1", "10.213.7.2"
NEAR_ADDRESS6, FAR_ADDRESS6 = "2001:db8:7::1", "2001:db8:7::2"
INJECTED_LOSS = 0.30
INJECTED_DELAY, INJECTED_SPREAD = 0.050, 0.020  # each reply 50 ms + uniform(0, 20 ms) late
PACKETS = 100  # per run; the test makes two runs

# Runs in "far": answers echo requests on a raw socket after DELAY + uniform(0, SPREAD) s.
RESPONDER = textwrap.dedent(
    """
    import asyncio, random, socket, struct, sys
    from collectors.probe import checksum
    delay, spread = float(sys.argv[1]), float(sys.argv[2])
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    sock.setblocking(False)

    def reply(data, address):
        icmp = bytearray(data[(data[0] & 0x0F) * 4 :])
        if len(icmp) < 8 or icmp[0] != 8:
            return
        icmp[0], icmp[2:4] = 0, b"\\0\\0"
        icmp[2:4] = struct.pack("!H", checksum(bytes(icmp)))
        sock.sendto(bytes(icmp), (address, 0))

    async def main():
        loop = asyncio.get_running_loop()
        print("ready", flush=True)
        while True:
            data, (address, _) = await loop.sock_recvfrom(sock, 2048)
            loop.call_later(delay + random.uniform(0, spread), reply, data, address)

    asyncio.run(main())
    """
)

# Runs in "near" as `nobody`: one probe, printed as JSON (or the PollError's reason).
PROBE_AS_USER = textwrap.dedent(
    """
    import asyncio, json, sys
    from collectors.probe import ProbeTarget, open_icmp_socket, probe
    from collectors.readings import PollError
    try:
        sock, raw = open_icmp_socket()
        sock.close()
        reading = asyncio.run(probe(ProbeTarget("t", sys.argv[1]), count=3, spacing=0.01))
        print(json.dumps({"raw": raw, "rtts": reading.rtts}))
    except PollError as exc:
        print(json.dumps({"error": exc.reason, "message": str(exc)}))
    """
)


class Namespaces(NamedTuple):
    near: str
    far: str


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def in_ns(namespace: str, *command: str, **options: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", namespace, *command],
        capture_output=True,
        text=True,
        timeout=60,
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def namespaces() -> Iterator[Namespaces]:
    require("ip")
    tag = f"erz{os.getpid()}"
    pair = Namespaces(f"{tag}-near", f"{tag}-far")
    created: list[str] = []
    try:
        for name in pair:
            ip("netns", "add", name)
            created.append(name)
            ip("-n", name, "link", "set", "lo", "up")
        ip("-n", pair.near, "link", "add", "wan0", "type", "veth", "peer", "name", "isp0")
        ip("-n", pair.near, "link", "set", "isp0", "netns", pair.far)
        for name, dev, address in (
            (pair.near, "wan0", NEAR_ADDRESS),
            (pair.far, "isp0", FAR_ADDRESS),
        ):
            ip("-n", name, "addr", "add", f"{address}/24", "dev", dev)
            ip("-n", name, "link", "set", dev, "up")
        yield pair
    finally:
        for name in created:
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


@pytest.fixture
def lossy_far(namespaces: Namespaces) -> Iterator[Namespaces]:
    """`far` drops INJECTED_LOSS of echo requests and answers the rest INJECTED_DELAY late."""
    require("nft")
    far = namespaces.far
    for sysctl in ("net.ipv4.icmp_echo_ignore_all=1", "net.ipv4.icmp_ratelimit=0"):
        assert in_ns(far, "sysctl", "-qw", sysctl).returncode == 0
    rules = (
        "table inet erozgar { chain input { type filter hook input priority 0; "
        f"icmp type echo-request numgen random mod 100 < {int(INJECTED_LOSS * 100)} drop; }}\n}}\n"
    )
    result = in_ns(far, "nft", "-f", "-", input=rules)
    assert result.returncode == 0, result.stderr
    responder = subprocess.Popen(
        ["ip", "netns", "exec", far, sys.executable, "-c", RESPONDER,
         str(INJECTED_DELAY), str(INJECTED_SPREAD)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert responder.stdout is not None and responder.stdout.readline().strip() == "ready"
        yield namespaces
    finally:
        responder.terminate()
        responder.wait(timeout=10)
        in_ns(far, "nft", "delete table inet erozgar")
        in_ns(far, "sysctl", "-qw", "net.ipv4.icmp_echo_ignore_all=0")


# --- loopback --------------------------------------------------------------------------------


def test_icmp_echo_to_loopback_all_answered():
    reading = asyncio.run(probe(ProbeTarget("lo", "127.0.0.1"), count=5, spacing=0.01))
    assert reading.method == "icmp" and reading.sent == 5 and reading.received == 5
    assert all(0 < rtt < 1 for rtt in reading.rtts if rtt is not None)


def test_icmpv6_and_tcp_over_ipv6_to_loopback():
    reading = asyncio.run(probe(ProbeTarget("lo6", "::1"), count=3, spacing=0.01))
    assert (reading.method, reading.received, reading.note) == ("icmp", 3, "")
    with socket.socket(socket.AF_INET6) as server:
        server.bind(("::1", 0))
        server.listen()
        port = server.getsockname()[1]
        tcp = asyncio.run(probe(ProbeTarget("web6", "::1", port), count=2, spacing=0.01))
    assert (tcp.method, tcp.received) == ("tcp", 2)
    bound = asyncio.run(probe(ProbeTarget("lo6", "::1"), count=1, binding=Binding("127.0.0.1")))
    assert bound.received == 1  # an IPv4 source address is not used for an IPv6 target


def test_icmp_bound_to_source_address_and_interface():
    reading = asyncio.run(
        probe(
            ProbeTarget("lo", "127.0.0.2"),
            count=3,
            spacing=0.01,
            binding=Binding("127.0.0.3", interface="lo"),
        )
    )
    assert reading.received == 3
    with pytest.raises(PollError) as caught:
        asyncio.run(
            probe(ProbeTarget("lo", "127.0.0.1"), count=1, binding=Binding(interface="nosuch0"))
        )
    assert caught.value.reason == "config"
    assert str(caught.value) == "cannot bind the probe to interface 'nosuch0': No such device"


def test_tcp_connect_refused_counts_as_reply_open_port_too():
    with socket.socket() as closed:  # bound, never listening: the kernel answers RST
        closed.bind((HOST, 0))
        port = closed.getsockname()[1]
        refused = asyncio.run(probe(ProbeTarget("web", HOST, port), count=3, spacing=0.01))
    with socket.socket() as server:
        server.bind((HOST, 0))
        server.listen(8)
        accepted = asyncio.run(
            probe(ProbeTarget("web", HOST, server.getsockname()[1]), count=3, spacing=0.01)
        )
    assert refused.method == "tcp" and refused.received == 3
    assert accepted.received == 3


# --- without root: unprivileged ICMP sockets -------------------------------------------------


@pytest.mark.parametrize("group_range", ["1 0", "0 2147483647"])
def test_probe_as_nobody_follows_ping_group_range(namespaces: Namespaces, group_range: str):
    """ping_group_range is per network namespace: set it in ours, the host's stays as it is."""
    require("setpriv")
    near = namespaces.near
    assert in_ns(near, "sysctl", "-qw", f"net.ipv4.ping_group_range={group_range}").returncode == 0
    result = in_ns(
        near,
        "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
        sys.executable, "-c", PROBE_AS_USER, NEAR_ADDRESS,
        cwd="/",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    if group_range == "1 0":
        assert seen["error"] == "denied"
        assert "net.ipv4.ping_group_range (1 0)" in seen["message"]
    else:
        assert seen["raw"] is False  # the unprivileged datagram socket, not a raw one
        assert len(seen["rtts"]) == 3 and all(rtt is not None for rtt in seen["rtts"])


# --- injected loss and delay -----------------------------------------------------------------

LINK_CONFIG = {
    "site": {"id": "T"},
    "links": [
        {
            "name": "isp",
            "interval": 10,
            "count": PACKETS,
            "spacing": 0.01,
            "timeout": 0.5,
            "bind_interface": "wan0",
            "targets": [{"name": "gateway", "address": FAR_ADDRESS}],
        }
    ],
}

# Runs in "near": the daemon's own probe job, then the exposition.
LINK_RUN = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from prometheus_client import generate_latest
    from agent.config import parse_config
    from agent.checks.link_quality import LinkProber
    from agent.state import AgentState
    from exporters.prometheus import build_registry
    config = parse_config(json.loads(sys.argv[1]))
    state = AgentState("T", "", "0")
    cpu = time.process_time()  # the probe runs' CPU, reported by the test
    prober = LinkProber(config.links[0], state.links)
    for _ in range(2):
        asyncio.run(prober.run())
    print(f"# cpu_seconds {time.process_time() - cpu:.4f}")
    print(generate_latest(build_registry(state)).decode())
    """
)


def test_loss_and_delay_injected_in_namespace_are_measured(lossy_far: Namespaces):
    result = in_ns(lossy_far.near, sys.executable, "-c", LINK_RUN, json.dumps(LINK_CONFIG))
    assert result.returncode == 0, result.stderr
    samples = {
        s.name: s.value
        for family in text_string_to_metric_families(result.stdout)
        for s in family.samples
        if s.labels.get("target") in ("gateway", None) and "le" not in s.labels
    }
    sent = samples["erozgar_link_probe_packets_sent_total"]
    loss = samples["erozgar_link_probe_packets_lost_total"] / sent
    print(f"\nnetns probe: {result.stdout.splitlines()[0]}, {sent:.0f} packets, loss {loss:.3f}, "
          f"rtt min/avg/max {samples['erozgar_link_probe_rtt_min_seconds'] * 1000:.1f}/"
          f"{samples['erozgar_link_probe_rtt_avg_seconds'] * 1000:.1f}/"
          f"{samples['erozgar_link_probe_rtt_max_seconds'] * 1000:.1f} ms, "
          f"jitter {samples['erozgar_link_probe_jitter_seconds'] * 1000:.1f} ms")  # fmt: skip
    assert sent == 2 * PACKETS
    # 200 packets at 30 % loss: the standard deviation is 3.2 points; the bounds are > 4.5 sd
    assert 0.15 < loss < 0.45
    assert 0.05 < samples["erozgar_link_probe_loss_ratio"] < 0.55  # the latest run's 100
    assert samples["erozgar_link_up"] == 1
    assert samples["erozgar_link_probe_rtt_min_seconds"] >= INJECTED_DELAY
    assert INJECTED_DELAY < samples["erozgar_link_probe_rtt_avg_seconds"] < 0.2
    # consecutive delays differ by spread/3 on average (6.7 ms); loopback scheduling adds little
    assert 0.002 < samples["erozgar_link_probe_jitter_seconds"] < 0.03
    # every answered packet lands in the histogram once
    assert samples["erozgar_link_probe_rtt_seconds_count"] == (
        sent - samples["erozgar_link_probe_packets_lost_total"]
    )


def test_check_fails_with_hint_when_the_far_end_is_silent(namespaces: Namespaces, tmp_path: Path):
    require("nft")
    far = namespaces.far
    silent = (
        "table inet erozgar_silent { chain input { type filter hook input priority 0; "
        "icmp type echo-request drop; }\n}\n"
    )
    result = in_ns(far, "nft", "-f", "-", input=silent)
    assert result.returncode == 0, result.stderr
    config = tmp_path / "links.yml"
    config.write_text(
        json.dumps(
            {
                "site": {"id": "T"},
                "listen": "127.0.0.1:9877",  # inside "near": always free
                "links": [
                    {
                        "name": "isp",
                        "count": 3,
                        "spacing": 0.05,
                        "timeout": 0.3,
                        "targets": [
                            {"name": "gateway", "address": FAR_ADDRESS},
                            {"name": "web", "address": FAR_ADDRESS, "tcp_port": 443},
                        ],
                    }
                ],
            }
        )
    )
    try:
        agent = str(Path(sys.executable).parent / "erozgar-agent")
        checked = in_ns(namespaces.near, agent, "check", "--json", "--config", str(config))
    finally:
        in_ns(far, "nft", "delete table inet erozgar_silent")
    assert checked.returncode == 1, checked.stderr
    (link,) = [d for d in json.loads(checked.stdout)["devices"] if d["kind"] == "link"]
    gateway, web = link["checks"]
    assert (link["name"], link["status"]) == ("isp", "FAIL")
    assert gateway["status"] == "FAIL"
    assert gateway["detail"] == "no answer to 3 icmp probes"
    assert gateway["hint"].startswith(
        f"no answer from gateway {FAR_ADDRESS}: check the WAN cable/ONT and the ISP; "
        "if it blocks ping, add tcp_port"
    )
    assert web["status"] == "PASS"  # the RST of the closed port 443 proves the path works
    assert web["detail"].startswith("3/3 answered (tcp)")


def test_check_over_ipv6_in_namespace_probes_dns_and_http(namespaces: Namespaces, tmp_path: Path):
    """The link has IPv6 only on its own interface: echoes, a DNS query (dnsmasq in "far") and
    a GET leave from source_address6 through bind_interface, and `check` says what they saw."""
    dnsmasq = require("dnsmasq")
    near, far = namespaces
    for name, dev, address in ((near, "wan0", NEAR_ADDRESS6), (far, "isp0", FAR_ADDRESS6)):
        ip("-n", name, "addr", "add", f"{address}/64", "dev", dev, "nodad")
    resolver = subprocess.Popen(
        ["ip", "netns", "exec", far, dnsmasq, "--keep-in-foreground", "--no-resolv",
         "--no-hosts", "--pid-file=", "--user=nobody", f"--listen-address={FAR_ADDRESS6}",
         "--bind-interfaces", "--address=/pseb.test/2001:db8:7::80"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    web = subprocess.Popen(
        ["ip", "netns", "exec", far, sys.executable, "-m", "http.server", "--bind", FAR_ADDRESS6,
         "8080"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path,
    )  # fmt: skip
    config = tmp_path / "links.yml"
    config.write_text(
        json.dumps(
            {
                "site": {"id": "T"},
                "listen": "127.0.0.1:9877",
                "links": [
                    {
                        "name": "isp",
                        "source_address6": NEAR_ADDRESS6,
                        "bind_interface": "wan0",
                        "count": 2,
                        "spacing": 0.05,
                        "timeout": 0.5,
                        "targets": [{"name": "gateway6", "address": FAR_ADDRESS6}],
                        "dns": {
                            "query": "pseb.test",
                            "types": ["AAAA"],
                            "resolvers": [{"name": "isp", "address": FAR_ADDRESS6}],
                        },
                        "http": [{"name": "web", "url": f"http://[{FAR_ADDRESS6}]:8080/"}],
                    }
                ],
            }
        )
    )
    agent = str(Path(sys.executable).parent / "erozgar-agent")
    try:
        for _ in range(50):  # both servers listening
            listening = in_ns(far, "ss", "-Hln").stdout
            if f"[{FAR_ADDRESS6}]:53" in listening and f"[{FAR_ADDRESS6}]:8080" in listening:
                break
            time.sleep(0.1)
        checked = in_ns(near, agent, "check", "--json", "--config", str(config))
    finally:
        resolver.terminate()
        web.terminate()
        resolver.wait(5)
        web.wait(5)
        for name, dev, address in ((near, "wan0", NEAR_ADDRESS6), (far, "isp0", FAR_ADDRESS6)):
            ip("-n", name, "addr", "del", f"{address}/64", "dev", dev)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    (link,) = [d for d in json.loads(checked.stdout)["devices"] if d["kind"] == "link"]
    steps = {step["name"]: step for step in link["checks"]}
    assert steps[f"gateway6 {FAR_ADDRESS6}"]["detail"].startswith("2/2 answered (icmp)")
    dns = steps[f"dns isp {FAR_ADDRESS6} AAAA"]
    assert (dns["status"], dns["detail"].split(" in ")[0]) == ("PASS", "AAAA 2001:db8:7::80")
    http = steps["http web"]
    assert http["status"] == "PASS", http
    assert http["detail"].startswith(f"200 from {FAR_ADDRESS6}, first byte"), http


# --- multi-WAN through the real collector ----------------------------------------------------


def test_wan_failover_seen_through_snmp(caplog: pytest.LogCaptureFixture):
    async def scenario() -> tuple[AgentState, list[str | None]]:
        router = SimulatedRouter(
            "core-router",
            [
                SimInterface("ether1", speed_bps=1e9, rx_bps=80e6, tx_bps=10e6),
                SimInterface("ether2", speed_bps=1e9, rx_bps=0.5e6, tx_bps=0.1e6),
                SimInterface("ether3", speed_bps=1e9, rx_bps=300e6, tx_bps=300e6),  # LAN
            ],
        )
        host, port = await router.start()
        config = parse_config(
            {
                "site": {"id": "T"},
                "snmp": [
                    {
                        "name": "core-router",
                        "address": f"{host}:{port}",
                        "community": "public",
                        "interfaces": [
                            {"name": "ether1", "role": "wan"},
                            {"name": "ether2", "role": "wan"},
                        ],
                    }
                ],
            }
        )
        state = AgentState("T", "", "0")
        device = state.devices["core-router"] = DeviceState("core-router", "snmp")
        sessions = SnmpSessions()
        poller = snmp_poller(config.snmp[0], device, sessions)
        active: list[str | None] = []

        async def poll() -> None:
            await poller.poll()
            assert device.up, device.message
            assert isinstance(device.status, RouterStatus) and device.status.wan is not None
            active.append(device.status.wan.active)

        try:
            await poll()  # first poll: no rates yet
            await asyncio.sleep(0.3)
            await poll()
            router.set_rates("ether1", 0.2e6, 0.1e6)  # the fibre is cut: backup takes over
            router.set_rates("ether2", 40e6, 5e6)
            # A longer window: the fibre's last 80 Mb/s between the previous answer and
            # set_rates (tens of ms on a busy box) must not outweigh the backup's traffic.
            await asyncio.sleep(1.0)
            await poll()
            await asyncio.sleep(0.3)
            await poll()
        finally:
            await poller.close()
            await sessions.close()
            await router.stop()
        return state, active

    with caplog.at_level(logging.WARNING, logger="agent.checks.wan"):
        state, active = asyncio.run(scenario())
    assert active == [None, "ether1", "ether2", "ether2"]
    assert [r.message for r in caplog.records] == [
        "core-router: WAN traffic moved from ether1 to ether2"
    ]
    text = generate_latest(build_registry(state)).decode()
    samples = {
        (s.name, s.labels.get("interface")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("erozgar_wan_")
    }
    assert samples == {
        ("erozgar_wan_active", "ether1"): 0.0,
        ("erozgar_wan_active", "ether2"): 1.0,
        ("erozgar_wan_failovers_total", None): 1.0,
    }
    promtool = require("promtool")
    linted = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr
