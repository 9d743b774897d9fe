"""collectors/snmp/libcrypto.py: SNMPv3's ciphers through ctypes on the process's own OpenSSL,
against published vectors and the `openssl enc` command line, at the lengths SNMP sends."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from collectors.readings import PollError
from collectors.snmp import libcrypto
from collectors.snmp.usm import LocalKeys

ROOT = Path(__file__).parents[2]


def openssl_enc(cipher: str, key: bytes, iv: bytes, data: bytes) -> bytes:
    """What OpenSSL's own command line makes of `data` (no padding)."""
    return subprocess.run(
        ["openssl", "enc", f"-{cipher}", "-K", key.hex(), "-iv", iv.hex(), "-nopad"],
        input=data, capture_output=True, check=True,
    ).stdout  # fmt: skip


def test_aes128_cfb_nist_sp800_38a_f3_13() -> None:
    key = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
    iv = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
    plaintext = bytes.fromhex(
        "6bc1bee22e409f96e93d7e117393172a" "ae2d8a571e03ac9c9eb76fac45af8e51"
        "30c81c46a35ce411e5fbc1191a0a52ef" "f69f2445df4f9b17ad2b417be66c3710"
    )  # fmt: skip
    ciphertext = bytes.fromhex(
        "3b3fd92eb72dad20333449f8e83cfb4a" "c8a64537a0b3a93fcde3cdad9f1ce58b"
        "26751f67a3cbb140b1808cf187a4f4df" "c04b05357c5d1c0eeac4c66f9ff7f2e6"
    )  # fmt: skip
    assert libcrypto.aes_cfb(key, iv, plaintext, encrypt=True) == ciphertext
    assert libcrypto.aes_cfb(key, iv, ciphertext, encrypt=False) == plaintext


def test_des_cbc_fips81_vector() -> None:
    key, iv = bytes.fromhex("0123456789abcdef"), bytes.fromhex("1234567890abcdef")
    plaintext = b"Now is the time for all "
    ciphertext = bytes.fromhex("e5c7cdde872bf27c43e934008c389c0f683788499a7c05f6")
    assert libcrypto.des_cbc(key, iv, plaintext, encrypt=True) == ciphertext
    assert libcrypto.des_cbc(key, iv, ciphertext, encrypt=False) == plaintext


@pytest.mark.parametrize("key_length", [16, 24, 32])
@pytest.mark.parametrize("length", [1, 15, 17, 1000])
def test_aes_cfb_odd_lengths_match_openssl_and_round_trip(key_length: int, length: int) -> None:
    key, iv = bytes(range(7, 7 + key_length)), bytes(range(100, 116))
    plaintext = bytes(i * 37 % 256 for i in range(length))
    ciphertext = libcrypto.aes_cfb(key, iv, plaintext, encrypt=True)
    assert ciphertext == openssl_enc(f"aes-{key_length * 8}-cfb", key, iv, plaintext)
    assert libcrypto.aes_cfb(key, iv, ciphertext, encrypt=False) == plaintext


@pytest.mark.parametrize("priv", ["DES", "AES", "AES-192", "AES-256"])
@pytest.mark.parametrize("length", [1, 15, 17, 1000])
def test_usm_privacy_round_trips_odd_lengths(priv: str, length: int) -> None:
    key_length = {"DES": 16, "AES": 16, "AES-192": 24, "AES-256": 32}[priv]
    keys = LocalKeys("SHA", bytes(20), priv, bytes(range(1, 1 + key_length)))
    plaintext = bytes(i * 11 % 256 for i in range(length))
    ciphertext, salt = keys.encrypt(plaintext, 3, 12345)
    # one byte encrypts to itself 1 time in 256 (the salt is new each time); 15 never do
    assert length == 1 or ciphertext != plaintext[: len(ciphertext)]
    padded = -length % 8 if priv == "DES" else 0  # RFC 3414 8.1.1.2: DES pads to its block
    assert keys.decrypt(ciphertext, salt, 3, 12345) == plaintext + bytes(padded)


def test_wrong_lengths_are_refused_before_reaching_openssl() -> None:
    with pytest.raises(ValueError, match="16, 24 or 32"):
        libcrypto.aes_cfb(bytes(20), bytes(16), b"x", encrypt=True)
    with pytest.raises(ValueError, match="16-octet IV"):
        libcrypto.aes_cfb(bytes(16), bytes(8), b"x", encrypt=True)
    with pytest.raises(ValueError, match="multiple of 8"):
        libcrypto.des_cbc(bytes(8), bytes(8), b"x" * 9, encrypt=True)


def test_missing_libcrypto_is_a_one_line_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(libcrypto, "_loaded", None)
    monkeypatch.setattr(libcrypto, "_candidates", lambda: ["/nonexistent/libcrypto.so.99"])
    for _ in range(2):  # the failure is remembered, not retried every poll
        with pytest.raises(PollError) as caught:
            libcrypto.aes_cfb(bytes(16), bytes(16), b"x", encrypt=True)
        assert caught.value.reason == "config"
        assert str(caught.value) == (
            "SNMPv3 privacy needs OpenSSL's libcrypto (libcrypto.so.3), which could not be loaded"
        )


def test_the_agent_uses_hashlibs_openssl_and_not_the_cryptography_package() -> None:
    """The point of libcrypto.py (issue 12, 60 MB): `cryptography` is not imported and no second
    OpenSSL is mapped once the agent has run HMAC and both ciphers."""
    script = """
import sys
import agent.cli, collectors.snmp.collector
from collectors.snmp.usm import LocalKeys
for priv in ("DES", "AES-256"):
    keys = LocalKeys("SHA-256", bytes(32), priv, bytes(32))
    keys.decrypt(*keys.encrypt(b"scoped", 1, 2), 1, 2)
    keys.digest(b"message")
maps = open("/proc/self/maps").read().split("\\n")
print(sorted({line.split()[-1] for line in maps if "libcrypto" in line or "_rust" in line}))
print([name for name in sys.modules if name.split(".")[0] == "cryptography"])
"""
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True,
        env={"PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    libraries, modules = result.stdout.splitlines()
    assert libraries.count(",") == 0 and "libcrypto" in libraries, libraries
    assert modules == "[]"
