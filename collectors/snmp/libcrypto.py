"""SNMPv3 privacy ciphers (AES-128/192/256-CFB128, DES-CBC) from the OpenSSL the process holds.

    ciphertext = aes_cfb(key, iv, plaintext, encrypt=True)   # key 16, 24 or 32 octets, iv 16
    plaintext = des_cbc(key, iv, ciphertext, encrypt=False)  # key 8, iv 8, whole blocks only

Why ctypes and not the `cryptography` package: issue 12 holds the reference centre with its
routers over SNMPv3 under 60 MB RSS. With usm.py on `cryptography` it peaked at 63.3 MB
(bench/centre.py --snmp-v3 SHA-256/AES-128; the v2c centre 53.2 MB), and importing
`cryptography` (its Rust bindings and their own OpenSSL) alone cost 8.7 MB RSS. Python's hashlib
and hmac already run on the system's libcrypto (libcrypto.so.3 on Debian 12, mapped into every
process that imports hashlib); ctypes on that same library cost 1.9 MB. So HMAC comes from the
standard library (usm.py) and the two ciphers from here, through OpenSSL's EVP interface.
The price, measured per request and answer (SHA-256/AES-128, a 1,300-octet answer): 9.9 us
against 8.6 with `cryptography`, since Debian's OpenSSL 3.0 runs CFB at about 1 ns an octet,
the wheel's own newer OpenSSL several times faster; a poll's 18 exchanges spend 14 ms of CPU,
so this is 0.2 % of it.

The library is found as CPython's _hashlib finds it: dlsym on _hashlib's own handle searches its
dependencies, so the symbols resolve in the very libcrypto hashlib uses (no second OpenSSL in the
process); ctypes.util.find_library("crypto") is the fallback. It is opened on first use (this
module comes with usm.py, imported only when a v3 device is configured); when it cannot be
opened, each authPriv poll fails with a one-line PollError("config") naming what is missing.

Every function has its C signature declared (a wrong one crashes the process rather than
raising), every return code is checked, each cipher context is freed in `finally`, and output
buffers are as long as OpenSSL may write (the input plus one block). Single DES is 3DES-EDE with
one key thrice: OpenSSL 3 keeps plain DES in its legacy provider only.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from collectors.readings import PollError

_MISSING = "SNMPv3 privacy needs OpenSSL's libcrypto (libcrypto.so.3), which could not be loaded"


@dataclass(frozen=True, slots=True)
class _Cipher:
    evp: int  # const EVP_CIPHER *
    iv_length: int
    block: int  # the most EVP_CipherUpdate/Final may write beyond the input
    padded: bool  # a block mode: padding must be switched off


@dataclass(frozen=True, slots=True)
class _Library:
    ctx_new: Callable[..., Any]
    ctx_free: Callable[..., Any]
    init: Callable[..., Any]
    set_padding: Callable[..., Any]
    update: Callable[..., Any]
    final: Callable[..., Any]
    clear_errors: Callable[..., Any]
    ciphers: dict[str, _Cipher]


_loaded: _Library | PollError | None = None


def _candidates() -> list[str]:
    names = []
    try:
        import _hashlib

        names.append(_hashlib.__file__)
    except (ImportError, AttributeError):  # built without OpenSSL, or linked into python
        pass
    found = ctypes.util.find_library("crypto")
    if found:
        names.append(found)
    return names


def _declare(lib: ctypes.CDLL) -> _Library:
    """The EVP functions with their C signatures; AttributeError when one is missing."""
    vp, c_int, c_char_p = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
    int_p = ctypes.POINTER(c_int)

    def function(name: str, restype: Any, *argtypes: Any) -> Callable[..., Any]:
        f = getattr(lib, name)
        f.restype, f.argtypes = restype, list(argtypes)
        return f

    # OpenSSL 3: fetched once here, since EVP_aes_128_cfb128() & co. make every
    # EVP_CipherInit_ex fetch again (0.3 us of its 0.9). Held for the process's life.
    fetch = getattr(lib, "EVP_CIPHER_fetch", None)
    if fetch is not None:
        fetch.restype, fetch.argtypes = vp, [vp, c_char_p, c_char_p]
    ciphers = {}
    for name, symbol, iv_length, block in (
        ("aes-128-cfb", "EVP_aes_128_cfb128", 16, 16),
        ("aes-192-cfb", "EVP_aes_192_cfb128", 16, 16),
        ("aes-256-cfb", "EVP_aes_256_cfb128", 16, 16),
        ("des-ede3-cbc", "EVP_des_ede3_cbc", 8, 8),
    ):
        evp = fetch(None, name.encode(), None) if fetch is not None else None
        evp = evp or function(symbol, vp)()  # OpenSSL 1.1: a static table, never freed
        if not evp:
            raise AttributeError(symbol)
        ciphers[name] = _Cipher(evp, iv_length, block, padded=name.endswith("cbc"))
    return _Library(
        # EVP_CIPHER_CTX *EVP_CIPHER_CTX_new(void); void EVP_CIPHER_CTX_free(EVP_CIPHER_CTX *)
        ctx_new=function("EVP_CIPHER_CTX_new", vp),
        ctx_free=function("EVP_CIPHER_CTX_free", None, vp),
        # int EVP_CipherInit_ex(ctx, const EVP_CIPHER *, ENGINE *, const unsigned char *key,
        #                       const unsigned char *iv, int enc)
        init=function("EVP_CipherInit_ex", c_int, vp, vp, vp, c_char_p, c_char_p, c_int),
        set_padding=function("EVP_CIPHER_CTX_set_padding", c_int, vp, c_int),
        # int EVP_CipherUpdate(ctx, unsigned char *out, int *outl, const unsigned char *in,
        #                      int inl); int EVP_CipherFinal_ex(ctx, unsigned char *out, int *)
        update=function("EVP_CipherUpdate", c_int, vp, c_char_p, int_p, c_char_p, c_int),
        final=function("EVP_CipherFinal_ex", c_int, vp, c_char_p, int_p),
        clear_errors=function("ERR_clear_error", None),
        ciphers=ciphers,
    )


def _library() -> _Library:
    global _loaded
    if _loaded is None:
        _loaded = PollError("config", _MISSING)
        for name in _candidates():
            try:
                _loaded = _declare(ctypes.CDLL(name))
                break
            except (OSError, AttributeError):
                continue
    if isinstance(_loaded, PollError):
        raise PollError(_loaded.reason, str(_loaded))
    return _loaded


def aes_cfb(key: bytes, iv: bytes, data: bytes, *, encrypt: bool) -> bytes:
    """AES-CFB128 (RFC 3826) with a 16, 24 or 32 octet key: any length in, the same out."""
    if len(key) not in (16, 24, 32):
        raise ValueError(f"an AES key has 16, 24 or 32 octets, not {len(key)}")
    return _crypt(f"aes-{len(key) * 8}-cfb", key, iv, data, encrypt)


def des_cbc(key: bytes, iv: bytes, data: bytes, *, encrypt: bool) -> bytes:
    """DES-CBC (RFC 3414 8.1) without padding: `data` is whole 8-octet blocks."""
    if len(key) != 8:
        raise ValueError(f"a DES key has 8 octets, not {len(key)}")
    if len(data) % 8:
        raise ValueError("DES-CBC data is not a multiple of 8 octets")
    return _crypt("des-ede3-cbc", key * 3, iv, data, encrypt)  # EDE with one key = DES


def _crypt(name: str, key: bytes, iv: bytes, data: bytes, encrypt: bool) -> bytes:
    lib = _library()
    cipher = lib.ciphers[name]
    if len(iv) != cipher.iv_length:
        raise ValueError(f"{name} needs a {cipher.iv_length}-octet IV, not {len(iv)}")
    if len(data) > 2**31 - 1 - cipher.block:
        raise ValueError(f"{name}: {len(data)} octets do not fit OpenSSL's int length")
    out = ctypes.create_string_buffer(len(data) + cipher.block)
    tail = ctypes.create_string_buffer(cipher.block)
    written, finished = ctypes.c_int(0), ctypes.c_int(0)
    ctx = lib.ctx_new()
    if not ctx:
        raise PollError("error", f"OpenSSL could not allocate a {name} context")
    try:
        _check(lib, name, "EVP_CipherInit_ex", lib.init(ctx, cipher.evp, None, key, iv, encrypt))
        if cipher.padded:
            _check(lib, name, "EVP_CIPHER_CTX_set_padding", lib.set_padding(ctx, 0))
        _check(lib, name, "EVP_CipherUpdate", lib.update(ctx, out, written, data, len(data)))
        _check(lib, name, "EVP_CipherFinal_ex", lib.final(ctx, tail, finished))
    finally:
        lib.ctx_free(ctx)
    return out.raw[: written.value] + tail.raw[: finished.value]


def _check(lib: _Library, name: str, call: str, result: int) -> None:
    if result != 1:
        lib.clear_errors()  # leave no error queued for hashlib to misreport
        raise PollError("config", f"OpenSSL refused {name}: {call} failed")
