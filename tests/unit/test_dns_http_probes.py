"""DNS and HTTP probes of a link: the DNS codec, the HTTP head parser, config, judgement and
exposition. Pure logic, no network (tests/integration/test_dns_http_probes.py has the peers)."""

from __future__ import annotations

import logging
import socket
import struct

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agent.checks.link_quality import (
    DnsStatus,
    HttpStatus,
    LinkQualityCheck,
    LinkRun,
    assess_dns,
    assess_http,
)
from agent.config import ConfigError, LinkSettings, parse_config
from agent.state import AgentState
from collectors.dns import DnsFormatError, DnsReading, build_query, parse_answer, read_name
from collectors.http_probe import PHASES, HttpReading, parse_head
from collectors.probe import ProbeReading
from exporters.prometheus import build_registry

DAY = 86400.0


def answer(
    ident: int = 0x1234,
    name: str = "example.com",
    qtype: int = 1,
    rcode: int = 0,
    records: list[tuple[int, bytes]] | None = None,
    flags: int = 0x8180,
) -> bytes:
    """A response as a resolver sends it: the question, then records whose names are
    compression pointers to it (offset 12)."""
    question = build_query(ident, name, "A")[12:-4] + struct.pack("!HH", qtype, 1)
    records = [(1, bytes([192, 0, 2, 1]))] if records is None else records
    body = b"".join(
        b"\xc0\x0c" + struct.pack("!HHIH", rtype, 1, 300, len(rdata)) + rdata
        for rtype, rdata in records
    )
    header = struct.pack("!HHHHHH", ident, flags | rcode, 1, len(records), 0, 0)
    return header + question + body


# --- DNS codec -------------------------------------------------------------------------------


def test_query_is_a_recursive_question_in_wire_format():
    packet = build_query(0xBEEF, "Probe.Example.", "AAAA")
    assert packet[:12] == bytes.fromhex("beef 0100 0001 0000 0000 0000")
    assert packet[12:] == b"\x05Probe\x07Example\x00" + b"\x00\x1c\x00\x01"


def test_answer_gives_the_records_of_the_type_after_a_cname():
    cname = (5, b"\x03www\xc0\x0c")  # a CNAME on the way is skipped
    data = answer(records=[cname, (1, bytes([192, 0, 2, 7])), (1, bytes([192, 0, 2, 8]))])
    parsed = parse_answer(data, 0x1234, "EXAMPLE.com.", "A")
    assert (parsed.rcode, parsed.truncated) == (0, False)
    assert parsed.addresses == ("192.0.2.7", "192.0.2.8")
    six = answer(qtype=28, records=[(28, bytes.fromhex("20010db8" + "0" * 23 + "1"))])
    assert parse_answer(six, 0x1234, "example.com", "AAAA").addresses == ("2001:db8::1",)


def test_answer_reports_rcode_and_truncation():
    nx = parse_answer(answer(rcode=3, records=[]), 0x1234, "example.com", "A")
    assert (nx.rcode, nx.addresses) == (3, ())
    tc = parse_answer(answer(flags=0x8380), 0x1234, "example.com", "A")
    assert tc.truncated


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (answer()[:11], "too short"),
        (answer(ident=0x4321), "id or QR"),
        (build_query(0x1234, "example.com", "A"), "id or QR"),  # our own query
        (answer(name="example.org"), "another question"),
        (answer()[:-2], "cut short"),
        (answer(records=[(1, b"\x01\x02")]), "A record of 2 bytes"),
        (answer()[:12] + b"\xc0\x0c", "does not point backwards"),  # a pointer to itself
        (answer()[:12] + b"\x80abc", "label type 2"),
    ],
)
def test_garbage_is_a_format_error_naming_the_fault(data: bytes, problem: str):
    with pytest.raises(DnsFormatError, match=problem):
        parse_answer(data, 0x1234, "example.com", "A")


