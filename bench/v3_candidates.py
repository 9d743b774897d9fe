"""SNMPv3 candidates: CPU-seconds per cached-name poll over SHA/AES-128, in-process.

    /opt/erozgar-venv/bin/python bench/v3_candidates.py [--rounds 20]
        [--ezsnmp-python /tmp/ezvenv/bin/python]

Method. One snmpsim serves the cisco-c3560 recording (snmpsim-data network/switch/cisco-c3560,
57 interfaces) as community `public` and, for SNMPv3, as context `public` of a user with
SHA / AES-128. Each candidate keeps one collector across polls, as the daemon does
(agent/snmp_plan.py): its first poll walks the names (not timed), later polls pass that name
table back in. Per round every candidate polls once, in a rotating order (A/B/C, B/C/A, ...),
and its CPU is time.process_time around the poll in its own process.

- usm: the agent's SNMPv3 transport (collectors/snmp/usm.py over ber.py, hmac and libcrypto.py).
- pysnmp: the same SnmpCollector over pysnmp 7.1 hlapi v3arch (the transport the agent used
  before usm.py, kept here in short: one SnmpEngine, master keys hashed once per user,
  lookupMib=False, values decoded from pyasn1 as it did).
- v2c: the agent's community path (community.py), the reference v3 should approach.
- ezsnmp (optional, a net-snmp binding; install it in its own venv, `python3 -m venv
  /tmp/ezvenv && /tmp/ezvenv/bin/pip install ezsnmp`): a child process in that venv replays the
  very requests the usm candidate's cached poll sent (same GETs, same GETBULKs with the same
  OIDs and max-repetitions 25) through one ezsnmp Session and reads every result's oid, type
  and value. It builds no reading, so its figure is a lower bound for a collector over it.

snmpsim is slow (Python) and shares the box: only CPU of the polling process counts, wall time
is not reported. Ratios are of medians.
"""

from __future__ import annotations

import argparse
import asyncio
import bz2
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchlib import free_port, spread, stop
from pyasn1.type import univ
from pysnmp.entity import config as engine_config
from pysnmp.hlapi.v3arch.asyncio import (
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    UsmUserData,
    bulk_cmd,
    get_cmd,
)
from pysnmp.proto import rfc1902, rfc1905
from snmp_vs_exporter import recording_source

from collectors.readings import InterfaceNames, PollError
from collectors.snmp.client import SnmpClient, SnmpSessions, UsmAuth
from collectors.snmp.collector import SnmpCollector
from collectors.snmp.usm import EngineClocks, UsmTransport
from collectors.snmp.values import END_OF_MIB_VIEW, Counter64, Oid, Oidt, VarBind

HOST = "127.0.0.1"
RECORDING = "network/switch/cisco-c3560"
USER, AUTH_KEY, PRIV_KEY = "bench", "bench-auth-key", "bench-priv-key"


