"""Capacity tests against real peers: Debian's iperf3 server on loopback and in a network
namespace whose link `tc` shapes to a known rate, a small HTTP server serving and accepting a
known size, and the daemon running a test inside its window and keeping its budget across a
restart."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from collectors.capacity import CapacityReading, Endpoint, measure
from simulators.speedtest import SpeedtestServer

from .conftest import HOST, require, stop
from .deploy_stack import DEPLOY, agent_process, free_tcp_port, http_get, unit_command
from .test_probes import FAR_ADDRESS, NEAR_ADDRESS, Namespaces, in_ns, namespaces

pytestmark = pytest.mark.integration
__all__ = ["namespaces"]  # the link-probe tests' namespace pair, used here as a fixture

SHAPED_DOWN_MBIT, SHAPED_UP_MBIT = 20, 5
DOWNLOAD_BYTES = 6_000_000  # what the HTTP speed-test server sends


def iperf3_server(
    *options: str, prefix: tuple[str, ...] = (), address: str = HOST
) -> tuple[subprocess.Popen[bytes], int]:
    """`iperf3 -s` on `address` (in a namespace when `prefix` is `ip netns exec NS`)."""
    binary = require("iperf3")
    port = free_tcp_port()
    process = subprocess.Popen(
        [*prefix, binary, "-s", "-B", address, "-p", str(port), *options],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(0.3)  # it listens at once; give the process a moment to get there
    assert process.poll() is None, "iperf3 -s exited at once"
    return process, port


@pytest.fixture
def loopback_iperf3() -> Iterator[int]:
    process, port = iperf3_server()
    yield port
    stop(process)


def write_config(path: Path, link: dict, **top: object) -> Path:
    path.write_text(json.dumps({"site": {"id": "T"}, "links": [link], **top}))
    return path


def speedtest(
    config: Path, *prefix: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    agent = str(Path(sys.executable).parent / "erozgar-agent")
    return subprocess.run(
        [*prefix, agent, "speedtest", "--config", str(config)],
        capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})},
    )  # fmt: skip


# --- a link shaped with tc in the namespace pair ---------------------------------------------


@pytest.fixture
def shaped(namespaces: Namespaces) -> Iterator[Namespaces]:
    """isp0 (far -> near: download) at SHAPED_DOWN_MBIT, wan0 (near -> far: upload) at
    SHAPED_UP_MBIT, by a token bucket on each side's egress."""
    require("tc")
    for ns, dev, mbit in ((namespaces.far, "isp0", SHAPED_DOWN_MBIT),
                          (namespaces.near, "wan0", SHAPED_UP_MBIT)):  # fmt: skip
        added = in_ns(ns, "tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate",
                      f"{mbit}mbit", "burst", "32kb", "latency", "50ms")  # fmt: skip
        assert added.returncode == 0, added.stderr
    try:
        yield namespaces
    finally:
        in_ns(namespaces.far, "tc", "qdisc", "del", "dev", "isp0", "root")
        in_ns(namespaces.near, "tc", "qdisc", "del", "dev", "wan0", "root")


def test_speedtest_measures_the_shaped_rate_within_ten_percent(shaped: Namespaces, tmp_path):
    server, port = iperf3_server(prefix=("ip", "netns", "exec", shaped.far), address=FAR_ADDRESS)
    link = {
        "name": "isp", "isp": "Shaped", "source_address": NEAR_ADDRESS, "bind_interface": "wan0",
        "targets": [{"name": "gateway", "address": FAR_ADDRESS}],
        "capacity_test": {"iperf3": f"{FAR_ADDRESS}:{port}", "duration": 4,
                          "capacity_down_mbps": 25, "capacity_up_mbps": 5},
    }  # fmt: skip
    try:
        ran = speedtest(write_config(tmp_path / "c.yml", link), "ip", "netns", "exec", shaped.near)
    finally:
        stop(server)
    assert ran.returncode == 1, ran.stderr  # 20 of 25 Mb/s is below 80 %: BELOW, exit 1
    assert "Traceback" not in ran.stderr
    assert ran.stderr.splitlines() == [
        "link isp: download by iperf3 for 4 s ...",
        "link isp: upload by iperf3 for 4 s ...",
    ]
    line = ran.stdout.strip()
    print(f"\nshaped {SHAPED_DOWN_MBIT}/{SHAPED_UP_MBIT} Mbit/s: {line}")
    found = re.fullmatch(
        r"link isp: download ([\d.]+) of 25\.0 \((\d+)%\) Mb/s, upload ([\d.]+) of 5\.0 "
        r"\((\d+)%\) Mb/s, latency under load ([\d.]+) ms, ([\d.]+) MB by iperf3: "
        r"BELOW 80% OF THE CONTRACT",
        line,
    )
    assert found, line
    down, up = float(found[1]), float(found[3])
    assert down == pytest.approx(SHAPED_DOWN_MBIT, rel=0.10)
    assert up == pytest.approx(SHAPED_UP_MBIT, rel=0.10)
    # the token bucket's 50 ms queue fills under load: the probes wait in it (an idle veth
    # answers in about 0.05 ms; 5.0-10.3 ms seen under load)
    assert float(found[5]) > 1
    moved = float(found[6]) * 1e6
    assert moved == pytest.approx((down + up) * 1e6 / 8 * 4, rel=0.25)