def test_names_follow_compression_pointers():
    data = b"\x00" * 12 + b"\x07example\x03com\x00" + b"\x03www\xc0\x0c"
    assert read_name(data, 12) == ("example.com", 25)
    assert read_name(data, 25) == ("www.example.com", 31)


# --- HTTP head -------------------------------------------------------------------------------


def test_head_parses_status_and_headers():
    status, headers = parse_head(b"HTTP/1.1 302 Found\r\nLocation: https://x.test/\r\nA:b")
    assert (status, headers) == (302, {"location": "https://x.test/", "a": "b"})
    with pytest.raises(ValueError, match="not an HTTP status line"):
        parse_head(b"SSH-2.0-OpenSSH_9.2")


# --- config ----------------------------------------------------------------------------------


def link(**extra: object) -> LinkSettings:
    return LinkSettings.model_validate(
        {"name": "ptcl", "targets": [{"name": "gateway", "address": "10.0.0.1"}], **extra}
    )


def problems(**extra: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(
            {
                "site": {"id": "S-1"},
                "links": [
                    {"name": "a", "targets": [{"name": "g", "address": "10.0.0.1"}], **extra}
                ],
            }
        )
    return caught.value.problems


DNS = {"query": "example.com", "resolvers": [{"name": "isp", "address": "10.0.0.53"}]}


def test_config_takes_dns_http_and_ipv6():
    settings = link(
        source_address="192.0.2.2",
        source_address6="2001:DB8::2",
        dns={**DNS, "types": ["A", "AAAA"], "resolvers": [
            {"name": "isp", "address": "10.0.0.53"},
            {"name": "public", "address": "[2606:4700:4700::1111]:5353"},
        ]},
        http=[{"name": "pseb", "url": "https://[2001:db8::80]:8443/health?x=1"}],
        targets=[{"name": "gw6", "address": "2001:db8::1"}],
    )  # fmt: skip
    assert settings.dns is not None
    assert [r.host_port for r in settings.dns.resolvers] == [
        ("10.0.0.53", 53),
        ("2606:4700:4700::1111", 5353),
    ]
    assert settings.binding.source("2001:db8::1") == "2001:db8::2"  # compressed, lower case
    assert settings.binding.source("10.0.0.1") == "192.0.2.2"
    assert settings.binding.family == socket.AF_UNSPEC  # a URL's name may resolve to either
    assert link(source_address="192.0.2.2").binding.family == socket.AF_INET
    only6 = link(source_address6="2001:db8::2", targets=[{"name": "g", "address": "2001:db8::1"}])
    assert only6.binding.family == socket.AF_INET6


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"dns": {**DNS, "query": "10.0.0.1"}}, "links[0].dns.query: '10.0.0.1' is an address"),
        (
            {"dns": {**DNS, "resolvers": [{"name": "isp", "address": "dns.google"}]}},
            "links[0].dns.resolvers[0].address: 'dns.google' is not an IP address",
        ),
        ({"dns": {**DNS, "types": ["MX"]}}, "links[0].dns.types[0]: Input should be 'A'"),
        (
            {"dns": {**DNS, "resolvers": [{"name": "x", "address": "10.0.0.1"}] * 2}},
            "links[0].dns.resolvers: resolver name 'x' is used twice",
        ),
        (
            {"http": [{"name": "w", "url": "ftp://x.test/"}]},
            "links[0].http[0].url: 'ftp://x.test/' is not an http:// or https:// URL",
        ),
        (
            {"http": [{"name": "w", "url": "http://x.test/a b"}]},
            "links[0].http[0].url: 'http://x.test/a b' has spaces or non-ASCII characters",
        ),
        (
            {"http": [{"name": "w", "url": "https://u:p@x.test/"}]},
            "links[0].http[0].url: 'https://u:p@x.test/' holds credentials",
        ),
        (
            {"interval": 5, "http": [{"name": "w", "url": "http://x.test/", "timeout": 5}]},
            "links[0].http: w's timeout 5 s does not fit in 0.9 x interval 5 s",
        ),
        (
            {"source_address": "192.0.2.2", "targets": [{"name": "g", "address": "2001:db8::1"}]},
            "links[0].targets: 2001:db8::1 is IPv6 but the link has only an IPv4 source_address",
        ),
        ({"source_address6": "10.0.0.1"}, "links[0].source_address6: '10.0.0.1' is not an IPv6"),
        (
            {"source_address": "192.0.2.2", "http": [{"name": "w", "url": "http://[::1]/"}]},
            "links[0].http: ::1 is IPv6 but the link has only an IPv4 source_address",
        ),
    ],
)
def test_config_problems_name_the_key(extra: dict[str, object], problem: str):
    (line,) = problems(**extra)
    assert line.startswith(f"config: {problem}"), line