@contextmanager
def snmpsim(workdir: Path) -> Iterator[int]:
    """snmpsim serving the recording as community and v3 context `public`; yields its port."""
    data, cache = workdir / "data", workdir / "cache"
    data.mkdir(mode=0o755, parents=True)
    cache.mkdir(mode=0o777)
    cache.chmod(0o777)
    target = data / "public.snmprec"
    target.write_bytes(bz2.decompress(recording_source(RECORDING).read_bytes()))
    target.chmod(0o644)
    binary = shutil.which("snmpsim-command-responder", path=str(Path(sys.executable).parent))
    if binary is None:
        sys.exit("snmpsim-command-responder not found next to this Python")
    port = free_port(socket.SOCK_DGRAM)
    process = subprocess.Popen(
        [binary, f"--cache-dir={cache}", "--process-user=nobody", "--process-group=nogroup",
         "--v3-engine-id=auto", f"--data-dir={data}", f"--v3-user={USER}",
         f"--v3-auth-key={AUTH_KEY}", "--v3-auth-proto=SHA", f"--v3-priv-key={PRIV_KEY}",
         "--v3-priv-proto=AES", f"--agent-udpv4-endpoint={HOST}:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield port
    finally:
        stop(process)


def usm_auth() -> UsmAuth:
    return UsmAuth(USER, "SHA", AUTH_KEY, "AES", PRIV_KEY, context_name="public")


# --- pysnmp, as the agent used it before usm.py ------------------------------------------


def pyasn1_value(value: object) -> object:
    if isinstance(value, rfc1905.EndOfMibView):
        return END_OF_MIB_VIEW
    if isinstance(value, rfc1905.NoSuchObject | rfc1905.NoSuchInstance | univ.Null):
        return None
    if isinstance(value, rfc1902.IpAddress):
        return ".".join(str(octet) for octet in value.asOctets())
    if isinstance(value, univ.OctetString):
        raw = value.asOctets()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw
    if isinstance(value, rfc1902.Counter64):
        return Counter64(value)
    if isinstance(value, univ.Integer):
        return int(value)
    if isinstance(value, univ.ObjectIdentifier):
        return Oid(value.prettyPrint())
    return None


class PysnmpTransport:
    """SnmpClient's Transport over pysnmp hlapi; pysnmp discovers the engine by itself."""

    def __init__(self, engine: SnmpEngine, user: UsmUserData, target: UdpTransportTarget) -> None:
        self._engine, self._user, self._target = engine, user, target
        self._context = ContextData(contextName=b"public")

    async def discover_engine_id(self) -> bytes:
        return b"pysnmp"

    def packets_sent(self) -> int:
        return 0

    def close(self) -> None:
        pass

    async def get(self, oids: Sequence[Oidt]) -> list[VarBind]:
        return await self._request(get_cmd, oids)

    async def bulk(self, oids: Sequence[Oidt], max_repetitions: int) -> list[VarBind]:
        return await self._request(bulk_cmd, oids, 0, max_repetitions)

    async def _request(
        self, command: Callable[..., Awaitable[Any]], oids: Sequence[Oidt], *head: int
    ) -> list[VarBind]:
        request = [ObjectType(ObjectIdentity(oid)) for oid in oids]
        indication, status, _, varbinds = await command(
            self._engine, self._user, self._target, self._context, *head, *request,
            lookupMib=False,
        )  # fmt: skip
        if indication or status:
            raise PollError("protocol", f"pysnmp: {indication or status}")
        return [(tuple(oid), pyasn1_value(value)) for oid, value in varbinds]  # type: ignore[misc]


class PysnmpSessions(SnmpSessions):
    def __init__(self, engine: SnmpEngine, target: UdpTransportTarget) -> None:
        super().__init__()
        sha, aes = engine_config.USM_AUTH_HMAC96_SHA, engine_config.USM_PRIV_CFB128_AES
        self._user = UsmUserData(  # master keys hashed once, as the agent's v3.py did
            USER,
            authKey=bytes(engine_config.AUTH_SERVICES[sha].hash_passphrase(AUTH_KEY.encode())),
            authProtocol=sha,
            authKeyType=engine_config.USM_KEY_TYPE_MASTER,
            privKey=bytes(engine_config.PRIV_SERVICES[aes].hash_passphrase(sha, PRIV_KEY.encode())),
            privProtocol=aes,
            privKeyType=engine_config.USM_KEY_TYPE_MASTER,
        )
        self._engine, self._target = engine, target

    async def client(self, host: str, port: int, auth: Any, **_: Any) -> SnmpClient:
        return SnmpClient(PysnmpTransport(self._engine, self._user, self._target))


# --- recording the usm candidate's requests, for ezsnmp ------------------------------------


class Recorder:
    """A Transport that passes through and notes each request (for the ezsnmp replay)."""

    def __init__(self, inner: Any, calls: list[list[Any]]) -> None:
        self._inner, self._calls = inner, calls

    async def discover_engine_id(self) -> bytes:
        return bytes(await self._inner.discover_engine_id())

    def packets_sent(self) -> int:
        return int(self._inner.packets_sent())

    def close(self) -> None:
        self._inner.close()

    async def get(self, oids: Sequence[Oidt]) -> list[VarBind]:
        self._calls.append(["get", [".".join(map(str, o)) for o in oids]])
        return list(await self._inner.get(oids))

    async def bulk(self, oids: Sequence[Oidt], max_repetitions: int) -> list[VarBind]:
        self._calls.append(["bulk", [".".join(map(str, o)) for o in oids], max_repetitions])
        return list(await self._inner.bulk(oids, max_repetitions))


class RecordingSessions(SnmpSessions):
    """Clients over usm.py, as SnmpSessions gives them, that note their requests."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[Any]] = []
        self.clocks: EngineClocks = {}

    async def client(
        self, host: str, port: int, auth: Any, *, timeout: float = 2.0, retries: int = 1
    ) -> SnmpClient:
        transport = UsmTransport(
            host, port, auth, timeout=timeout, retries=retries, clocks=self.clocks
        )
        return SnmpClient(Recorder(transport, self.calls))


EZSNMP_REPLAY = r"""
import json, sys, time
from ezsnmp import Session
spec = json.loads(sys.argv[1])
session = Session(
    hostname=spec["host"], port_number=spec["port"], version=3, security_level="authPriv",
    security_username=spec["user"], auth_protocol="SHA", auth_passphrase=spec["auth"],
    privacy_protocol="AES", privacy_passphrase=spec["priv"], context="public",
    print_oids_numerically=True, timeout=5, retries=1, set_max_repeaters_to_num=25,
)
def replay():
    rows = 0
    for call in spec["calls"]:
        results = session.get(call[1]) if call[0] == "get" else session.bulk_get(call[1])
        rows += len([(r.oid, r.type, r.value) for r in results])
    return rows
replay()  # warm up: engine discovery
for line in sys.stdin:
    started = time.process_time()
    rows = replay()
    print(json.dumps([time.process_time() - started, rows]), flush=True)
"""


class Ezsnmp:
    """The replaying child process; one replay per `poll()`."""

    def __init__(self, python: str, port: int, calls: list[list[Any]]) -> None:
        spec = {"host": HOST, "port": port, "user": USER, "auth": AUTH_KEY, "priv": PRIV_KEY,
                "calls": calls}  # fmt: skip
        self.process = subprocess.Popen(
            [python, "-c", EZSNMP_REPLAY, json.dumps(spec)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip

    def poll(self) -> tuple[float, int]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            sys.exit(f"the ezsnmp replay ended (exit {self.process.wait()})")
        cpu, rows = json.loads(line)
        return float(cpu), int(rows)

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=10)


class Candidate:
    """One collector kept across polls, names cached after the first."""

    def __init__(self, collector: SnmpCollector) -> None:
        self.collector = collector
        self.known: InterfaceNames | None = None
        self.cpu: list[float] = []
        self.interfaces = 0

    async def poll(self, timed: bool = True) -> None:
        started = time.process_time()
        reading = await self.collector.poll(self.known)
        if timed:
            self.cpu.append(time.process_time() - started)
        self.known, self.interfaces = reading.names, len(reading.interfaces)


async def measure(port: int, rounds: int, ezsnmp_python: str | None) -> dict[str, Any]:
    engine = SnmpEngine()
    target = await UdpTransportTarget.create((HOST, port), timeout=5, retries=1)
    recording = RecordingSessions()
    candidates = {
        "usm": Candidate(SnmpCollector(HOST, port, version="3", usm=usm_auth(), timeout=5,
                                       sessions=recording)),
        "pysnmp": Candidate(SnmpCollector(HOST, port, version="3", usm=usm_auth(), timeout=5,
                                          sessions=PysnmpSessions(engine, target))),
        "v2c": Candidate(SnmpCollector(HOST, port, "public", timeout=5, sessions=SnmpSessions())),
    }  # fmt: skip
    for candidate in candidates.values():  # names walked; snmpsim indexes on the first
        await candidate.poll(timed=False)
    recording.calls.clear()
    await candidates["usm"].poll(timed=False)  # what one cached poll asks
    calls = list(recording.calls)
    ezsnmp = Ezsnmp(ezsnmp_python, port, calls) if ezsnmp_python else None
    ez_cpu: list[float] = []
    ez_rows = 0
    names = [*candidates, *(["ezsnmp"] if ezsnmp else [])]
    try:
        for number in range(rounds):
            order = names[number % len(names) :] + names[: number % len(names)]
            for name in order:
                if name == "ezsnmp":
                    assert ezsnmp is not None
                    cpu, ez_rows = ezsnmp.poll()
                    ez_cpu.append(cpu)
                else:
                    await candidates[name].poll()
    finally:
        if ezsnmp is not None:
            ezsnmp.close()
        engine.close_dispatcher()
    figures = {name: spread(c.cpu) for name, c in candidates.items()}
    if ez_cpu:
        figures["ezsnmp"] = spread(ez_cpu)
    return {
        "rounds": rounds,
        "requests_per_cached_poll": len(calls),
        "interfaces": {name: c.interfaces for name, c in candidates.items()},
        "ezsnmp_varbinds": ez_rows,
        "cpu_seconds": figures,
    }


def report(result: dict[str, Any]) -> list[str]:
    cpu = result["cpu_seconds"]
    usm = cpu["usm"]["median"]
    lines = [
        f"cisco-c3560 (57 interfaces), SNMPv3 SHA/AES-128 on snmpsim, {result['rounds']} rounds "
        f"in rotating order; a cached-name poll is {result['requests_per_cached_poll']} "
        f"requests; interfaces read: {result['interfaces']}",
        f"  {'candidate':<44} {'CPU-s median':>12} {'IQR':>15} {'x usm':>6}",
    ]
    labels = {
        "usm": "usm.py (our USM over ber.py, hmac, libcrypto)",
        "pysnmp": "pysnmp 7.1 hlapi (the v3 path before)",
        "v2c": "v2c, community.py (reference)",
        "ezsnmp": "ezsnmp 2.5 (net-snmp), requests replayed",
    }
    for name, figures in cpu.items():
        lines.append(
            f"  {labels[name]:<44} {figures['median']:>12.4f} "
            f"{figures['q1']:.4f}-{figures['q3']:.4f} {figures['median'] / usm:>6.2f}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--ezsnmp-python", help="a Python with ezsnmp installed")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="erozgar-v3-bench-"))
    root.chmod(0o755)  # snmpsim reads its recording as nobody
    try:
        with snmpsim(root) as port:
            deadline = time.monotonic() + 120
            while True:  # snmpsim indexes the recording first
                try:
                    result = asyncio.run(measure(port, args.rounds, args.ezsnmp_python))
                    break
                except PollError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(1)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("\n".join(report(result)))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
