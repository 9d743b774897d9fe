"""Link quality and multi-WAN judgement: pure logic, no network."""

from __future__ import annotations

import logging
import struct

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agent.checks.bandwidth import InterfaceStatus
from agent.checks.link_quality import RTT_BUCKETS, LinkQualityCheck, LinkRun, assess, jitter
from agent.checks.wan import FLOOR_BPS, WanCheck
from agent.config import ConfigError, LinkSettings, parse_config
from agent.state import AgentState, DeviceState, RouterStatus
from collectors.probe import (
    ProbeReading,
    checksum,
    echo_request,
    parse_echo_reply,
    ping_group_allows,
)
from collectors.readings import PollError
from exporters.prometheus import build_registry

MS = 0.001


def link(**extra: object) -> LinkSettings:
    return LinkSettings.model_validate(
        {
            "name": "ptcl",
            "targets": [
                {"name": "gateway", "address": "10.0.0.1"},
                {"name": "web", "address": "1.1.1.1", "tcp_port": 443},
            ],
            **extra,
        }
    )


# --- ICMP packets -----------------------------------------------------------------------------


def test_checksum_rfc1071_example():
    # RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (one's complement 220d).
    assert checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D


def test_echo_request_checksums_to_zero_and_parses_back_as_reply():
    packet = echo_request(0x1234, 7, b"payload!")
    assert checksum(packet) == 0  # a valid checksum makes the whole message sum to 0xffff
    reply = b"\x00" + packet[1:]  # type 0: echo reply
    assert parse_echo_reply(reply, raw=False) == (0x1234, 7, b"payload!")
    ip_header = bytes([0x45]) + bytes(19)  # IHL 5: a raw socket sees 20 header bytes first
    assert parse_echo_reply(ip_header + reply, raw=True) == (0x1234, 7, b"payload!")
    assert parse_echo_reply(packet, raw=False) is None  # our own request, seen on loopback
    assert parse_echo_reply(b"\x00\x00", raw=False) is None


def test_ping_group_range_logic():
    assert not ping_group_allows("1\t0\n", {0, 65534})  # the kernel default: nobody
    assert ping_group_allows("0 2147483647", {65534})  # systemd's default: everybody
    assert ping_group_allows("100 200", {5, 150})
    assert not ping_group_allows("100 200", {99, 201})
    assert not ping_group_allows("garbage", {0})


# --- loss, RTT, jitter, up/down -------------------------------------------------------------


def test_jitter_is_mean_absolute_difference_of_consecutive_rtts():
    assert jitter([10 * MS, 12 * MS, 11 * MS, 15 * MS]) == pytest.approx((2 + 1 + 4) / 3 * MS)
    assert jitter([10 * MS]) is None


def test_runs_accumulate_counters_and_histogram():
    check = LinkQualityCheck(link())
    first = check.update(
        LinkRun(
            {
                "gateway": ProbeReading(
                    "gateway", "10.0.0.1", "icmp", (2 * MS, None, 4 * MS, 3 * MS)
                ),
                "web": ProbeReading("web", "1.1.1.1", "tcp", (0.04, 0.05)),
            }
        ),
        1000.0,
        2.0,
    )
    gateway, web = first.targets
    assert first.up
    assert (gateway.sent, gateway.received, gateway.loss_ratio) == (4, 3, 0.25)
    assert (gateway.rtt_min, gateway.rtt_max) == (2 * MS, 4 * MS)
    assert gateway.rtt_avg == pytest.approx(3 * MS)
    assert gateway.jitter == pytest.approx(1.5 * MS)  # |4-2|, |3-4| over the replies
    assert web.method == "tcp" and web.loss_ratio == 0.0
    second = check.update(
        LinkRun(
            {
                "gateway": ProbeReading("gateway", "10.0.0.1", "icmp", (None, None, 2.5)),
                "web": ProbeReading("web", "1.1.1.1", "tcp", (None, None)),
            }
        ),
        1030.0,
        2.0,
    )
    gateway, web = second.targets
    assert second.up  # the gateway answered once (late but within the histogram's +Inf)
    assert (gateway.sent_total, gateway.lost_total) == (7, 3)
    assert (web.sent_total, web.lost_total, web.loss_ratio, web.rtt_avg) == (4, 2, 1.0, None)
    bounds = dict(zip([*RTT_BUCKETS, float("inf")], gateway.buckets, strict=True))
    assert (bounds[0.001], bounds[0.0025], bounds[0.005], bounds[2.0]) == (0, 1, 3, 3)
    assert bounds[float("inf")] == 4
    assert gateway.rtt_sum == pytest.approx(0.009 + 2.5)