# --- judgement -------------------------------------------------------------------------------


def dns_reading(resolver: str = "isp", **changes: object) -> DnsReading:
    fields: dict[str, object] = {
        "resolver": resolver, "address": "10.0.0.53", "qtype": "A", "seconds": 0.012,
        "rcode": 0, "addresses": ("192.0.2.1",), "transport": "udp",
    }  # fmt: skip
    return DnsReading(**{**fields, **changes})  # type: ignore[arg-type]


def page(status: int | None = 200, **changes: object) -> HttpReading:
    phases = tuple((phase, 0.01) for phase in PHASES) if status else ()
    fields: dict[str, object] = {
        "target": "pseb", "url": "https://x.test/", "address": "192.0.2.80", "status": status,
        "phases": phases, "body_bytes": 10, "tls_expiry": 1000 * DAY,
    }  # fmt: skip
    return HttpReading(**{**fields, **changes})  # type: ignore[arg-type]


def run(dns: tuple[DnsReading, ...] = (), http: tuple[HttpReading, ...] = ()) -> LinkRun:
    return LinkRun({"gateway": ProbeReading("gateway", "10.0.0.1", "icmp", (0.001,))}, dns, http)


def test_failures_count_and_do_not_take_the_link_down(caplog: pytest.LogCaptureFixture):
    check = LinkQualityCheck(link(dns=DNS))
    check.update(run((dns_reading(),)), 1.0, 1.0)
    silent = dns_reading(seconds=None, rcode=None, addresses=(), note="connection refused")
    with caplog.at_level(logging.INFO, logger="agent.checks.link_quality"):
        status = check.update(run((silent,), (page(500),)), 2.0, 1.0)
        check.update(run((dns_reading(rcode=2, addresses=()),)), 3.0, 1.0)  # still failing
        back = check.update(run((dns_reading(),)), 4.0, 1.0)
    assert status.up  # the gateway answered: DNS failing is not the line failing
    (dns,) = status.dns
    assert (dns.queries_total, dns.failures_total) == (2, 1)
    assert (status.http[0].requests_total, status.http[0].failures_total) == (1, 1)
    assert back.dns[0].failures_total == 2
    assert [r.message for r in caplog.records] == [
        "link ptcl: DNS fails at every resolver: isp 10.0.0.53 A (connection refused)",
        "link ptcl: DNS resolves again",
    ]


def test_one_resolver_failing_is_not_dns_failing(caplog: pytest.LogCaptureFixture):
    check = LinkQualityCheck(link(dns=DNS))
    check.update(run((dns_reading(), dns_reading("public"))), 1.0, 1.0)
    with caplog.at_level(logging.INFO, logger="agent.checks.link_quality"):
        check.update(run((dns_reading(), dns_reading("public", rcode=5))), 2.0, 1.0)
    assert caplog.records == []


def status_of(reading: DnsReading) -> DnsStatus:
    return DnsStatus(reading, 1, 0)