# Runs in "far": the HTTP speed-test endpoint, serving more than a shaped test can fetch.
HTTP_SERVER = """
import asyncio, sys
from simulators.speedtest import SpeedtestServer
async def main():
    await SpeedtestServer(size=200_000_000).start(sys.argv[1], int(sys.argv[2]))
    print("ready", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


def test_http_fallback_measures_the_shaped_rate_within_ten_percent(shaped: Namespaces, tmp_path):
    port = free_tcp_port()
    server = subprocess.Popen(
        ["ip", "netns", "exec", shaped.far, sys.executable, "-c", HTTP_SERVER, FAR_ADDRESS,
         str(port)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    link = {
        "name": "isp", "source_address": NEAR_ADDRESS,
        "targets": [{"name": "gateway", "address": FAR_ADDRESS}],
        "capacity_test": {"download_url": f"http://{FAR_ADDRESS}:{port}/200MB.bin",
                          "upload_url": f"http://{FAR_ADDRESS}:{port}/upload", "duration": 4,
                          "capacity_down_mbps": 20, "capacity_up_mbps": 5},
    }  # fmt: skip
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        ran = speedtest(write_config(tmp_path / "c.yml", link), "ip", "netns", "exec", shaped.near)
    finally:
        stop(server)
    line = ran.stdout.strip()
    print(f"\nshaped {SHAPED_DOWN_MBIT}/{SHAPED_UP_MBIT} Mbit/s, HTTP: {line}")
    found = re.fullmatch(
        r"link isp: download ([\d.]+) of 20\.0 \(\d+%\) Mb/s, upload ([\d.]+) of 5\.0 "
        r"\(\d+%\) Mb/s, latency under load [\d.]+ ms, [\d.]+ MB by http: PASS",
        line,
    )
    assert found, ran.stdout + ran.stderr
    # the upload counts only what the far end acknowledged, not what sits in the send queue
    assert float(found[1]) == pytest.approx(SHAPED_DOWN_MBIT, rel=0.10)
    assert float(found[2]) == pytest.approx(SHAPED_UP_MBIT, rel=0.10)


# --- loopback ----------------------------------------------------------------------------------


def test_http_stands_in_when_no_iperf3_server_answers():
    upload_cap = 8_000_000  # half the test's cap each way: more than the download's size

    async def scenario() -> CapacityReading:
        server = SpeedtestServer(size=DOWNLOAD_BYTES)
        host, port = await server.start(HOST, 0)
        endpoint = Endpoint(
            iperf3=(HOST, free_tcp_port()),  # nothing listens there
            download_url=f"http://{host}:{port}/known.bin",
            upload_url=f"http://{host}:{port}/upload",
        )
        try:
            return await measure(endpoint, duration=3, byte_cap=2 * upload_cap)
        finally:
            await server.stop()

    reading = asyncio.run(scenario())
    assert (reading.method, reading.error) == ("http", "")
    # the whole known size down, the whole capped body up (answered 200 by the server)
    assert reading.bytes == DOWNLOAD_BYTES + upload_cap
    assert reading.download_bps and reading.download_bps > 1e8  # loopback: fast
    assert reading.upload_bps and reading.upload_bps > 1e8


def test_the_shipped_server_unit_serves_a_test():
    """deploy/systemd/erozgar-iperf3.service's command line, run as systemd would (systemd is
    not PID 1 here), serves the agent's test."""
    require("iperf3")
    port = free_tcp_port()
    unit = DEPLOY / "systemd" / "erozgar-iperf3.service"
    argv = unit_command(unit, {"EROZGAR_IPERF3_PORT": str(port)}, {})
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        reading = asyncio.run(measure(Endpoint(iperf3=(HOST, port)), duration=2, byte_cap=0))
    finally:
        stop(server)
    assert (reading.method, reading.error) == ("iperf3", "")
    assert reading.download_bps and reading.upload_bps


