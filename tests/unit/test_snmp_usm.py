"""The pure parts of SNMPv3 USM (collectors/snmp/usm.py, ber.py's v3 envelope) against published
test vectors, pysnmp's independent key code, and messages net-snmp produced.

tests/fixtures/snmpv3/netsnmp_authpriv.json: net-snmp 5.9.3's snmpget and snmpd exchanging an
authPriv GET of sysName.0 for five users (MD5/DES, SHA/AES, SHA-224/AES-192, SHA-256/AES,
SHA-512/AES-256); how it was captured is in the file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from pyasn1.type.univ import OctetString
from pysnmp.entity import config as engine_config
from pysnmp.proto.secmod.rfc3414 import localkey

from collectors.readings import PollError
from collectors.snmp import ber
from collectors.snmp.client import UsmAuth
from collectors.snmp.usm import (
    LocalKeys,
    local_keys,
    localize_key,
    localize_priv_key,
    password_to_key,
)

FIXTURE = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "snmpv3" / "netsnmp_authpriv.json").read_text()
)
SYS_NAME = (1, 3, 6, 1, 2, 1, 1, 5, 0)
RFC_ENGINE_ID = bytes.fromhex("000000000000000000000002")


@pytest.mark.parametrize(
    ("protocol", "master", "localised"),
    [  # RFC 3414 A.3.1 and A.3.2: "maplesyrup", engine ID 00...02
        ("MD5", "9faf3283884e92834ebc9847d8edd963", "526f5eed9fcce26f8964c2930787d82b"),
        (
            "SHA",
            "9fb5cc0381497b3793528939ff788d5d79145211",
            "6695febc9288e36282235fc7151f128497b38f3f",
        ),
    ],
)
def test_rfc3414_key_localisation_vectors(protocol: str, master: str, localised: str) -> None:
    ku = password_to_key(b"maplesyrup", protocol)
    assert ku.hex() == master
    assert localize_key(ku, RFC_ENGINE_ID, protocol).hex() == localised


HASHES = {"SHA-224": hashlib.sha224, "SHA-256": hashlib.sha256, "SHA-384": hashlib.sha384,
          "SHA-512": hashlib.sha512}  # fmt: skip


@pytest.mark.parametrize("protocol", HASHES)
def test_sha2_keys_agree_with_pysnmp(protocol: str) -> None:
    """RFC 7860 keeps RFC 3414's localisation with SHA-2; pysnmp implements it on its own."""
    theirs = localkey.password_to_key(b"maplesyrup", OctetString(RFC_ENGINE_ID), HASHES[protocol])
    ours = localize_key(password_to_key(b"maplesyrup", protocol), RFC_ENGINE_ID, protocol)
    assert ours == bytes(theirs)


@pytest.mark.parametrize(
    ("auth", "priv", "service"),
    [
        ("MD5", "AES-192", engine_config.USM_PRIV_CFB192_AES),
        ("MD5", "AES-256", engine_config.USM_PRIV_CFB256_AES),
        ("SHA", "AES-256", engine_config.USM_PRIV_CFB256_AES),
        ("SHA-224", "AES-192", engine_config.USM_PRIV_CFB192_AES),
    ],
)
def test_reeder_key_extension_agrees_with_pysnmp(auth: str, priv: str, service: Any) -> None:
    """AES-192/256 keys longer than the hash: extended as draft-reeder 2.1 (net-snmp, Cisco)."""
    auth_service = {"MD5": engine_config.USM_AUTH_HMAC96_MD5,
                    "SHA": engine_config.USM_AUTH_HMAC96_SHA,
                    "SHA-224": engine_config.USM_AUTH_HMAC128_SHA224}[auth]  # fmt: skip
    privacy = engine_config.PRIV_SERVICES[service]
    master = privacy.hash_passphrase(auth_service, b"privpass-reeder")
    theirs = privacy.localize_key(auth_service, master, OctetString(RFC_ENGINE_ID))
    ours = localize_priv_key(password_to_key(b"privpass-reeder", auth), RFC_ENGINE_ID, auth, priv)
    assert ours == bytes(theirs)
    assert len(ours) == {"AES-192": 24, "AES-256": 32}[priv]


HMAC_LENGTH = {"MD5": 12, "SHA": 12, "SHA-224": 16, "SHA-256": 24, "SHA-384": 32, "SHA-512": 48}


def fixture_keys(user: dict[str, str]) -> LocalKeys:
    auth = UsmAuth(user["user"], user["auth_protocol"], user["auth_password"],
                   user["priv_protocol"], user["priv_password"])  # fmt: skip
    keys = local_keys(auth, bytes.fromhex(FIXTURE["engine_id"]))
    assert keys is not None
    return keys


def open_message(datagram: bytes, keys: LocalKeys) -> tuple[ber.V3Message, ber.Pdu]:
    """Check the HMAC, decrypt and decode, as usm.py does with an answer."""
    message = ber.decode_v3_message(datagram)
    size = len(message.usm.auth)
    zeroed = datagram[: message.auth_at] + bytes(size) + datagram[message.auth_at + size :]
    assert keys.digest(zeroed) == message.usm.auth
    usm = message.usm
    plaintext = keys.decrypt(message.data, usm.priv, usm.boots, usm.time)
    _, _, pdu = ber.decode_scoped_pdu(plaintext)
    return message, pdu