def test_assess_dns_says_what_was_seen():
    assert assess_dns(status_of(dns_reading())) == ("PASS", "A 192.0.2.1 in 12.0 ms", "")
    result, detail, hint = assess_dns(status_of(dns_reading(seconds=0.8, transport="tcp")))
    assert (result, detail) == ("WARN", "A 192.0.2.1 in 800.0 ms over TCP after a truncated answer")
    silent = dns_reading(seconds=None, rcode=None, addresses=(), note="no answer within 2 s")
    result, detail, hint = assess_dns(status_of(silent))
    assert (result, detail) == ("FAIL", "no A answer: no answer within 2 s")
    assert hint.startswith("resolver isp 10.0.0.53 did not answer: check its address")
    result, _, hint = assess_dns(status_of(silent), others_answer=True)
    assert result == "WARN" and hint.endswith(
        "another resolver answers, so the ISP may block outside DNS"
    )
    result, detail, hint = assess_dns(status_of(dns_reading(rcode=5, addresses=())))
    assert (result, detail) == ("FAIL", "A answered REFUSED in 12.0 ms")
    assert "refuses to recurse" in hint
    nodata = assess_dns(status_of(dns_reading(qtype="AAAA", addresses=())))
    assert nodata == ("PASS", "AAAA no AAAA record in 12.0 ms", "")


def test_assess_http_says_what_was_seen():
    result, detail, _ = assess_http(HttpStatus(page(), 1, 0), 900 * DAY)
    assert (result, detail) == (
        "PASS",
        "200 from 192.0.2.80, first byte 40 ms (resolve/connect/tls/processing/transfer "
        "10/10/10/10/10 ms), 10 bytes, certificate expires in 100 days",
    )
    assert assess_http(HttpStatus(page(), 1, 0), 990 * DAY)[0::2] == (
        "WARN",
        "the server's certificate expires soon",
    )
    moved = assess_http(HttpStatus(page(301, location="https://elsewhere.test/"), 1, 0), 0)
    assert moved[0] == "WARN" and "redirects to https://elsewhere.test/ (not followed)" in moved[1]
    assert assess_http(HttpStatus(page(503), 1, 1), 0)[0] == "FAIL"
    failed = assess_http(HttpStatus(page(None, note="no first byte within 5 s"), 1, 1), 0)
    assert failed[:2] == ("FAIL", "no first byte within 5 s")


# --- exposition ------------------------------------------------------------------------------


def test_exposition_of_dns_and_http():
    state = AgentState("ISB-001", "", "0.1.0")
    check = LinkQualityCheck(link(dns=DNS))
    silent = dns_reading("public", address="1.1.1.1", seconds=None, rcode=None, addresses=())
    state.links["ptcl"] = check.update(run((dns_reading(), silent), (page(),)), 1.7e9, 1.0)
    text = generate_latest(build_registry(state)).decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    isp = (("link", "ptcl"), ("resolver", "isp"), ("type", "A"))
    public = (("link", "ptcl"), ("resolver", "public"), ("type", "A"))
    assert samples[("erozgar_link_dns_up", isp)] == 1
    assert samples[("erozgar_link_dns_up", public)] == 0
    assert samples[("erozgar_link_dns_duration_seconds", isp)] == pytest.approx(0.012)
    assert ("erozgar_link_dns_duration_seconds", public) not in samples  # no answer, no time
    assert samples[("erozgar_link_dns_failures_total", public)] == 1
    assert samples[("erozgar_link_dns_queries_total", public)] == 1
    assert samples[("erozgar_link_dns_answer_records", isp)] == 1
    resolver = (("address", "1.1.1.1"), ("link", "ptcl"), ("resolver", "public"))
    assert samples[("erozgar_link_dns_resolver_info", resolver)] == 1
    pseb = (("link", "ptcl"), ("target", "pseb"))
    assert samples[("erozgar_link_http_status_code", pseb)] == 200
    assert samples[("erozgar_link_http_tls_expiry_timestamp_seconds", pseb)] == 1000 * DAY
    phase = (("link", "ptcl"), ("phase", "processing"), ("target", "pseb"))
    assert samples[("erozgar_link_http_duration_seconds", phase)] == pytest.approx(0.01)
    assert samples[("erozgar_link_http_up", pseb)] == 1
