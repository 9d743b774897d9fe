"""Who may read the endpoint: TLS on each connection, then the IP allow-list and basic auth.

`AuthGate` wraps the WSGI app and the server's connections with the web config in force
(exporters/web_config.py). Answers say only "forbidden" or "unauthorized": nothing about the
config, the user names or why a password failed. Every refusal is counted by reason in
`erozgar_http_auth_failures_total`:

    network        the client's address is outside allowed_networks (403)
    missing        no or unreadable Authorization header (401)
    unknown_user   a user not in basic_auth_users (401)
    wrong_password a known user with the wrong password (401)
    tls_handshake  no TLS, an unverifiable client certificate or a TLS version below the minimum
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import logging
import socket
import ssl
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import bcrypt

from .web_config import WebGuard

log = logging.getLogger(__name__)

App = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
REASONS = ("network", "missing", "unknown_user", "wrong_password", "tls_handshake")
AUTHENTICATED = "erozgar.authenticated"  # environ key: the request proved who it is
_HANDSHAKE_TIMEOUT_SECONDS = 10.0
_CACHE_LIMIT = 64
# Checked against for unknown users so their answer takes as long as a wrong password.
_DUMMY_HASH = bcrypt.hashpw(b"erozgar-agent-dummy", bcrypt.gensalt(rounds=10))


class AuthGate:
    """Applies a WebGuard's settings to every connection and request."""

    def __init__(self, guard: WebGuard) -> None:
        self.guard = guard
        self.failures: Counter[str] = Counter()
        self._lock = threading.Lock()
        # Successful (user, sha256(password + hash)) checks: bcrypt costs ~50-250 ms per scrape.
        self._verified: set[tuple[str, str]] = set()

    def count(self, reason: str) -> None:
        with self._lock:
            self.failures[reason] += 1

    def wrap_connection(self, connection: socket.socket) -> socket.socket | None:
        """TLS for a new connection when the config asks for it; None: drop it."""
        context = self.guard.current().ssl_context
        if context is None:
            return connection
        connection.settimeout(_HANDSHAKE_TIMEOUT_SECONDS)  # a silent client cannot hold a thread
        try:
            return context.wrap_socket(connection, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self.count("tls_handshake")
            log.debug("TLS handshake failed: %s", exc)
            return None

    def wrap_app(self, app: App) -> App:
        def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            config = self.guard.current().config
            if config.allowed_networks and not _allowed(
                environ.get("REMOTE_ADDR", ""), config.allowed_networks
            ):
                self.count("network")
                return _refuse(start_response, "403 Forbidden", b"forbidden\n")
            if config.basic_auth_users:
                reason = self._check_password(
                    environ.get("HTTP_AUTHORIZATION", ""), config.basic_auth_users
                )
                if reason is not None:
                    self.count(reason)
                    return _refuse(
                        start_response,
                        "401 Unauthorized",
                        b"unauthorized\n",
                        [("WWW-Authenticate", 'Basic realm="erozgar-agent", charset="UTF-8"')],
                    )
            environ[AUTHENTICATED] = config.requires_auth
            return app(environ, start_response)

        return guarded

    def _check_password(self, header: str, users: dict[str, str]) -> str | None:
        """None when the header names a user and the right password; else the reason."""
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return "missing"
        try:
            user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return "missing"
        if not sep:
            return "missing"
        hashed = users.get(user)
        if hashed is None:
            bcrypt.checkpw(password.encode(), _DUMMY_HASH)
            return "unknown_user"
        key = (user, hashlib.sha256(password.encode() + b"\0" + hashed.encode()).hexdigest())
        if key in self._verified:
            return None
        if not bcrypt.checkpw(password.encode(), hashed.encode()):
            return "wrong_password"
        with self._lock:
            if len(self._verified) >= _CACHE_LIMIT:
                self._verified.clear()
            self._verified.add(key)
        return None


def _allowed(address: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # a dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d
    return any(ip in network for network in networks)


def _refuse(
    start_response: Callable[..., Any],
    status: str,
    body: bytes,
    extra: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), *(extra or [])])
    return [body]