def test_iperf3_authentication_takes_the_password_from_the_environment(tmp_path: Path):
    """A server with --authorized-users-path: the right password (from ${ENV} in the config)
    is let in, a wrong one is refused in one line, and neither is ever printed."""
    require("openssl")
    key, public = tmp_path / "private.pem", tmp_path / "public.pem"
    for command in (
        ["genrsa", "-traditional", "-out", str(key), "2048"],
        ["rsa", "-in", str(key), "-outform", "PEM", "-pubout", "-out", str(public)],
    ):
        subprocess.run(["openssl", *command], check=True, capture_output=True)  # fmt: skip
    users = tmp_path / "users.csv"  # iperf3's format: user,sha256("{user}password")
    users.write_text(f"erozgar,{hashlib.sha256(b'{erozgar}right-password').hexdigest()}\n")
    server, port = iperf3_server(
        "--rsa-private-key-path", str(key), "--authorized-users-path", str(users)
    )
    link = {
        "name": "ptcl", "targets": [{"name": "lo", "address": HOST, "tcp_port": port}],
        "capacity_test": {"iperf3": f"{HOST}:{port}", "duration": 2, "username": "erozgar",
                          "password": "${IPERF3_TEST_PASSWORD}",
                          "rsa_public_key_path": str(public)},
    }  # fmt: skip
    config = write_config(tmp_path / "c.yml", link)
    try:
        right = speedtest(config, env={"IPERF3_TEST_PASSWORD": "right-password"})
        wrong = speedtest(config, env={"IPERF3_TEST_PASSWORD": "wrong-password"})
    finally:
        stop(server)
    assert right.returncode == 0, right.stdout + right.stderr
    assert right.stdout.endswith("MB by iperf3: PASS\n")
    assert (wrong.returncode, wrong.stdout) == (1, "link ptcl: test authorization failed (FAIL)\n")
    for ran, password in ((right, "right-password"), (wrong, "wrong-password")):
        assert password not in ran.stdout + ran.stderr


def test_a_dead_endpoint_is_one_line_naming_the_link(tmp_path: Path):
    require("iperf3")
    link = {
        "name": "nayatel", "targets": [{"name": "lo", "address": HOST}],
        "capacity_test": {"iperf3": f"{HOST}:{free_tcp_port()}", "duration": 2},
    }  # fmt: skip
    ran = speedtest(write_config(tmp_path / "c.yml", link))
    assert ran.returncode == 1
    assert ran.stdout == ("link nayatel: unable to connect to server: Connection refused (FAIL)\n")
    assert "Traceback" not in ran.stderr


def test_a_silent_http_server_is_one_line_too():
    async def scenario() -> CapacityReading:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()  # reads the request, never answers

        server = await asyncio.start_server(silent, HOST, 0)
        port = server.sockets[0].getsockname()[1]
        try:
            url = f"http://{HOST}:{port}/x.bin"
            return await measure(Endpoint(download_url=url), duration=2, byte_cap=10**6)
        finally:
            server.close()

    reading = asyncio.run(scenario())
    assert reading.error.startswith("download: http://127.0.0.1:")
    assert reading.error.endswith("/x.bin: no answer within 7 s; upload: no upload_url configured")


def test_check_says_whether_the_endpoint_answers(loopback_iperf3: int, tmp_path: Path):
    dead = free_tcp_port()
    links = [
        {"name": "ptcl", "targets": [{"name": "lo", "address": HOST, "tcp_port": dead}],
         "capacity_test": {"iperf3": f"{HOST}:{loopback_iperf3}"}},
        {"name": "zong", "targets": [{"name": "lo", "address": HOST, "tcp_port": dead}],
         "capacity_test": {"iperf3": f"{HOST}:{dead}",
                           "download_url": f"http://{HOST}:{dead}/10MB.bin"}},
    ]  # fmt: skip
    config = tmp_path / "c.yml"
    config.write_text(json.dumps({"site": {"id": "T"}, "listen": f"{HOST}:{dead}", "links": links}))
    agent = str(Path(sys.executable).parent / "erozgar-agent")
    ran = subprocess.run([agent, "check", "--json", "--config", str(config)],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    steps = {
        d["name"]: d["checks"][-1] for d in json.loads(ran.stdout)["devices"] if d["kind"] == "link"
    }
    assert steps["ptcl"] == {
        "name": "capacity endpoint", "status": "PASS",
        "detail": f"iperf3 server {HOST}:{loopback_iperf3} answers", "hint": "",
    }  # fmt: skip
    assert steps["zong"] == {
        "name": "capacity endpoint", "status": "WARN",
        "detail": f"iperf3 server {HOST}:{dead}: connection refused; tests will use HTTP",
        "hint": "start it, or fix iperf3:",
    }  # fmt: skip


def test_speedtest_names_the_links_it_can_test(tmp_path: Path):
    link = {"name": "ptcl", "targets": [{"name": "lo", "address": HOST}],
            "capacity_test": {"iperf3": HOST}}  # fmt: skip
    agent = str(Path(sys.executable).parent / "erozgar-agent")
    config = write_config(tmp_path / "c.yml", link)
    ran = subprocess.run([agent, "speedtest", "--config", str(config), "--link", "zong"],
                         capture_output=True, text=True, timeout=30)  # fmt: skip
    assert ran.returncode == 2
    assert ran.stderr == (
        f"{config}: link 'zong' has a capacity_test: block (links with one: ptcl)\n"
    )


def _window_now() -> str:
    """A local-time window of an hour that began 31 minutes ago: past the latest start the
    fleet spread gives a single run (half the window)."""
    now = datetime.datetime.now()
    start = now - datetime.timedelta(minutes=31)
    return f"{start:%H:%M}-{start + datetime.timedelta(hours=1):%H:%M}"


def _value(text: str, sample: str) -> float | None:
    match = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.MULTILINE)
    return None if match is None else float(match[1])