@pytest.mark.parametrize("user", FIXTURE["users"], ids=lambda u: u["user"])
def test_reads_and_verifies_what_net_snmp_sent(user: dict[str, str]) -> None:
    keys = fixture_keys(user)
    request, get = open_message(bytes.fromhex(user["request"]), keys)
    response, answer = open_message(bytes.fromhex(user["response"]), keys)
    assert request.flags & 7 == ber.AUTH_FLAG | ber.PRIV_FLAG | ber.REPORTABLE_FLAG
    assert response.usm.user == user["user"].encode()
    assert response.usm.engine_id.hex() == FIXTURE["engine_id"]
    assert (get.pdu_type, get.varbinds) == (ber.GET, [(SYS_NAME, None)])
    assert answer.pdu_type == ber.RESPONSE
    assert answer.request_id == get.request_id
    assert answer.varbinds == [(SYS_NAME, "erozgar-fixture-switch")]


@pytest.mark.parametrize("user", FIXTURE["users"], ids=lambda u: u["user"])
def test_a_wrong_key_does_not_verify_or_decrypt(user: dict[str, str]) -> None:
    wrong = fixture_keys({**user, "auth_password": "other-auth", "priv_password": "other-priv"})
    datagram = bytes.fromhex(user["response"])
    message = ber.decode_v3_message(datagram)
    size = len(message.usm.auth)
    zeroed = datagram[: message.auth_at] + bytes(size) + datagram[message.auth_at + size :]
    assert wrong.digest(zeroed) != message.usm.auth
    usm = message.usm
    with pytest.raises(ber.BerError):
        ber.decode_scoped_pdu(wrong.decrypt(message.data, usm.priv, usm.boots, usm.time))


@pytest.mark.parametrize("user", FIXTURE["users"], ids=lambda u: u["user"])
def test_our_message_round_trips_and_carries_its_hmac_where_it_says(user: dict[str, str]) -> None:
    keys = fixture_keys(user)
    engine_id = bytes.fromhex(FIXTURE["engine_id"])
    scoped = ber.encode_scoped_pdu(engine_id, b"ctx", ber.encode_pdu(ber.GET, 77, [SYS_NAME]))
    ciphertext, salt = keys.encrypt(scoped, 3, 1234)
    assert ciphertext[: len(scoped)] != scoped
    zeros = bytes(HMAC_LENGTH[user["auth_protocol"]])
    usm = ber.UsmParameters(engine_id, 3, 1234, user["user"].encode(), zeros, salt)
    wire, auth_at = ber.encode_v3_message(42, 65507, 7, usm, ciphertext)
    signed = wire[:auth_at] + keys.digest(wire) + wire[auth_at + len(zeros) :]
    message, pdu = open_message(signed, keys)
    assert (message.msg_id, message.usm.boots, message.usm.time) == (42, 3, 1234)
    assert (pdu.request_id, pdu.varbinds) == (77, [(SYS_NAME, None)])
    if user["priv_protocol"] == "DES":
        assert len(ciphertext) % 8 == 0 and len(salt) == 8


def test_salts_differ_between_messages() -> None:
    keys = fixture_keys(FIXTURE["users"][1])
    assert keys.encrypt(b"x" * 20, 1, 1)[1] != keys.encrypt(b"x" * 20, 1, 1)[1]


def test_keys_are_hashed_once_per_user_and_localised_per_engine() -> None:
    auth = UsmAuth("u", "SHA", "authpass-u", "AES", "privpass-u")
    first = local_keys(auth.for_engine(b"engine-a"), b"engine-a")
    again = local_keys(auth.for_engine(b"engine-a"), b"engine-a")
    other = local_keys(auth.for_engine(b"engine-b"), b"engine-b")
    assert first is again  # cached, shared by every for_engine copy
    assert first is not None and other is not None and first.auth != other.auth
    assert local_keys(UsmAuth("u"), b"engine-a") is None  # noAuthNoPriv


def test_an_empty_password_is_a_config_error() -> None:
    with pytest.raises(PollError, match="must not be empty"):
        password_to_key(b"", "SHA")


@pytest.mark.parametrize(
    "datagram",
    [
        b"",
        bytes.fromhex("300602010102010a"),  # SNMPv2c
        bytes.fromhex("3003020103"),  # v3 with nothing else
    ],
)
def test_malformed_v3_envelopes_are_refused(datagram: bytes) -> None:
    with pytest.raises(ber.BerError):
        ber.decode_v3_message(datagram)


def test_every_truncation_of_a_net_snmp_answer_is_refused() -> None:
    valid = bytes.fromhex(FIXTURE["users"][1]["response"])
    ber.decode_v3_message(valid)
    for cut in range(len(valid)):
        with pytest.raises(ber.BerError):
            ber.decode_v3_message(valid[:cut])
    with pytest.raises(ber.BerError):
        ber.decode_v3_message(valid + b"\x00")
