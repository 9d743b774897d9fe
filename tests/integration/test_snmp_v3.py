"""SNMPv3 against net-snmp snmpd: every auth/priv protocol, precise auth failures, recovery
after an agent restart, and two agents with one user name but different keys on one engine."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.config import parse_config
from agent.snmp_plan import snmp_collector
from collectors.readings import PollError, SnmpReading
from collectors.snmp.client import SnmpSessions
from tests.integration.conftest import (
    HOST,
    SnmpPeer,
    free_udp_port,
    require,
    stop,
    wait_until_answering,
)

pytestmark = pytest.mark.integration

User = tuple[str, str | None, str | None, str | None, str | None]
# (user, auth protocol, auth password, priv protocol, priv password), spelt as both snmpd's
# createUser and our config spell them. AES-192/256 with SHA-224 and up: no key extension,
# where net-snmp (Blumenthal's) and the config (Reeder's, as Cisco) would differ (usm.py).
USERS: list[User] = [
    ("md5des", "MD5", "authpass-md5", "DES", "privpass-des"),
    ("shaaes", "SHA", "authpass-sha", "AES", "privpass-aes"),
    ("sha224aes192", "SHA-224", "authpass-224", "AES-192", "privpass-192"),
    ("v3user", "SHA-256", "authpass123", "AES", "privpass123"),
    ("sha384aes256", "SHA-384", "authpass-384", "AES-256", "privpass-256"),
    ("sha512aes256", "SHA-512", "authpass-512", "AES-256", "privpass-512"),
    ("authonly", "SHA-256", "authpass-only", None, None),
    ("noauth", None, None, None, None),
]
COMMUNITY = "v3-test-ready"  # only to see that snmpd answers


class Snmpd:
    """One net-snmp snmpd on loopback that a test may restart with the same persistent dir."""

    def __init__(
        self, root: Path, users: list[User], engine_id: str | None, *, keep_boots: bool = False
    ) -> None:
        self.binary = require("snmpd")
        self.root = root
        self.peer = SnmpPeer(HOST, free_udp_port(), COMMUNITY)
        lines = [
            f"agentAddress udp:{HOST}:{self.peer.port}",
            f"rocommunity {COMMUNITY} {HOST}",
        ]
        if engine_id is not None:
            lines.append(f"engineID {engine_id}")
        for user, auth, auth_key, priv, priv_key in users:
            create, level = f"createUser {user}", "noauth"
            if auth:
                create, level = f'{create} {auth} "{auth_key}"', "auth"
            if priv:
                create, level = f'{create} {priv} "{priv_key}"', "priv"
            lines += [create, f"rouser {user} {level}"]
        self.config = root / "snmpd.conf"
        self.config.write_text("\n".join(lines) + "\n")
        self.persistent = root / "persist"
        self.persistent.mkdir()
        # -C reads no persistent state, so boots start at 1 again; read it back to count them
        self.configs = f"{self.config},{self.persistent / 'snmpd.conf'}" if keep_boots else ""
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.root / "snmpd.log"
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [self.binary, "-f", "-Lo", "-C", "-c", self.configs or str(self.config),
                 f"--persistentDir={self.persistent}", "-p", str(self.root / "snmpd.pid")],
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_until_answering(self.process, [self.peer], 15, log)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None


@pytest.fixture(scope="module")
def snmpd_v3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Snmpd]:
    daemon = Snmpd(tmp_path_factory.mktemp("snmpd-v3"), USERS, "erozgar-v3-a")
    daemon.start()
    yield daemon
    daemon.stop()


def device(peer: SnmpPeer, name: str = "r", **keys: str | None) -> dict[str, object]:
    return {
        "name": name,
        "address": f"{peer.host}:{peer.port}",
        "version": "3",
        "timeout": 1,
        "retries": 0,
        **{k: v for k, v in keys.items() if v is not None},
    }


def user_keys(user: User) -> dict[str, str | None]:
    name, auth, auth_key, priv, priv_key = user
    return {
        "user": name,
        "auth_protocol": auth,
        "auth_password": auth_key,
        "priv_protocol": priv,
        "priv_password": priv_key,
    }


def poll_all(
    devices: list[dict[str, object]], rounds: int = 1
) -> list[list[SnmpReading | PollError]]:
    """Poll every device `rounds` times, concurrently, through one shared engine (as the
    daemon does); each outcome is a reading or the PollError."""
    config = parse_config({"site": {"id": "t"}, "snmp": devices})

    async def main() -> list[list[SnmpReading | PollError]]:
        sessions = SnmpSessions()
        collectors = [snmp_collector(d, sessions) for d in config.snmp]

        async def one(collector: object) -> SnmpReading | PollError:
            try:
                return await collector.poll()  # type: ignore[attr-defined]
            except PollError as exc:
                return exc

        try:
            return [
                list(await asyncio.gather(*(one(c) for c in collectors))) for _ in range(rounds)
            ]
        finally:
            await sessions.close()

    return asyncio.run(main())


@pytest.mark.parametrize("user", USERS, ids=[u[0] for u in USERS])
def test_every_security_level_and_protocol_reads_the_device(snmpd_v3: Snmpd, user: User) -> None:
    ((reading,),) = poll_all([device(snmpd_v3.peer, **user_keys(user))])
    assert isinstance(reading, SnmpReading), reading
    assert reading.sys_uptime_ticks > 0
    assert any(i.name == "lo" for i in reading.interfaces)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"user": "nobody-here"}, "unknown user name"),
        ({"auth_password": "wrong-auth-key"}, "wrong auth key"),
        ({"priv_password": "wrong-priv-key"}, "wrong priv key"),
    ],
)
def test_wrong_user_or_key_is_reason_auth_naming_which(
    snmpd_v3: Snmpd, change: dict[str, str], expected: str
) -> None:
    keys = {**user_keys(USERS[3]), **change}
    ((outcome,),) = poll_all([device(snmpd_v3.peer, **keys)])
    assert isinstance(outcome, PollError)
    assert outcome.reason == "auth"
    message = str(outcome)
    assert expected in message
    for secret in ("wrong-auth-key", "wrong-priv-key", "authpass123", "privpass123"):
        assert secret not in message


@pytest.mark.parametrize(
    "engine_id",
    # a fixed engine ID: boots/time start over; none: this snmpd (-C, createUser in its
    # config) comes back with a new engine ID, as a device that lost its settings would
    ["erozgar-v3-restart", None],
    ids=["same-engine-id", "new-engine-id"],
)
def test_recovers_by_itself_after_snmpd_restarts(tmp_path: Path, engine_id: str | None) -> None:
    daemon = Snmpd(tmp_path, [USERS[3]], engine_id)
    daemon.start()
    config = parse_config(
        {"site": {"id": "t"}, "snmp": [device(daemon.peer, **user_keys(USERS[3]))]}
    )

    async def main() -> list[SnmpReading | str]:
        sessions = SnmpSessions()
        collector = snmp_collector(config.snmp[0], sessions)
        outcomes: list[SnmpReading | str] = []
        try:
            outcomes.append(await collector.poll())
            daemon.stop()
            daemon.start()  # same port, same persistent dir: engine boots and time start over
            for _ in range(2):
                try:
                    outcomes.append(await collector.poll())
                except PollError as exc:
                    outcomes.append(exc.reason)
        finally:
            await sessions.close()
            daemon.stop()
        return outcomes

    before, *after = asyncio.run(main())
    assert isinstance(before, SnmpReading)
    assert isinstance(after[-1], SnmpReading), after
    assert [i.name for i in after[-1].interfaces] == [i.name for i in before.interfaces]


@pytest.mark.parametrize(
    ("engine_id", "resent"),
    # boots + 1 (snmpd reads its persistent state back): the notInTimeWindow report carries
    # the new boots and time, and the request goes once more; a new engine ID: its
    # unknownEngineID report makes the collector rediscover it and read again
    [("erozgar-v3-boots", 1), (None, 0)],
    ids=["boots-moved", "new-engine-id"],
)
def test_the_first_poll_after_a_restart_reads_the_device(
    tmp_path: Path, engine_id: str | None, resent: int
) -> None:
    daemon = Snmpd(tmp_path, [USERS[1]], engine_id, keep_boots=engine_id is not None)
    daemon.start()
    config = parse_config(
        {"site": {"id": "t"}, "snmp": [device(daemon.peer, **user_keys(USERS[1]))]}
    )

    async def main() -> tuple[SnmpReading, SnmpReading | PollError]:
        sessions = SnmpSessions()
        collector = snmp_collector(config.snmp[0], sessions)
        try:
            before = await collector.poll()
            daemon.stop()
            daemon.start()
            try:
                return before, await collector.poll()
            except PollError as exc:
                return before, exc
        finally:
            await sessions.close()
            daemon.stop()

    before, after = asyncio.run(main())
    assert isinstance(after, SnmpReading), after
    assert after.retries == resent
    assert [i.name for i in after.interfaces] == [i.name for i in before.interfaces]


def test_same_user_name_with_different_keys_on_two_agents_do_not_clash(
    snmpd_v3: Snmpd, tmp_path: Path
) -> None:
    other_user: User = ("v3user", "SHA-256", "other-auth-key", "AES", "other-priv-key")
    other = Snmpd(tmp_path, [other_user], "erozgar-v3-b")
    other.start()
    try:
        rounds = poll_all(
            [
                device(snmpd_v3.peer, "a", **user_keys(USERS[3])),
                device(other.peer, "b", **user_keys(other_user)),
            ],
            rounds=3,
        )
    finally:
        other.stop()
    for outcomes in rounds:
        assert all(isinstance(o, SnmpReading) for o in outcomes), outcomes


def test_unknown_context_is_a_clean_poll_error(snmpd_v3: Snmpd) -> None:
    ((outcome,),) = poll_all(
        [device(snmpd_v3.peer, context="no-such-context", **user_keys(USERS[3]))]
    )
    assert isinstance(outcome, PollError)
    assert outcome.reason in ("protocol", "auth")