def test_daemon_tests_in_its_window_and_keeps_the_budget_across_a_restart(
    loopback_iperf3: int, tmp_path: Path
):
    link = {
        "name": "ptcl", "targets": [{"name": "lo", "address": HOST}],
        "capacity_test": {"iperf3": f"{HOST}:{loopback_iperf3}", "duration": 2,
                          "window": _window_now(), "runs_per_day": 1,
                          "capacity_down_mbps": 100, "capacity_up_mbps": 20},
    }  # fmt: skip
    config = {"site": {"id": "T"}, "state_dir": str(tmp_path / "state"), "links": [link]}
    tests = 'erozgar_capacity_tests_total{link="ptcl",method="iperf3",result="pass"}'
    with agent_process(config, tmp_path, devices=0) as port:
        deadline = time.monotonic() + 25
        while time.monotonic() < deadline:
            text = http_get(f"http://127.0.0.1:{port}/metrics").decode()
            if _value(text, tests):
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"no capacity test in 25 s: {(tmp_path / 'agent.log').read_text()}")
    assert _value(text, tests) == 1
    assert (_value(text, 'erozgar_capacity_download_bytes_per_second{link="ptcl"}') or 0) > 1e8
    ratio = _value(text, 'erozgar_capacity_contract_ratio{direction="upload",link="ptcl"}')
    assert ratio is not None and ratio > 1  # loopback is faster than any contract
    moved = _value(text, 'erozgar_capacity_test_bytes_total{link="ptcl"}')
    assert moved and moved > 1e8
    # restarted: the counters come back, and the day's one run is done, so no second test
    log, waits = tmp_path / "agent.log", "capacity test waits: 1 of 1 runs done today"
    with agent_process(config, tmp_path, devices=0) as port:
        deadline = time.monotonic() + 10  # the first tick comes within 2 s
        while waits not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        again = http_get(f"http://127.0.0.1:{port}/metrics").decode()
    assert waits in log.read_text()
    assert _value(again, tests) == 1
    assert _value(again, 'erozgar_capacity_test_bytes_total{link="ptcl"}') == moved


@pytest.mark.parametrize("iperf3", [True, False], ids=["iperf3", "http"])
def test_the_demo_shows_a_capacity_test(iperf3: bool, tmp_path: Path):
    """`erozgar-agent demo` tests its WAN link at once: by iperf3, or by HTTP without it."""
    agent = str(Path(sys.executable).parent / "erozgar-agent")
    env = None
    if iperf3:
        require("iperf3")
    else:  # a PATH without iperf3: the demo and the test fall back to HTTP
        bare = tmp_path / "bin"
        bare.mkdir()
        env = {"PATH": str(bare), "PYTHONPATH": ":".join(sys.path)}
    port = free_tcp_port()
    demo = subprocess.Popen(
        [agent, "demo", "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    method = "iperf3" if iperf3 else "http"
    tests = f'erozgar_capacity_tests_total{{link="ptcl",method="{method}",result="pass"}}'
    try:
        deadline, text = time.monotonic() + 30, ""
        while time.monotonic() < deadline and not _value(text, tests):
            time.sleep(0.5)
            with contextlib.suppress(OSError):
                text = http_get(f"http://127.0.0.1:{port}/metrics").decode()
    finally:
        demo.send_signal(signal.SIGINT)
        out, err = demo.communicate(timeout=30)
    assert _value(text, tests) == 1, err[-3000:]
    assert "the link is capacity-tested every hour" in out
    assert f"({method if iperf3 else 'HTTP'} on 127.0.0.1)" in out
    assert "Traceback" not in err
    assert (_value(text, 'erozgar_capacity_upload_bytes_per_second{link="ptcl"}') or 0) > 0
