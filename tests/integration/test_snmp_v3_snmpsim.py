"""SNMPv3 against snmpsim (pysnmp's agent side, a second USM implementation beside net-snmp):
every auth and priv protocol pair it offers that the agent's config accepts, read from the
cisco-c3560 recording as the v3 context, must give the same interfaces as v2c; wrong
credentials are named from snmpsim's reports."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from dataclasses import replace

import pytest

from agent.config import parse_config
from agent.snmp_plan import snmp_collector
from collectors.readings import InterfaceSample, PollError, SnmpReading
from collectors.snmp.client import SnmpSessions
from tests.integration.conftest import serve_recordings, snmpsim_data
from tests.snmp_replay import Recording, recording_path

pytestmark = pytest.mark.integration

RECORDING = "network/switch/cisco-c3560"
CONTEXT = "cisco-c3560"
# our config's names -> snmpsim's (AES192/AES256: the Reeder key extension, as net-snmp's;
# snmpsim's AES192BLMT/AES256BLMT and 3DES have no counterpart in the config)
AUTH = {"MD5": "MD5", "SHA": "SHA", "SHA-224": "SHA224", "SHA-256": "SHA256",
        "SHA-384": "SHA384", "SHA-512": "SHA512"}  # fmt: skip
PRIV = {"DES": "DES", "AES": "AES", "AES-192": "AES192", "AES-256": "AES256"}
Pair = tuple[str | None, str | None]
PAIRS: list[Pair] = [
    *itertools.product(AUTH, PRIV),
    *((auth, None) for auth in AUTH),
    (None, None),
]


def user_name(pair: Pair) -> str:
    auth, priv = pair
    return f"{auth or 'noauth'}-{priv or 'nopriv'}".lower()


def keys(pair: Pair) -> dict[str, str]:
    auth, priv = pair
    found = {"user": user_name(pair)}
    if auth:
        found |= {"auth_protocol": auth, "auth_password": f"auth-{user_name(pair)}"}
    if priv:
        found |= {"priv_protocol": priv, "priv_password": f"priv-{user_name(pair)}"}
    return found


def snmpsim_options(pair: Pair) -> list[str]:
    auth, priv = pair
    found = keys(pair)
    options = [f"--v3-user={found['user']}"]
    if auth:
        options += [f"--v3-auth-key={found['auth_password']}", f"--v3-auth-proto={AUTH[auth]}"]
    if priv:
        options += [f"--v3-priv-key={found['priv_password']}", f"--v3-priv-proto={PRIV[priv]}"]
    return options


@pytest.fixture(scope="module")
def snmpsim_v3() -> Iterator[Recording]:
    snmpsim_data()  # skip, or fail in CI, without snmpsim-data
    users = [option for pair in PAIRS for option in snmpsim_options(pair)]
    with serve_recordings(
        [recording_path(RECORDING)], lambda served: [r.peer for r in served.values()], 120,
        v3_users=users,
    ) as served:  # fmt: skip
        yield served[CONTEXT]


def poll(recording: Recording, **settings: str) -> SnmpReading | PollError:
    peer = recording.peer
    device = {"name": "s", "address": f"{peer.host}:{peer.port}", "timeout": 3, "retries": 1}
    config = parse_config({"site": {"id": "t"}, "snmp": [device | settings]})

    async def main() -> SnmpReading | PollError:
        sessions = SnmpSessions()
        try:
            return await snmp_collector(config.snmp[0], sessions).poll()
        except PollError as exc:
            return exc
        finally:
            await sessions.close()

    return asyncio.run(main())


@pytest.fixture(scope="module")
def over_v2c(snmpsim_v3: Recording) -> SnmpReading:
    reading = poll(snmpsim_v3, community=snmpsim_v3.peer.community)
    assert isinstance(reading, SnmpReading), reading
    return reading


def untimed(reading: SnmpReading) -> list[InterfaceSample]:
    return [replace(sample, read_at=0.0) for sample in reading.interfaces]


@pytest.mark.parametrize("pair", PAIRS, ids=user_name)
def test_every_protocol_pair_reads_what_v2c_reads(
    snmpsim_v3: Recording, over_v2c: SnmpReading, pair: Pair
) -> None:
    reading = poll(snmpsim_v3, version="3", context=CONTEXT, **keys(pair))
    assert isinstance(reading, SnmpReading), reading
    assert len(reading.interfaces) == 57
    assert untimed(reading) == untimed(over_v2c)
    assert reading.sys_name == over_v2c.sys_name


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"user": "nobody-here"}, "(unknown user name)"),
        ({"auth_password": "wrong-auth-key"}, "wrong auth key"),
        ({"priv_password": "wrong-priv-key"}, "wrong priv key"),
    ],
)
def test_wrong_credentials_are_named(
    snmpsim_v3: Recording, change: dict[str, str], expected: str
) -> None:
    settings = keys(("SHA-256", "AES")) | change
    outcome = poll(snmpsim_v3, version="3", context=CONTEXT, **settings)
    assert isinstance(outcome, PollError)
    assert outcome.reason == "auth"
    assert expected in str(outcome)
    for secret in (settings["auth_password"], settings["priv_password"]):
        assert secret not in str(outcome)