def test_link_down_only_when_no_target_answers(caplog: pytest.LogCaptureFixture):
    check = LinkQualityCheck(link())
    silent = {
        "gateway": ProbeReading("gateway", "10.0.0.1", "icmp", (None,) * 5),
        "web": PollError("timeout", "the probe run took longer than 4 s"),
    }
    answered = {
        "gateway": ProbeReading("gateway", "10.0.0.1", "icmp", (MS,) * 5),
        "web": ProbeReading("web", "1.1.1.1", "tcp", (MS,) * 5),
    }
    check.update(LinkRun(answered), 1.0, 1.0)
    with caplog.at_level(logging.INFO, logger="agent.checks.link_quality"):
        status = check.update(LinkRun(silent), 2.0, 1.0)
        check.update(LinkRun(silent), 3.0, 1.0)  # still down: said once
    assert not status.up
    assert status.targets[1].errors == (("timeout", 1),)
    assert [r.message for r in caplog.records] == [
        "link ptcl: down: no answer from gateway 10.0.0.1, web 1.1.1.1"
    ]


def test_assess_names_what_to_do():
    check = LinkQualityCheck(link())
    status = check.update(
        LinkRun(
            {
                "gateway": ProbeReading("gateway", "10.0.0.1", "icmp", (None,) * 5),
                "web": ProbeReading("web", "1.1.1.1", "tcp", (0.2, 0.3, None, 0.25, 0.2)),
            }
        ),
        1.0,
        1.0,
    )
    result, detail, hint = assess(status.targets[0], None)
    assert result == "FAIL"
    assert detail == "no answer to 5 icmp probes"
    assert "no answer from gateway 10.0.0.1: check the WAN cable/ONT" in hint
    assert "add tcp_port" in hint
    result, detail, hint = assess(status.targets[1], 443)
    assert result == "WARN"  # 20 % loss and 238 ms average
    assert detail.startswith("4/5 answered (tcp), rtt min/avg/max 200.0/237.5/300.0 ms")
    denied = LinkQualityCheck(link()).update(
        LinkRun({"gateway": PollError("denied", "ICMP not permitted")}), 1.0, 1.0
    )
    result, _, hint = assess(denied.targets[0], None)
    assert result == "FAIL" and "ping_group_range" in hint


# --- config ----------------------------------------------------------------------------------


