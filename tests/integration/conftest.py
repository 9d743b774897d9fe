"""Real SNMP peers on loopback for the whole session: net-snmp `snmpd` and `snmpsim`.

Each fixture yields where to reach the peer (`SnmpPeer`); both are stopped at session end.
A missing binary skips the tests locally and fails them in CI (CI=true).
"""

from __future__ import annotations

import bz2
import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import NoReturn

import pytest
from pyasn1.codec.ber import decoder, encoder
from pyasn1.error import PyAsn1Error
from pysnmp.proto import api

from tests.snmp_replay import RECORDINGS, Recording, SnmpPeer, recording_name, recording_path

HOST = "127.0.0.1"
SYS_NAME = (1, 3, 6, 1, 2, 1, 1, 5, 0)
INSTALL_HINTS = {
    "snmpd": "apt-get install -y snmpd",
    "dnsmasq": "apt-get install -y dnsmasq-base",
    "iperf3": "apt-get install -y iperf3 (deploy/bootstrap.sh)",
    "snmpsim-command-responder": "pip install snmpsim==1.2.2 snmpsim-data==1.0.1 "
    "(and apt-get install -y python3-gdbm)",
}


def require(binary: str) -> str:
    """Path of `binary`, next to this Python first (the erozgar-agent under test, not one a
    Debian package put on PATH), else on PATH; skip without it, or fail when CI=true."""
    found = shutil.which(binary, path=str(Path(sys.executable).parent)) or shutil.which(binary)
    if found is None:
        missing(f"{binary} not found: {INSTALL_HINTS.get(binary, 'install it')}")
    return found


def missing(hint: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(hint)
    pytest.skip(hint)  # only outside CI: under CI=true it failed above


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def answers(peer: SnmpPeer, timeout: float = 0.5) -> bool:
    """True when `peer` answers a v2c GET of sysName.0 (no pysnmp engine: a bare datagram)."""
    p = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
    pdu = p.GetRequestPDU()
    p.apiPDU.set_defaults(pdu)
    p.apiPDU.set_varbinds(pdu, [(SYS_NAME, p.null)])
    message = p.Message()
    p.apiMessage.set_defaults(message)
    p.apiMessage.set_community(message, peer.community)
    p.apiMessage.set_pdu(message, pdu)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(encoder.encode(message), (peer.host, peer.port))
            reply, _ = sock.recvfrom(65535)
            decoder.decode(reply, asn1Spec=p.Message())
        except (OSError, PyAsn1Error):
            return False
    return True


def wait_until_answering(
    process: subprocess.Popen[bytes], peers: list[SnmpPeer], deadline_s: float, log: Path
) -> None:
    deadline = time.monotonic() + deadline_s
    pending = list(peers)
    while pending:
        if process.poll() is not None:
            pytest.fail(f"{process.args[0]} exited with {process.returncode}: {log.read_text()}")
        if time.monotonic() > deadline:
            stop(process)
            pytest.fail(
                f"{process.args[0]} did not answer within {deadline_s:g}s: {log.read_text()}"
            )
        pending = [peer for peer in pending if not answers(peer)]


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def snmpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnmpPeer]:
    """net-snmp on 127.0.0.1: community `erozgar-ro`, v3 user `v3user` (SHA-256/AES)."""
    binary = require("snmpd")
    root = tmp_path_factory.mktemp("snmpd")
    peer = SnmpPeer(HOST, free_udp_port(), "erozgar-ro")
    config = root / "snmpd.conf"
    config.write_text(
        f"agentAddress udp:{peer.host}:{peer.port}\n"
        f"rocommunity {peer.community} {peer.host}\n"
        'createUser v3user SHA-256 "authpass123" AES "privpass123"\n'
        "rouser v3user priv\n"
    )
    persistent = root / "persist"  # createUser is consumed into it: fresh per run
    persistent.mkdir()
    log = root / "snmpd.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, "-f", "-Lo", "-C", "-c", str(config), f"--persistentDir={persistent}",
             "-p", str(root / "snmpd.pid")],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    wait_until_answering(process, [peer], 15, log)
    yield peer
    stop(process)


def snmpsim_data() -> Path:
    """The recordings folder of the snmpsim-data package."""
    spec = importlib.util.find_spec("snmpsim_data")
    if spec is None or spec.origin is None:
        missing(f"snmpsim_data not importable: {INSTALL_HINTS['snmpsim-command-responder']}")
    return Path(spec.origin).parent / "data"


@contextlib.contextmanager
def serve_recordings(
    files: Iterable[Path],
    wait_for: Callable[[dict[str, Recording]], list[SnmpPeer]],
    wait_s: float,
    port: int | None = None,
    v3_users: Sequence[str] = (),
) -> Iterator[dict[str, Recording]]:
    """snmpsim serving copies of `files` (.snmprec, or .snmprec.bz2 unpacked), each under its
    file name as community (and as SNMPv3 context), until the block ends; on `port` to stand in
    for a device that restarted (an earlier block's), else on a free one. `v3_users`: the
    `--v3-user=... --v3-auth-key=...` options of its SNMPv3 engine."""
    binary = require("snmpsim-command-responder")
    # snmpsim run as root drops to nobody, who must read the data and write the cache:
    # pytest's own tmp dirs are 0700, so use a world-readable one of our own.
    root = Path(tempfile.mkdtemp(prefix="erozgar-snmpsim-"))
    root.chmod(0o755)
    data, cache = root / "data", root / "cache"
    data.mkdir(mode=0o755)
    cache.mkdir()
    cache.chmod(0o777)
    port = port or free_udp_port()
    recordings: dict[str, Recording] = {}
    for path in files:
        name = recording_name(path)
        target = data / f"{name}.snmprec"
        raw = path.read_bytes()
        target.write_bytes(bz2.decompress(raw) if path.suffix == ".bz2" else raw)
        target.chmod(0o644)
        recordings[name] = Recording(SnmpPeer(HOST, port, name), target)
    log = root / "snmpsim.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, f"--cache-dir={cache}", "--process-user=nobody", "--process-group=nogroup",
             # one engine: its ID, then its data, users and endpoint, in this order
             "--v3-engine-id=auto", f"--data-dir={data}", *v3_users,
             f"--agent-udpv4-endpoint={HOST}:{port}"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_until_answering(process, wait_for(recordings), wait_s, log)
        yield recordings
    finally:
        stop(process)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def snmpsim() -> Iterator[dict[str, Recording]]:
    """snmpsim serving RECORDINGS; keyed (and community) by file name, e.g. "cisco-c3560"."""
    snmpsim_data()  # skip, or fail in CI, without snmpsim-data
    files = [recording_path(relative) for relative in RECORDINGS]
    with serve_recordings(files, lambda served: [r.peer for r in served.values()], 120) as served:
        yield served
