"""The agent's HTTP endpoint: /metrics for Prometheus, /healthz for systemd or a watchdog.

Served from a thread so a scrape never waits on the poll loop; it reads only the latest state.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry

from agent.state import AgentState
from exporters.auth import AUTHENTICATED, AuthGate
from exporters.exposition import metrics_app
from exporters.status_page import render_page, status_document

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
_INDEX = b"""<!doctype html><meta charset="utf-8"><title>erozgar-agent</title>
<h1>erozgar-agent</h1>
<p><a href="/metrics">/metrics</a> &middot; <a href="/healthz">/healthz</a></p>
"""


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    # TLS (exporters/auth.py), run in the connection's own thread: a slow handshake holds no
    # other client. Returns None to drop the connection.
    wrap_connection: Callable[[socket.socket], socket.socket | None] | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.wrap_connection is None:
            super().finish_request(request, client_address)
            return
        connection = self.wrap_connection(request)
        if connection is None:
            return
        try:
            super().finish_request(connection, client_address)
        finally:
            connection.close()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every 15 s would flood the journal; errors are logged by the app."""


class MetricsServer:
    """Routes a few paths; anything else is 404. `healthy()` decides /healthz."""

    def __init__(
        self,
        registry: CollectorRegistry,
        host: str,
        port: int,
        healthy: Callable[[], bool],
        state: AgentState | None = None,  # given: / is the status page, plus /status.json
        gate: AuthGate | None = None,  # TLS, allow-list and basic auth from the web config
        reload: Callable[[], tuple[bool, str]] | None = None,  # given: POST /-/reload
    ) -> None:
        self._metrics_app = metrics_app(registry)  # text 0.0.4 from cached chunks
        self._healthy = healthy
        self._state = state
        self._reload = reload
        app = self._app if gate is None else gate.wrap_app(self._app)
        self._server = make_server(
            host, port, app, server_class=_ThreadingServer, handler_class=_QuietHandler
        )
        if gate is not None:
            self._server.wrap_connection = gate.wrap_connection
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics-http", daemon=True
        )

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/-/reload" and self._reload is not None:
            return self._reload_app(environ, start_response)
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _plain(start_response, "405 Method Not Allowed", b"only GET\n")
        if path == "/metrics":
            return self._metrics_app(environ, start_response)
        if path == "/healthz":
            if self._healthy():
                return _plain(start_response, "200 OK", b"ok\n")
            return _plain(start_response, "503 Service Unavailable", b"poll loop not running\n")
        if path == "/status.json" and self._state is not None:
            body = json.dumps(status_document(self._state)).encode()
            start_response(
                "200 OK", [("Content-Type", "application/json"), ("Cache-Control", "no-store")]
            )
            return [body]
        if path == "/":
            start_response(
                "200 OK",
                [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")],
            )
            if self._state is None:
                return [_INDEX]
            return [render_page(self._state).encode()]
        return _plain(start_response, "404 Not Found", b"not found; try /metrics\n")

    def _reload_app(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        """Only from this box, or from a client that authenticated (password or client cert)."""
        assert self._reload is not None
        if environ.get("REQUEST_METHOD") != "POST":
            return _plain(start_response, "405 Method Not Allowed", b"only POST\n")
        if not (environ.get(AUTHENTICATED) or _loopback(environ.get("REMOTE_ADDR", ""))):
            return _plain(start_response, "403 Forbidden", b"forbidden\n")
        applied, summary = self._reload()
        status = "200 OK" if applied else "500 Internal Server Error"
        return _plain(start_response, status, summary.encode() + b"\n")


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _plain(start_response: StartResponse, status: str, body: bytes) -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
    return [body]