def config_problems(links: list[dict[str, object]]) -> list[str]:
    data = {
        "site": {"id": "ISB-001"},
        "snmp": [
            {
                "name": "core-router",
                "address": "192.168.1.1",
                "community": "x",
                "interfaces": [{"name": "ether1", "role": "wan"}],
            }
        ],
        "links": links,
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    return caught.value.problems


def test_config_defaults_and_reference():
    settings = link(device=None)
    assert (settings.interval, settings.count, settings.spacing, settings.timeout) == (
        30,
        5,
        0.5,
        1,
    )
    assert settings.run_seconds == 3.0


@pytest.mark.parametrize(
    ("links", "problem"),
    [
        (
            [{"name": "a", "device": "edge", "targets": [{"name": "g", "address": "10.0.0.1"}]}],
            "config: links[0].device: no snmp device named 'edge' (snmp devices: core-router)",
        ),
        (
            [
                {
                    "name": "a",
                    "device": "core-router",
                    "interface": "ether9",
                    "targets": [{"name": "g", "address": "10.0.0.1"}],
                }
            ],
            "config: links[0].interface: core-router lists no port 'ether9' under interfaces: "
            "(listed: ether1)",
        ),
        (
            [{"name": "a", "targets": [{"name": "g", "address": "dns.google"}]}],
            "config: links[0].targets[0].address: 'dns.google' is not an IP address (IPv4 or IPv6)",
        ),
        (
            [
                {"name": "a", "targets": [{"name": "g", "address": "10.0.0.1"}]},
                {"name": "a", "targets": [{"name": "g", "address": "10.0.0.2"}]},
            ],
            "config: links[1].name: link name 'a' is used twice",
        ),
        (
            [{"name": "a", "interval": 3, "targets": [{"name": "g", "address": "10.0.0.1"}]}],
            "config: links[0].count: a probe run takes up to 3 s ((count - 1) x spacing + "
            "timeout), too long for interval 3 s; lower count, spacing or timeout, or raise "
            "interval",
        ),
        (
            [
                {
                    "name": "a",
                    "targets": [
                        {"name": "g", "address": "10.0.0.1"},
                        {"name": "g", "address": "10.0.0.2"},
                    ],
                }
            ],
            "config: links[0].targets: target name 'g' is used twice",
        ),
    ],
)
def test_config_problems_name_the_key(links: list[dict[str, object]], problem: str):
    assert config_problems(links) == [problem]


# --- multi-WAN -------------------------------------------------------------------------------


def port(name: str, rx_bps: float, tx_bps: float = 0.0, up: bool = True) -> InterfaceStatus:
    return InterfaceStatus(
        name, "wan", up, True, 1e9, 64, 0, 0, rx_bps, tx_bps, 1e8, 2e7, 0, 0, 0, 0
    )


def test_wan_follows_traffic_with_hysteresis(caplog: pytest.LogCaptureFixture):
    check = WanCheck("core-router")
    lan = InterfaceStatus("ether5", "lan", True, True, 1e9, 64, 0, 0, 9e8, 9e8, 0, 0, 0, 0, 0, 0)
    assert check.update([lan]) is None  # no wan port: nothing to say
    assert check.update([port("ether1", 0), port("ether2", 0)]).active is None  # not yet known
    with caplog.at_level(logging.INFO, logger="agent.checks.wan"):
        status = check.update([port("ether1", 80e6, 5e6), port("ether2", 1e6)])
        assert (status.active, status.failovers) == ("ether1", 0)  # first sight: no failover
        # noise: ether2 busier, but not twice as busy as the active port
        assert check.update([port("ether1", 10e6), port("ether2", 15e6)]).active == "ether1"
        # a quiet night: nothing above the floor keeps the last active port
        quiet = check.update([port("ether1", FLOOR_BPS / 4), port("ether2", FLOOR_BPS / 2)])
        assert (quiet.active, quiet.failovers) == ("ether1", 0)
        # ether1's fibre is cut: its port goes down and traffic moves to ether2
        moved = check.update([port("ether1", 0, up=False), port("ether2", 30e6, 4e6)])
        assert (moved.ports, moved.active, moved.failovers) == (
            ("ether1", "ether2"),
            "ether2",
            1,
        )
        back = check.update([port("ether1", 70e6), port("ether2", 2e6)])
        assert (back.active, back.failovers) == ("ether1", 2)
    assert [r.message for r in caplog.records] == [
        "core-router: WAN traffic moved from ether1 to ether2",
        "core-router: WAN traffic moved from ether2 to ether1",
    ]


# --- exposition ------------------------------------------------------------------------------


def test_exposition_of_links_and_wan():
    state = AgentState("ISB-001", "", "0.1.0")
    check = LinkQualityCheck(link(isp="PTCL", device="core-router", interface="ether1"))
    state.links["ptcl"] = check.update(
        LinkRun(
            {
                "gateway": ProbeReading("gateway", "10.0.0.1", "icmp", (2 * MS, None, 4 * MS)),
                "web": PollError("denied", "ICMP not permitted"),
            }
        ),
        1.7e9,
        2.0,
    )
    router = DeviceState("core-router", "snmp", up=True, reason="ok")
    wan = WanCheck("core-router")
    wan.update([port("ether1", 5e6), port("ether2", 0)])
    router.status = RouterStatus(
        "r",
        "",
        "1.3.6.1.4.1.14988.1",
        1.0,
        (),
        1,
        1,
        wan.update([port("ether1", 0), port("ether2", 9e6)]),
    )
    state.devices["core-router"] = router
    text = generate_latest(build_registry(state)).decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    key = (("link", "ptcl"), ("target", "gateway"))
    assert samples[("erozgar_link_up", (("link", "ptcl"),))] == 1.0
    assert samples[("erozgar_link_probe_packets_sent_total", key)] == 3
    assert samples[("erozgar_link_probe_packets_lost_total", key)] == 1
    assert samples[("erozgar_link_probe_loss_ratio", key)] == pytest.approx(1 / 3)
    assert samples[("erozgar_link_probe_rtt_avg_seconds", key)] == pytest.approx(0.003)
    assert samples[("erozgar_link_probe_jitter_seconds", key)] == pytest.approx(0.002)
    assert samples[("erozgar_link_probe_rtt_seconds_bucket", (("le", "0.0025"), *key))] == 1
    assert samples[("erozgar_link_probe_rtt_seconds_count", key)] == 2
    web = (("link", "ptcl"), ("reason", "denied"), ("target", "web"))
    assert samples[("erozgar_link_probe_errors_total", web)] == 1
    info = (("device", "core-router"), ("interface", "ether1"), ("isp", "PTCL"), ("link", "ptcl"))
    assert samples[("erozgar_link_info", info)] == 1
    assert (
        samples[("erozgar_wan_active", (("device", "core-router"), ("interface", "ether2")))] == 1
    )
    assert (
        samples[("erozgar_wan_active", (("device", "core-router"), ("interface", "ether1")))] == 0
    )
    assert samples[("erozgar_wan_failovers_total", (("device", "core-router"),))] == 1
    assert struct.calcsize("!BBHHH") == 8  # the ICMP header the probe packs
