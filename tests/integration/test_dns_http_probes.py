"""DNS and HTTP(S) probes against real peers on loopback: Debian's dnsmasq as the resolver
(a local zone, NXDOMAIN, REFUSED, an answer too big for UDP), an HTTP and an HTTPS server with
a certificate from a test CA (a slow first byte, a 500, a redirect, a body over the cap), IPv6
on ::1, and the whole link run through the agent's check and exposition."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agent.checks.link_quality import (
    HttpStatus,
    LinkQualityCheck,
    assess_dns,
    assess_http,
    run_link,
)
from agent.commission.healthcheck import check_link
from agent.config import parse_config
from agent.state import AgentState
from collectors.dns import Resolver, query
from collectors.http_probe import HttpTarget, fetch_url
from collectors.probe import Binding
from exporters.prometheus import build_registry
from simulators.web import Page, SimulatedWeb

from .conftest import free_udp_port, require
from .test_agent_process import closed_tcp_port, get, samples, scrape
from .test_endpoint_security import _cert, _write

pytestmark = pytest.mark.integration
BIG_RECORDS = 40  # 40 A records: over 512 bytes, so dnsmasq truncates the UDP answer


class Dnsmasq(NamedTuple):
    port: int


@pytest.fixture(scope="module")
def dnsmasq() -> Iterator[Dnsmasq]:
    binary = require("dnsmasq")
    port = free_udp_port()
    process = subprocess.Popen(
        [
            binary, "--keep-in-foreground", "--no-resolv", "--no-hosts", "--pid-file=",
            f"--port={port}", "--listen-address=127.0.0.1,::1", "--bind-interfaces",
            "--user=nobody", "--log-facility=-",
            *(f"--host-record=big.test,192.0.2.{n}" for n in range(1, BIG_RECORDS + 1)),
            "--address=/probe.test/192.0.2.10", "--address=/probe.test/2001:db8::10",
            "--address=/nx.test/",  # a local zone with nothing in it: NXDOMAIN
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 5
        while asyncio.run(query(Resolver("l", "127.0.0.1", port), "probe.test", "A")).rcode != 0:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, "dnsmasq did not answer within 5 s"
            time.sleep(0.05)
        yield Dnsmasq(port)
    finally:
        process.terminate()
        process.wait(5)


def ask(port: int, name: str, qtype: str = "A", address: str = "127.0.0.1", **kw: object):
    resolver = Resolver("local", address, port)
    return asyncio.run(query(resolver, name, qtype, **kw))  # type: ignore[arg-type]


def test_dns_answers_time_rcode_and_records(dnsmasq: Dnsmasq):
    a = ask(dnsmasq.port, "probe.test")
    assert (a.rcode, a.addresses, a.transport, a.note) == (0, ("192.0.2.10",), "udp", "")
    assert a.seconds is not None and 0 < a.seconds < 0.5
    six = ask(dnsmasq.port, "PROBE.test", "AAAA", "::1")  # over IPv6, the name in any case
    assert (six.rcode, six.addresses) == (0, ("2001:db8::10",))
    assert ask(dnsmasq.port, "nx.test").rcode_name == "NXDOMAIN"
    refused = ask(dnsmasq.port, "example.com")  # no upstream: dnsmasq will not recurse
    assert (refused.rcode_name, refused.ok) == ("REFUSED", False)


def test_dns_truncated_answer_is_asked_again_over_tcp(dnsmasq: Dnsmasq):
    big = ask(dnsmasq.port, "big.test")
    assert (big.transport, big.rcode, len(big.addresses)) == ("tcp", 0, BIG_RECORDS)


def test_dns_silence_and_refusal_are_results(dnsmasq: Dnsmasq):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as mute:
        mute.bind(("127.0.0.1", 0))  # bound, never answers
        silent = ask(mute.getsockname()[1], "probe.test", timeout=0.3)
    assert (silent.rcode, silent.seconds, silent.note) == (None, None, "no answer within 0.3 s")
    closed = ask(free_udp_port(), "probe.test")
    assert (closed.rcode, closed.note) == (None, "connection refused")
    bound = ask(dnsmasq.port, "probe.test", binding=Binding("127.0.0.3", interface="lo"))
    assert bound.rcode == 0  # sent from the link's source address and interface


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("pki")
    ca_key, server_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(2))
    ca = _cert("erozgar test CA", ca_key, None, ca=True)
    files: dict[str, Path] = {}
    files["ca"], _ = _write(directory, "ca", ca, ca_key)
    server = _cert("web", server_key, (ca.subject, ca_key), server=True)  # 127.0.0.1, 1 day
    files["server"], files["server_key"] = _write(directory, "server", server, server_key)
    return files


PAGES = {
    "/": Page(body=b"hello"),
    "/slow": Page(body=b"late", delay=0.4),
    "/fail": Page(500, b"broken"),
    "/moved": Page(302, location="https://elsewhere.test/"),
    "/big": Page(body=b"x" * 300_000),
    "/unsized": Page(body=b"y" * 300_000, sized=False),
}


def fetch(url: str, **kw: object):
    async def run():
        web = SimulatedWeb(PAGES)
        context = kw.pop("server_tls", None)
        host = "::1" if "[::1]" in url else "127.0.0.1"
        _, port = await web.start(host, 0, context)  # type: ignore[arg-type]
        try:
            target = HttpTarget("t", url.format(port=port), **kw)  # type: ignore[arg-type]
            return await fetch_url(target, timeout=2), web.requests
        finally:
            await web.stop()

    return asyncio.run(run())


def test_http_phases_status_and_size_cap():
    page, _ = fetch("http://127.0.0.1:{port}/")
    assert (page.status, page.body_bytes, page.note, page.address) == (200, 5, "", "127.0.0.1")
    assert dict(page.phases)["resolve"] < 0.001  # an address: nothing to look up
    assert [phase for phase, _ in page.phases] == [
        "resolve", "connect", "tls", "processing", "transfer"
    ]  # fmt: skip
    slow, _ = fetch("http://127.0.0.1:{port}/slow")
    processing = dict(slow.phases)["processing"]
    assert 0.4 <= processing < 1.0 and slow.first_byte is not None and slow.first_byte >= 0.4
    failed, _ = fetch("http://127.0.0.1:{port}/fail")
    assert (failed.status, failed.ok) == (500, False)
    big, _ = fetch("http://127.0.0.1:{port}/big", max_bytes=100_000)
    assert big.body_bytes == 100_000
    unsized, _ = fetch("http://127.0.0.1:{port}/unsized")  # read until the server closes
    assert (unsized.status, unsized.body_bytes, unsized.note) == (200, 300_000, "")
    capped, _ = fetch("http://127.0.0.1:{port}/unsized", max_bytes=1000)
    assert (capped.body_bytes, capped.note) == (1000, "")
    six, _ = fetch("http://[::1]:{port}/")
    assert (six.status, six.address) == (200, "::1")


def test_http_name_resolves_only_to_the_family_the_link_is_bound_in():
    async def run(binding: Binding):
        web = SimulatedWeb(PAGES)
        _, port = await web.start("127.0.0.1", 0)  # localhost is IPv4 only on this box
        try:
            target = HttpTarget("t", f"http://localhost:{port}/")
            return await fetch_url(target, timeout=2, binding=binding)
        finally:
            await web.stop()

    page = asyncio.run(run(Binding("127.0.0.1")))
    assert (page.status, page.address) == (200, "127.0.0.1")
    only6 = asyncio.run(run(Binding(source_address6="::1")))  # must not leave by IPv4
    assert only6.status is None and only6.note.startswith("name resolution: "), only6.note


def test_http_redirect_is_reported_not_followed():
    moved, requests = fetch("http://127.0.0.1:{port}/moved")
    assert (moved.status, moved.location, moved.ok) == (302, "https://elsewhere.test/", True)
    assert requests == ["/moved"]  # one request: elsewhere.test was never asked
    _, detail, hint = assess_http(HttpStatus(moved, 1, 0), 0)
    assert "redirects to https://elsewhere.test/ (not followed)" in detail
    assert hint.startswith("configure the URL it redirects to")


def test_https_certificate_expiry_and_verification(pki: dict[str, Path]):
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(pki["server"], pki["server_key"])
    page, _ = fetch("https://127.0.0.1:{port}/", server_tls=server, ca_file=str(pki["ca"]))
    assert (page.status, page.note) == (200, "")
    assert page.tls_expiry is not None and abs(page.tls_expiry - (time.time() + 86400)) < 7200
    assert dict(page.phases)["tls"] > 0
    untrusted, _ = fetch("https://127.0.0.1:{port}/", server_tls=server)  # system CAs only
    assert untrusted.status is None
    assert untrusted.note.startswith("tls: unable to get local issuer certificate"), untrusted.note
    plain, _ = fetch("https://127.0.0.1:{port}/")  # an http server waits for a request line
    assert (plain.status, plain.note) == (None, "no TLS handshake within 2 s")


def test_link_run_through_check_and_exposition(dnsmasq: Dnsmasq, pki: dict[str, Path]):
    async def run():
        web = SimulatedWeb(PAGES)
        _, port = await web.start("127.0.0.1", 0)
        config = parse_config(
            {
                "site": {"id": "S-1"},
                "links": [
                    {
                        "name": "ptcl",
                        "source_address": "127.0.0.1",
                        "source_address6": "::1",
                        "count": 1,
                        "targets": [{"name": "lo", "address": "127.0.0.1", "tcp_port": port}],
                        "dns": {
                            "query": "probe.test",
                            "types": ["A", "AAAA"],
                            "resolvers": [
                                {"name": "isp", "address": f"127.0.0.1:{dnsmasq.port}"},
                                {"name": "public", "address": f"[::1]:{free_udp_port()}"},
                            ],
                        },
                        "http": [{"name": "pseb", "url": f"http://127.0.0.1:{port}/slow"}],
                    }
                ],
            }
        )
        (link,) = config.links
        try:
            status = LinkQualityCheck(link).update(await run_link(link), 1.7e9, 1.0)
            return link, status, await check_link(link)
        finally:
            await web.stop()

    link, status, verdict = asyncio.run(run())
    assert status.up
    # what `erozgar-agent check` prints for the link: a step per question and per URL
    steps = {step.name: (step.status, step.detail) for step in verdict.checks}
    assert re.fullmatch(r"A 192\.0\.2\.10 in \d+\.\d ms", steps["dns isp 127.0.0.1 A"][1])
    assert steps["dns isp 127.0.0.1 AAAA"][0] == "PASS"
    # the ISP's resolver answers: the public one failing is a warning, names still resolve
    assert steps["dns public ::1 A"] == ("WARN", "no A answer: connection refused")
    assert verdict.status == "WARN"
    status_word, detail = steps["http pseb"]
    assert status_word == "PASS" and detail.startswith("200 from 127.0.0.1, first byte 4"), detail
    verdicts = [(s.reading.resolver, s.reading.qtype, assess_dns(s)[0]) for s in status.dns]
    assert verdicts == [
        ("isp", "A", "PASS"), ("isp", "AAAA", "PASS"),
        ("public", "A", "FAIL"), ("public", "AAAA", "FAIL"),
    ]  # fmt: skip
    state = AgentState("S-1", "", "0.1.0")
    state.links[link.name] = status
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(
            generate_latest(build_registry(state)).decode()
        )
        for s in family.samples
    }
    isp = (("link", "ptcl"), ("resolver", "isp"), ("type", "AAAA"))
    assert samples[("erozgar_link_dns_up", isp)] == 1
    public = (("link", "ptcl"), ("resolver", "public"), ("type", "A"))
    assert samples[("erozgar_link_dns_failures_total", public)] == 1
    processing = (("link", "ptcl"), ("phase", "processing"), ("target", "pseb"))
    assert samples[("erozgar_link_http_duration_seconds", processing)] >= 0.4
    assert samples[("erozgar_link_http_status_code", (("link", "ptcl"), ("target", "pseb")))] == 200


def test_demo_probes_dns_and_http():
    binary = require("erozgar-agent")
    port = closed_tcp_port()
    process = subprocess.Popen(
        [binary, "demo", "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    found: dict = {}
    try:
        deadline = time.monotonic() + 20
        while get(found, "erozgar_link_http_status_code", link="ptcl", target="pseb") is None:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, "no HTTP probe in the demo's metrics in 20 s"
            time.sleep(0.5)
            with contextlib.suppress(OSError):
                found = samples(scrape(port))
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=10)
    dns = {"link": "ptcl", "resolver": "isp"}
    assert get(found, "erozgar_link_dns_up", **dns, type="A") == 1
    assert get(found, "erozgar_link_dns_answer_records", **dns, type="AAAA") == 1
    processing = get(
        found, "erozgar_link_http_duration_seconds", link="ptcl", target="pseb",
        phase="processing",
    )  # fmt: skip
    assert processing is not None and 0.12 <= processing < 1
    assert "Traceback" not in output, output
